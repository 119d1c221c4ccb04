#pragma once
// SubscriptionBackend over gRPC, with the callback API: a call costs no
// thread while it waits, and its completion runs on a gRPC thread.
#include <memory>
#include <string>
#include <unordered_map>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gateway/subscription_backend.h"
#include "services/common/metrics.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"

namespace octo::gateway {

// The largest answer the gateway accepts from the subscription service. The
// largest is a ListWebhooks page: 1,000 webhooks (the page size the gateway
// asks for) of at most ~14 KiB each (a 2 KiB URL, 20 header names of 256
// bytes with masked values, 50 capabilities of 100 bytes, ids, times and
// event types) is ~14 MiB, beyond gRPC's 4 MiB default; 32 MiB leaves room.
inline constexpr int kMaxSubscriptionMessageBytes = 32 << 20;

// An insecure channel to `target` that reconnects within about two seconds
// after the service restarts (gRPC's default backoff grows to two minutes),
// and receives messages up to kMaxSubscriptionMessageBytes. Its calls carry
// `caller_token` (services/common/grpc_auth.h) unless empty.
std::shared_ptr<grpc::Channel> MakeSubscriptionChannel(const std::string& target,
                                                      metrics::GrpcMetrics* metrics = nullptr,
                                                      const std::string& caller_token = "");

class GrpcSubscriptionBackend final : public SubscriptionBackend {
 public:
  explicit GrpcSubscriptionBackend(std::shared_ptr<grpc::Channel> channel);
  // Calls Shutdown().
  ~GrpcSubscriptionBackend() override;

  // Cancels the calls in flight, waits until their callbacks have returned,
  // and makes later calls fail with UNAVAILABLE at once. Idempotent.
  void Shutdown();

  void Authenticate(const octo::webhooks::v1::AuthenticateRequest& request, Deadline deadline,
                    Callback<octo::webhooks::v1::AuthenticateResponse> done) override;
  void CreateWebhook(const octo::webhooks::v1::CreateWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::CreateWebhookResponse> done) override;
  void GetWebhook(const octo::webhooks::v1::GetWebhookRequest& request, Deadline deadline,
                  Callback<octo::webhooks::v1::Webhook> done) override;
  void ListWebhooks(const octo::webhooks::v1::ListWebhooksRequest& request, Deadline deadline,
                    Callback<octo::webhooks::v1::ListWebhooksResponse> done) override;
  void UpdateWebhook(const octo::webhooks::v1::UpdateWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;
  void DeleteWebhook(const octo::webhooks::v1::DeleteWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;
  void CheckHealth(const grpc::health::v1::HealthCheckRequest& request, Deadline deadline,
                   Callback<grpc::health::v1::HealthCheckResponse> done) override;
  void RotateWebhookSecret(const octo::webhooks::v1::RotateWebhookSecretRequest& request,
                           Deadline deadline,
                           Callback<octo::webhooks::v1::RotateWebhookSecretResponse> done) override;
  void EnableWebhook(const octo::webhooks::v1::EnableWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;
  void ListDeliveries(const octo::webhooks::v1::ListDeliveriesRequest& request, Deadline deadline,
                      Callback<octo::webhooks::v1::ListDeliveriesResponse> done) override;
  void GetDelivery(const octo::webhooks::v1::GetDeliveryRequest& request, Deadline deadline,
                   Callback<octo::webhooks::v1::Delivery> done) override;
  void RedeliverDelivery(const octo::webhooks::v1::RedeliverDeliveryRequest& request,
                         Deadline deadline, Callback<octo::webhooks::v1::Delivery> done) override;
  void ReplayDeliveries(const octo::webhooks::v1::ReplayDeliveriesRequest& request,
                        Deadline deadline,
                        Callback<octo::webhooks::v1::ReplayDeliveriesResponse> done) override;
  void SendTestEvent(const octo::webhooks::v1::SendTestEventRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::SendTestEventResponse> done) override;

 private:
  // Starts one unary call; `start` issues it on the right stub.
  template <typename Request, typename Response, typename Start>
  void Call(const Request& request, Deadline deadline, Callback<Response> done, Start start);

  bool Register(std::shared_ptr<grpc::ClientContext> context);
  void Unregister(grpc::ClientContext* context);
  void Finished();

  std::unique_ptr<octo::webhooks::v1::AuthService::Stub> auth_;
  std::unique_ptr<octo::webhooks::v1::SubscriptionService::Stub> subscriptions_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // The calls in flight, for Shutdown() to cancel; owning, so a context
  // cannot be destroyed while Shutdown() cancels it outside the lock.
  std::unordered_map<grpc::ClientContext*, std::shared_ptr<grpc::ClientContext>> contexts_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace octo::gateway
