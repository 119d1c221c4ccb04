#pragma once
// octo.webhooks.v1.OperatorService: operators (a supplier's dashboard
// users), their sessions, and the supplier-scoped reads of the dashboard.
// Passwords and session tokens are generated here and stored only hashed;
// neither is ever logged. Thread-safe.
#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "octo/webhooks/v1/operators.grpc.pb.h"
#include "services/subscription/operator_store.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

class OperatorServiceImpl final : public ::octo::webhooks::v1::OperatorService::Service {
 public:
  // `store` and `repository` must outlive the service.
  OperatorServiceImpl(OperatorStore* store, Repository* repository, absl::Duration session_lifetime)
      : store_(store), repository_(repository), session_lifetime_(session_lifetime) {}

  using Ctx = grpc::ServerContext;
  grpc::Status CreateOperator(Ctx*, const ::octo::webhooks::v1::CreateOperatorRequest* request,
                              ::octo::webhooks::v1::CreateOperatorResponse* response) override;
  grpc::Status ListOperators(Ctx*, const ::octo::webhooks::v1::ListOperatorsRequest* request,
                             ::octo::webhooks::v1::ListOperatorsResponse* response) override;
  grpc::Status DeleteOperator(Ctx*, const ::octo::webhooks::v1::DeleteOperatorRequest* request,
                              ::octo::webhooks::v1::Operator* response) override;
  grpc::Status Login(Ctx*, const ::octo::webhooks::v1::LoginRequest* request,
                     ::octo::webhooks::v1::OperatorSession* response) override;
  grpc::Status AuthenticateSession(Ctx*, const ::octo::webhooks::v1::SessionRequest* request,
                                   ::octo::webhooks::v1::OperatorSession* response) override;
  grpc::Status Logout(Ctx*, const ::octo::webhooks::v1::SessionRequest* request,
                      ::octo::webhooks::v1::LogoutResponse* response) override;
  grpc::Status ListSupplierConnections(Ctx*, const ::octo::webhooks::v1::ListSupplierConnectionsRequest* request,
                                       ::octo::webhooks::v1::ListSupplierConnectionsResponse* response) override;
  grpc::Status ListSupplierWebhooks(Ctx*, const ::octo::webhooks::v1::ListSupplierWebhooksRequest* request,
                                    ::octo::webhooks::v1::ListSupplierWebhooksResponse* response) override;
  grpc::Status GetSupplierWebhook(Ctx*, const ::octo::webhooks::v1::GetSupplierWebhookRequest* request,
                                  ::octo::webhooks::v1::SupplierWebhook* response) override;

 private:
  static void FillWebhook(const WebhookRecord& webhook, const WebhookRef& ref, const HealthCounts& health,
                          ::octo::webhooks::v1::SupplierWebhook* out);

  OperatorStore* const store_;
  Repository* const repository_;
  const absl::Duration session_lifetime_;
};

// An operator login name: 3..100 of letters, digits and . _ @ + -.
bool IsValidOperatorName(std::string_view name);

}  // namespace octo::subscription
