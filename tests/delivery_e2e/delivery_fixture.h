#pragma once
// The fixture of the delivery end-to-end suites: one DeliveryStack per
// suite (ctest runs each suite in its own process, see CMakeLists.txt),
// started in SetUpTestSuite with the suite's flags and stopped (clean exits
// checked) in TearDownTestSuite; a fresh tenant and a fresh receiver per
// test, so tests never see each other's deliveries.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/delivery_e2e/delivery_stack.h"
#include "tests/delivery_e2e/delivery_test_util.h"
#include "tests/support/receiver.h"

namespace octo::delivery_e2e {

class DeliveryTest : public ::testing::Test {
 protected:
  // Call from the suite's SetUpTestSuite / TearDownTestSuite.
  static void StartStack(DeliveryFlags flags);
  static void StopStack();

  void SetUp() override;
  void TearDown() override;

  // Creates a webhook for the test's tenant from its JSON body (the URL
  // given separately so that tests read well); asserts success through
  // ADD_FAILURE and returns an empty webhook on failure.
  CreatedWebhook Hook(const std::string& event, const std::string& url, const std::string& more_json = "",
                      std::optional<std::string> capabilities = std::nullopt);
  CreatedWebhook HookFor(const e2e::Tenant& tenant, const std::string& event, const std::string& url,
                         const std::string& more_json = "", std::optional<std::string> capabilities = std::nullopt);

  // The body the contract prescribes, from its parts (already JSON text);
  // with product_option (availability) there is no diff member.
  static std::string Body(const std::string& webhook_object, std::string_view kind, const std::string& resource,
                          const std::string& diff, const std::string& supplier,
                          std::optional<std::pair<std::string, std::string>> product_option = std::nullopt);

  // Publishes and asserts OK; returns the response (empty on failure).
  webhooks::v1::PublishEventResponse MustPublish(const webhooks::v1::PublishEventRequest& request);

  // The only request received on `path` after waiting for it (fails the
  // test and returns an empty request otherwise).
  ReceivedRequest OnlyRequest(const std::string& path, std::chrono::milliseconds timeout = 15s);

  Db db() const { return Db(stack_->database_url()); }

  static DeliveryStack* stack_;
  static absl::Status* start_status_;

  e2e::Tenant tenant_;
  std::unique_ptr<testing::HttpReceiver> receiver_;
};

}  // namespace octo::delivery_e2e
