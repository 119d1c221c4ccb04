#pragma once
// octo.webhooks.v1.SubscriptionService: webhook CRUD scoped by connection.
//
// Every field is validated before anything is stored (INVALID_ARGUMENT,
// message "<field>: ..." in the REST API's camelCase). Defaults:
// retryOnError = true, useContactLanguage = true. A webhook id that is not a
// UUID, or that belongs to another connection, answers NOT_FOUND exactly like
// a missing one. Responses mask URL credentials and header values; the
// signing secret is returned by CreateWebhook only. Thread-safe.
#include <grpcpp/grpcpp.h>

#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "services/common/address_guard.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

class SubscriptionServiceImpl final : public ::octo::webhooks::v1::SubscriptionService::Service {
 public:
  // `repository` must outlive the service. Webhook URLs whose host is an IP
  // literal (or localhost) must pass `destination_policy` (SSRF guard;
  // default: public addresses only).
  explicit SubscriptionServiceImpl(Repository* repository, DestinationPolicy destination_policy = {})
      : repository_(repository), destination_policy_(std::move(destination_policy)) {}

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

 private:
  Repository* const repository_;
  const DestinationPolicy destination_policy_;
};

}  // namespace octo::subscription
