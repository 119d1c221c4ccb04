#pragma once
// What the end-to-end test files share: one running system per test binary
// (started on first use, stopped after the last test), a fixture that gives
// every test a tenant of its own, and JSON/OCTO-error assertions.
//
// Tenants make tests independent while they share the processes: each test
// sees only its own connection's webhooks.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/e2e/e2e_stack.h"

namespace octo::e2e {

// The system shared by the tests of this binary, started on first call. The
// status carries the services' log tails when a start failed.
absl::StatusOr<E2eStack*> SharedStack();

// Gives each test a fresh tenant (connection + key) on the shared system.
class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // A REST client of another, new tenant (its own supplier and connection).
  std::unique_ptr<RestApi> NewTenantApi(int max_webhooks = 0, Tenant* tenant = nullptr);

  // POST a valid webhook; asserts 200 and returns its parsed JSON.
  boost::json::object CreateWebhook(const std::string& body = kMinimalBody, const testing::HttpHeaders& extra = {});

  // The current list body, to prove later that rejected requests stored
  // nothing.
  void SnapshotList() { list_snapshot_ = api_->List().body; }
  // Checks `r` is the OCTO error (`status`, `code`) and the list is unchanged
  // since SnapshotList().
  void ExpectRejected(const testing::HttpResponse& r, int status, std::string_view code);

  static constexpr const char* kMinimalBody = R"({"event":"booking_update","url":"https://hooks.partner.example/octo"})";

  E2eStack* stack_ = nullptr;
  Tenant tenant_;
  std::unique_ptr<RestApi> api_;
  std::string list_snapshot_;
};

// ----------------------------------------------------------------- JSON --

// Parses `body`; a failure (not JSON, or not an object) is reported and an
// empty object returned.
boost::json::object ParseObject(const std::string& body);
boost::json::array ParseArray(const std::string& body);

std::set<std::string> Keys(const boost::json::object& object);

// The members every webhook response has (without "secret").
const std::set<std::string>& WebhookKeys();

// `r` is an OCTO error: HTTP `status`, JSON content type, body
// {"error": code, "errorMessage": non-empty string[, "webhookId": id]} and
// nothing else. `webhook_id` is required exactly when code is
// INVALID_WEBHOOK_ID.
::testing::AssertionResult IsOctoError(const testing::HttpResponse& r, int status, std::string_view code,
                                       std::string_view webhook_id = {});

// The webhooks of a list response (whatever its envelope).
boost::json::array WebhooksOfList(const testing::HttpResponse& r);

// A syntactically valid UUID that no webhook has.
inline constexpr const char* kUnknownId = "0b7a4f4e-7c2a-4d7e-9b1e-2f3c4d5e6f70";

}  // namespace octo::e2e
