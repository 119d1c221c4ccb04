#pragma once
// octo.webhooks.v1.SubscriptionService: webhook CRUD scoped by connection.
//
// Every field is validated before anything is stored (INVALID_ARGUMENT,
// message "<field>: ..." in the REST API's camelCase). Defaults:
// retryOnError = true, useContactLanguage = true. A webhook id that is not a
// UUID, or that belongs to another connection, answers NOT_FOUND exactly like
// a missing one. Responses mask URL credentials and header values; the
// signing secret is returned by CreateWebhook and RotateWebhookSecret only.
//
// The delivery operations (ListDeliveries, GetDelivery, RedeliverDelivery,
// ReplayDeliveries, SendTestEvent) are forwarded to octo-delivery's
// DeliveryOperationsService with the caller's connection_id, which scopes
// every query there; its status comes back unchanged, except that an
// unreachable or too slow delivery service is UNAVAILABLE. Thread-safe.
#include <chrono>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "octo/webhooks/v1/operations.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "services/common/address_guard.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

class SubscriptionServiceImpl final : public ::octo::webhooks::v1::SubscriptionService::Service {
 public:
  // `repository` and `operations` must outlive the service. Without
  // `operations` the delivery operations answer UNAVAILABLE. Webhook URLs
  // whose host is an IP literal (or localhost) must pass `destination_policy`
  // (SSRF guard; default: public addresses only).
  explicit SubscriptionServiceImpl(
      Repository* repository,
      ::octo::webhooks::v1::DeliveryOperationsService::StubInterface* operations = nullptr,
      std::chrono::milliseconds operations_timeout = std::chrono::seconds(10),
      DestinationPolicy destination_policy = {})
      : repository_(repository),
        operations_(operations),
        operations_timeout_(operations_timeout),
        destination_policy_(std::move(destination_policy)) {}
  SubscriptionServiceImpl(Repository* repository, DestinationPolicy destination_policy)
      : SubscriptionServiceImpl(repository, nullptr, std::chrono::seconds(10),
                                std::move(destination_policy)) {}

  grpc::Status CreateWebhook(grpc::ServerContext* context,
                             const ::octo::webhooks::v1::CreateWebhookRequest* request,
                             ::octo::webhooks::v1::CreateWebhookResponse* response) override;
  grpc::Status GetWebhook(grpc::ServerContext* context,
                          const ::octo::webhooks::v1::GetWebhookRequest* request,
                          ::octo::webhooks::v1::Webhook* response) override;
  grpc::Status ListWebhooks(grpc::ServerContext* context,
                            const ::octo::webhooks::v1::ListWebhooksRequest* request,
                            ::octo::webhooks::v1::ListWebhooksResponse* response) override;
  grpc::Status UpdateWebhook(grpc::ServerContext* context,
                             const ::octo::webhooks::v1::UpdateWebhookRequest* request,
                             ::octo::webhooks::v1::Webhook* response) override;
  grpc::Status DeleteWebhook(grpc::ServerContext* context,
                             const ::octo::webhooks::v1::DeleteWebhookRequest* request,
                             ::octo::webhooks::v1::Webhook* response) override;

  grpc::Status RotateWebhookSecret(
      grpc::ServerContext* context, const ::octo::webhooks::v1::RotateWebhookSecretRequest* request,
      ::octo::webhooks::v1::RotateWebhookSecretResponse* response) override;
  grpc::Status EnableWebhook(grpc::ServerContext* context,
                             const ::octo::webhooks::v1::EnableWebhookRequest* request,
                             ::octo::webhooks::v1::Webhook* response) override;

  grpc::Status ListDeliveries(grpc::ServerContext* context,
                              const ::octo::webhooks::v1::ListDeliveriesRequest* request,
                              ::octo::webhooks::v1::ListDeliveriesResponse* response) override;
  grpc::Status GetDelivery(grpc::ServerContext* context,
                           const ::octo::webhooks::v1::GetDeliveryRequest* request,
                           ::octo::webhooks::v1::Delivery* response) override;
  grpc::Status RedeliverDelivery(grpc::ServerContext* context,
                                 const ::octo::webhooks::v1::RedeliverDeliveryRequest* request,
                                 ::octo::webhooks::v1::Delivery* response) override;
  grpc::Status ReplayDeliveries(grpc::ServerContext* context,
                                const ::octo::webhooks::v1::ReplayDeliveriesRequest* request,
                                ::octo::webhooks::v1::ReplayDeliveriesResponse* response) override;
  grpc::Status SendTestEvent(grpc::ServerContext* context,
                             const ::octo::webhooks::v1::SendTestEventRequest* request,
                             ::octo::webhooks::v1::SendTestEventResponse* response) override;

  // Default and bounds of RotateWebhookSecretRequest.grace_period_seconds.
  static constexpr int kDefaultGracePeriodSeconds = 24 * 3600;
  static constexpr int kMaxGracePeriodSeconds = 7 * 24 * 3600;

 private:
  // Calls `call` on the operations stub with the request's connection_id
  // checked and a deadline; see the class comment for the codes.
  template <typename Request, typename Response, typename Call>
  grpc::Status Forward(std::string_view method, grpc::ServerContext* context,
                       const Request& request, Response* response, Call call);

  Repository* const repository_;
  ::octo::webhooks::v1::DeliveryOperationsService::StubInterface* const operations_;
  const std::chrono::milliseconds operations_timeout_;
  const DestinationPolicy destination_policy_;
};

}  // namespace octo::subscription
