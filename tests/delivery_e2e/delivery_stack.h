#pragma once
// The system under test for the delivery end-to-end tests: the E2E stack of
// tests/e2e (a fresh database, octo-subscription and octo-gateway on
// 127.0.0.1) plus a real octo-delivery process with millisecond-scale retry
// flags, started first so that octo-subscription can be pointed at it.
//
// Example:
//   DeliveryStack stack({.retry_schedule = "200ms,300ms"});
//   ASSERT_TRUE(stack.Start().ok());
//   auto tenant = stack.NewTenant();        // supplier with a known profile
//   auto hook = stack.CreateWebhook(*tenant, R"({"event":"booking_update","url":"..."})");
//   auto published = stack.Publish(request);  // EventService.PublishEvent
//   ...
//   stack.KillDelivery();  stack.StartDelivery();   // crash and restart, same port
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tests/e2e/e2e_stack.h"
#include "tests/support/process.h"

namespace octo::delivery_e2e {

// octo-delivery's flags (docs/delivery.md), as the tests set them.
struct DeliveryFlags {
  std::string retry_schedule = "200ms,300ms,300ms";
  std::string request_timeout = "2s";
  std::string connect_timeout = "1s";
  std::string lease_margin = "1s";
  std::string poll_interval = "100ms";
  std::string min_retry_after = "1s";
  std::string max_retry_after = "2500ms";
  // SSRF guard: the test receivers run on loopback. Tests of the guard set
  // "" (production) so that octo-delivery refuses them.
  std::string allow_destination_cidrs = "127.0.0.0/8,::1/128";
  std::vector<std::string> extra_args;
};

// The supplier profile every tenant gets (set through AdminService.UpdateSupplier),
// so that the expected `supplier` object of a body is known byte for byte.
struct SupplierProfile {
  std::string name = "Thames Tours Ltd";
  std::string endpoint = "https://api.thames-tours.example/octo";
  std::string website = "https://thames-tours.example";
  std::string email = "ops@thames-tours.example";
  std::string telephone = "+44 20 7946 0000";
  std::string address = "1 Riverside, London SE1 7PB";
};

// A webhook as created over REST: its id and the secret shown once.
struct CreatedWebhook {
  std::string id;
  std::string secret;
  std::string url;  // as registered (credentials included)
};

// Not thread-safe except Publish (gRPC stubs are thread-safe). Start from
// the test's main thread (see process.h).
class DeliveryStack {
 public:
  // Creates the database; throws (and records a test failure) without
  // OCTO_TEST_PG.
  explicit DeliveryStack(DeliveryFlags flags = {});
  ~DeliveryStack();

  // octo-delivery, then octo-subscription (--delivery_target) and
  // octo-gateway. Failures carry the services' log tails.
  absl::Status Start();

  // (Re)starts octo-delivery; after the first start on the same port, so
  // the subscription service's --delivery_target stays right.
  absl::Status StartDelivery();
  // Another octo-delivery on the same database (a second replica: claims
  // and sends beside the first; publishes still go to the first). The
  // caller owns it (kill, stop).
  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> StartDeliveryReplica();
  // kill -9: a crash, as far as the rest of the system can tell.
  testing::ExitInfo KillDelivery();
  // SIGTERM and wait (graceful: in-flight transfers finish).
  testing::ExitInfo StopDelivery();
  // SIGTERM to all three, delivery last; EXPECTs clean exits.
  void StopAllExpectClean();

  testing::ChildProcess* delivery() { return delivery_.get(); }
  e2e::E2eStack& base() { return *base_; }
  int gateway_port() const { return base_->gateway_port(); }
  int gateway_metrics_port() const { return base_->gateway_metrics_port(); }
  const std::string& database_url() const { return base_->database_url(); }
  const SupplierProfile& profile() const { return profile_; }

  // A new supplier (with `profile()`), connection and API key.
  absl::StatusOr<e2e::Tenant> NewTenant();
  // Another connection (with its own key) of the tenant's supplier.
  absl::StatusOr<e2e::Tenant> NewConnection(const e2e::Tenant& tenant);

  // POST <base>/webhooks as the tenant; `capabilities` is sent as the
  // Octo-Capabilities header when set. Fails unless the gateway answers 200.
  absl::StatusOr<CreatedWebhook> CreateWebhook(const e2e::Tenant& tenant, const std::string& body,
                                               std::optional<std::string> capabilities = std::nullopt);
  // GET <base>/webhooks/<id> as the tenant: the response body.
  absl::StatusOr<std::string> GetWebhookJson(const e2e::Tenant& tenant, const std::string& id);

  absl::StatusOr<webhooks::v1::PublishEventResponse> Publish(const webhooks::v1::PublishEventRequest& request);
  absl::StatusOr<webhooks::v1::PublishEventsResponse> PublishBatch(
      const webhooks::v1::PublishEventsRequest& request);
  // The raw gRPC status of a publish (for INVALID_ARGUMENT checks).
  grpc::Status PublishRaw(const webhooks::v1::PublishEventRequest& request,
                          webhooks::v1::PublishEventResponse* response);

  // The log tails of all services, for failure messages.
  std::string LogTails() const;

 private:
  std::shared_ptr<grpc::Channel> Channel();
  // octo-delivery's flags, listening on `port` (0: any).
  std::vector<std::string> DeliveryArgs(int port, const std::string& port_file);

  DeliveryFlags flags_;
  SupplierProfile profile_;
  std::unique_ptr<e2e::E2eStack> base_;
  std::unique_ptr<testing::ChildProcess> delivery_;  // after base_: destroyed first
  int delivery_port_ = 0;
  int delivery_starts_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<webhooks::v1::EventService::Stub> events_;
  std::unique_ptr<webhooks::v1::AdminService::Stub> admin_;
};

}  // namespace octo::delivery_e2e
