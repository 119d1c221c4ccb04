#pragma once
// The gateway's view of the services behind it: API-key authentication,
// webhook management and health, all asynchronous so no gateway thread ever
// waits on the network. GrpcSubscriptionBackend is the implementation; tests
// use an in-memory fake.
#include <chrono>
#include <functional>

#include "absl/status/statusor.h"
#include "grpc/health/v1/health.pb.h"
#include "octo/webhooks/v1/webhooks.pb.h"

namespace octo::gateway {

class SubscriptionBackend {
 public:
  using Deadline = std::chrono::system_clock::time_point;
  template <typename T>
  using Callback = std::function<void(absl::StatusOr<T>)>;

  virtual ~SubscriptionBackend() = default;

  // Each method calls `done` exactly once, on any thread, possibly before it
  // returns; `done` must not block. Errors carry the service's canonical code
  // (AuthService: UNAUTHENTICATED for a bad key; SubscriptionService:
  // INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, ...); UNAVAILABLE or
  // DEADLINE_EXCEEDED when the service cannot be reached by `deadline`.
  // Thread-safe.
  virtual void Authenticate(const octo::webhooks::v1::AuthenticateRequest& request,
                            Deadline deadline,
                            Callback<octo::webhooks::v1::AuthenticateResponse> done) = 0;
  virtual void CreateWebhook(const octo::webhooks::v1::CreateWebhookRequest& request,
                             Deadline deadline,
                             Callback<octo::webhooks::v1::CreateWebhookResponse> done) = 0;
  virtual void GetWebhook(const octo::webhooks::v1::GetWebhookRequest& request, Deadline deadline,
                          Callback<octo::webhooks::v1::Webhook> done) = 0;
  virtual void ListWebhooks(const octo::webhooks::v1::ListWebhooksRequest& request,
                            Deadline deadline,
                            Callback<octo::webhooks::v1::ListWebhooksResponse> done) = 0;
  virtual void UpdateWebhook(const octo::webhooks::v1::UpdateWebhookRequest& request,
                             Deadline deadline, Callback<octo::webhooks::v1::Webhook> done) = 0;
  virtual void DeleteWebhook(const octo::webhooks::v1::DeleteWebhookRequest& request,
                             Deadline deadline, Callback<octo::webhooks::v1::Webhook> done) = 0;
  // grpc.health.v1.Health/Check of the subscription service.
  virtual void CheckHealth(const grpc::health::v1::HealthCheckRequest& request, Deadline deadline,
                           Callback<grpc::health::v1::HealthCheckResponse> done) = 0;
};

}  // namespace octo::gateway
