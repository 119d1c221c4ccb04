#pragma once
// What the delivery end-to-end tests share: building publish requests and
// the expected bytes of a body, checking the headers and signature of a
// received request (in C++ and with the public npm package), reading the
// delivery tables, and bounded waiting.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "octo/webhooks/v1/events.pb.h"
#include "tests/delivery_e2e/delivery_stack.h"
#include "tests/support/receiver.h"

namespace octo::delivery_e2e {

using namespace std::chrono_literals;
using testing::ReceivedRequest;

// ------------------------------------------------------------- building --

// `text` as a JSON string literal (quotes included).
std::string Q(std::string_view text);

// The expected "webhook" object of a body, in the contract's key order.
// `masked_url` and `headers_json` (e.g. {"X-Api-Key":"***"}) are given as
// the body must show them; `capabilities` in creation order.
std::string WebhookObject(const CreatedWebhook& webhook, std::string_view event, std::string_view masked_url,
                          bool retry_on_error, bool use_contact_language, std::string_view headers_json = "{}",
                          const std::vector<std::string>& capabilities = {});
// The expected "supplier" object of a tenant with the stack's profile.
std::string SupplierObject(const e2e::Tenant& tenant, const SupplierProfile& profile);

// A publish request for the tenant's supplier (no connection: every
// connection of the supplier). `occurred_at_s` in Unix seconds.
webhooks::v1::PublishEventRequest Event(const e2e::Tenant& tenant, std::string event, std::string resource_json,
                                        std::string idempotency_key, int64_t occurred_at_s = 1717228800);

// A random UUID (lower-case, 8-4-4-4-12).
std::string NewUuid();
// A unique idempotency key with a readable prefix.
std::string NewKey(std::string_view prefix);

// "{webhook}" -> value: replaces every occurrence of each key.
std::string Fill(std::string text, const std::vector<std::pair<std::string, std::string>>& values);

// ------------------------------------------------------------- checking --

// Content-Type, User-Agent, webhook-id (msg_ + 32 hex), webhook-timestamp
// (within a minute of now), webhook-signature (verified with `secret`), each
// exactly once; no Authorization unless `authorization` is set (then exactly
// it); Content-Language exactly as `content_language` (absent when nullopt).
::testing::AssertionResult HasDeliveryHeaders(const ReceivedRequest& request, const CreatedWebhook& webhook,
                                              std::optional<std::string> content_language = std::nullopt,
                                              std::optional<std::string> authorization = std::nullopt);

// The request's webhook-signature verifies with `secret` (C++:
// octo::payload::VerifySignatureHeader).
::testing::AssertionResult SignatureVerifies(const ReceivedRequest& request, const std::string& secret);

// The webhook-id header ("" when absent).
std::string WebhookId(const ReceivedRequest& request);

struct NodeResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};
// Runs `node $OCTO_NODE_VERIFIER` on the request (its three webhook-*
// headers and raw body) and `secret`. Records a failure and returns an error
// when OCTO_NODE_VERIFIER is not set (the suite must fail, never skip).
absl::StatusOr<NodeResult> VerifyWithNode(const ReceivedRequest& request, const std::string& secret,
                                          std::optional<std::string> body_override = std::nullopt);

// A readable dump of a request, for failure messages.
std::string Describe(const ReceivedRequest& request);

// ------------------------------------------------------------- database --

// Plain SQL against the test database (one connection per call). Values as
// text, NULL as "<null>". A failed query records a test failure.
class Db {
 public:
  explicit Db(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  std::vector<std::vector<std::string>> Rows(const std::string& sql) const;
  std::string Scalar(const std::string& sql) const;

 private:
  std::string conninfo_;
};

// "'text'" with quotes doubled, for SQL built in tests.
std::string SqlQuote(std::string_view text);

// ---------------------------------------------------------------- time --

// Polls `pred` every `step` until it holds or `timeout` passes.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds timeout, std::chrono::milliseconds step = 25ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

// Milliseconds between two receive times.
inline double GapMs(const ReceivedRequest& earlier, const ReceivedRequest& later) {
  return std::chrono::duration<double, std::milli>(later.received_steady - earlier.received_steady).count();
}

}  // namespace octo::delivery_e2e
