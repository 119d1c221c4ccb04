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
  // The extension RPCs. Default: UNIMPLEMENTED, for backends that
  // only serve the OCTO routes (the gateway's unit-test fake).
  virtual void RotateWebhookSecret(
      const octo::webhooks::v1::RotateWebhookSecretRequest& request, Deadline deadline,
      Callback<octo::webhooks::v1::RotateWebhookSecretResponse> done);
  virtual void EnableWebhook(const octo::webhooks::v1::EnableWebhookRequest& request,
                             Deadline deadline, Callback<octo::webhooks::v1::Webhook> done);
  virtual void ListDeliveries(const octo::webhooks::v1::ListDeliveriesRequest& request,
                              Deadline deadline,
                              Callback<octo::webhooks::v1::ListDeliveriesResponse> done);
  virtual void GetDelivery(const octo::webhooks::v1::GetDeliveryRequest& request,
                           Deadline deadline, Callback<octo::webhooks::v1::Delivery> done);
  virtual void RedeliverDelivery(const octo::webhooks::v1::RedeliverDeliveryRequest& request,
                                 Deadline deadline, Callback<octo::webhooks::v1::Delivery> done);
  virtual void ReplayDeliveries(const octo::webhooks::v1::ReplayDeliveriesRequest& request,
                                Deadline deadline,
                                Callback<octo::webhooks::v1::ReplayDeliveriesResponse> done);
  virtual void SendTestEvent(const octo::webhooks::v1::SendTestEventRequest& request,
                             Deadline deadline,
                             Callback<octo::webhooks::v1::SendTestEventResponse> done);
  // grpc.health.v1.Health/Check of the subscription service.
  virtual void CheckHealth(const grpc::health::v1::HealthCheckRequest& request, Deadline deadline,
                           Callback<grpc::health::v1::HealthCheckResponse> done) = 0;
};

// The defaults of the extension RPCs.
#define OCTO_GATEWAY_UNIMPLEMENTED(Method, Request, Response)                       \
  inline void SubscriptionBackend::Method(const octo::webhooks::v1::Request&, Deadline, \
                                          Callback<octo::webhooks::v1::Response> done) {  \
    done(absl::UnimplementedError(#Method " is not served by this backend"));          \
  }
OCTO_GATEWAY_UNIMPLEMENTED(RotateWebhookSecret, RotateWebhookSecretRequest,
                           RotateWebhookSecretResponse)
OCTO_GATEWAY_UNIMPLEMENTED(EnableWebhook, EnableWebhookRequest, Webhook)
OCTO_GATEWAY_UNIMPLEMENTED(ListDeliveries, ListDeliveriesRequest, ListDeliveriesResponse)
OCTO_GATEWAY_UNIMPLEMENTED(GetDelivery, GetDeliveryRequest, Delivery)
OCTO_GATEWAY_UNIMPLEMENTED(RedeliverDelivery, RedeliverDeliveryRequest, Delivery)
OCTO_GATEWAY_UNIMPLEMENTED(ReplayDeliveries, ReplayDeliveriesRequest, ReplayDeliveriesResponse)
OCTO_GATEWAY_UNIMPLEMENTED(SendTestEvent, SendTestEventRequest, SendTestEventResponse)
#undef OCTO_GATEWAY_UNIMPLEMENTED

}  // namespace octo::gateway
