#pragma once
// octo.webhooks.v1.AdminService: suppliers (with their OCTO profile),
// connections and API keys, for operators and the platform.
//
// Every field is validated (INVALID_ARGUMENT, "<field>: ..."); ids must be
// UUIDs. An API key is octo::crypto::NewApiKey(); only its SHA-256 and its
// first 12 characters are stored, and CreateApiKey is the only response that
// carries the key. Thread-safe.
#include <grpcpp/grpcpp.h>

#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

// Characters of the key kept as its recognisable prefix ("octo_" + 7).
inline constexpr std::size_t kApiKeyPrefixChars = 12;

class AdminServiceImpl final : public ::octo::webhooks::v1::AdminService::Service {
 public:
  // `repository` must outlive the service. `default_max_webhooks` (1..100000)
  // is the cap of a connection created with max_webhooks = 0.
  AdminServiceImpl(Repository* repository, int default_max_webhooks)
      : repository_(repository), default_max_webhooks_(default_max_webhooks) {}

  grpc::Status CreateSupplier(grpc::ServerContext* context,
                              const ::octo::webhooks::v1::CreateSupplierRequest* request,
                              ::octo::webhooks::v1::Supplier* response) override;
  grpc::Status GetSupplier(grpc::ServerContext* context,
                           const ::octo::webhooks::v1::GetSupplierRequest* request,
                           ::octo::webhooks::v1::Supplier* response) override;
  grpc::Status ListSuppliers(grpc::ServerContext* context,
                             const ::octo::webhooks::v1::ListSuppliersRequest* request,
                             ::octo::webhooks::v1::ListSuppliersResponse* response) override;
  grpc::Status UpdateSupplier(grpc::ServerContext* context,
                              const ::octo::webhooks::v1::UpdateSupplierRequest* request,
                              ::octo::webhooks::v1::Supplier* response) override;
  grpc::Status CreateConnection(grpc::ServerContext* context,
                                const ::octo::webhooks::v1::CreateConnectionRequest* request,
                                ::octo::webhooks::v1::Connection* response) override;
  grpc::Status ListConnections(grpc::ServerContext* context,
                               const ::octo::webhooks::v1::ListConnectionsRequest* request,
                               ::octo::webhooks::v1::ListConnectionsResponse* response) override;
  grpc::Status CreateApiKey(grpc::ServerContext* context,
                            const ::octo::webhooks::v1::CreateApiKeyRequest* request,
                            ::octo::webhooks::v1::CreateApiKeyResponse* response) override;
  grpc::Status ListApiKeys(grpc::ServerContext* context,
                           const ::octo::webhooks::v1::ListApiKeysRequest* request,
                           ::octo::webhooks::v1::ListApiKeysResponse* response) override;
  grpc::Status RevokeApiKey(grpc::ServerContext* context,
                            const ::octo::webhooks::v1::RevokeApiKeyRequest* request,
                            ::octo::webhooks::v1::ApiKey* response) override;

 private:
  Repository* const repository_;
  const int default_max_webhooks_;
};

}  // namespace octo::subscription
