#pragma once
// What the fault-injection tests share: one DeliveryStack per test (the
// real octo-delivery, octo-subscription and octo-gateway on 127.0.0.1,
// tests/delivery_e2e), started by the test with its own flags, a real HTTP
// receiver, and the checks every fault test makes: which deliveries arrived,
// how often, and what the attempt log recorded for them.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/delivery_e2e/delivery_stack.h"
#include "tests/delivery_e2e/delivery_test_util.h"
#include "tests/support/receiver.h"

namespace octo::faults {

using delivery_e2e::CreatedWebhook;
using delivery_e2e::Db;
using delivery_e2e::DeliveryFlags;
using delivery_e2e::DeliveryStack;
using delivery_e2e::Eventually;
using delivery_e2e::SqlQuote;
using delivery_e2e::WebhookId;
using testing::ReceivedRequest;
using namespace std::chrono_literals;

class FaultTest : public ::testing::Test {
 protected:
  void TearDown() override;

  // Starts the stack (on OCTO_TEST_PG, as it is when called) and the
  // receiver; asserts through ADD_FAILURE and returns false on failure.
  // flags.replicas delivery processes, and this many subscription services
  // and gateways (cluster_test.cc).
  bool StartStack(DeliveryFlags flags, int subscription_replicas = 1, int gateway_replicas = 1);
  // A new tenant (supplier, connection, key); records a failure on error.
  e2e::Tenant NewTenant();
  CreatedWebhook Hook(const e2e::Tenant& tenant, const std::string& event, const std::string& url);
  // Publishes `count` booking (or `event`) updates for the tenant in
  // batches of at most 200; returns how many were accepted. A refused
  // batch is a test failure when `must`.
  int Publish(const e2e::Tenant& tenant, int count, const std::string& key_prefix,
              const std::string& event = "booking_update", bool must = true);

  Db db() const { return Db(stack_->database_url()); }
  // "msg_<hex>" webhook-ids of the webhook's deliveries.
  std::vector<std::string> MessageIds(const CreatedWebhook& hook) const;
  // The webhook's deliveries in `state`.
  int CountInState(const CreatedWebhook& hook, const std::string& state) const;
  // Attempt rows per webhook-id of the webhook's deliveries.
  std::map<std::string, int> AttemptsById(const CreatedWebhook& hook) const;
  // Requests received on `path`, grouped by webhook-id.
  std::map<std::string, std::vector<ReceivedRequest>> ReceivedById(const std::string& path) const;

  std::unique_ptr<DeliveryStack> stack_;
  std::unique_ptr<testing::HttpReceiver> receiver_;
  bool stop_clean_ = true;  // TearDown expects clean exits of all services
};

}  // namespace octo::faults
