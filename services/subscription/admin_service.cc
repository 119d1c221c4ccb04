#include "services/subscription/admin_service.h"

#include <string>

#include "services/common/crypto.h"
#include "services/subscription/rpc_util.h"
#include "services/subscription/validation.h"

namespace octo::subscription {
namespace {

namespace pb = ::octo::webhooks::v1;

}  // namespace

grpc::Status AdminServiceImpl::CreateSupplier(grpc::ServerContext*,
                                              const pb::CreateSupplierRequest* request,
                                              pb::Supplier* response) {
  return HandleRpc("AdminService/CreateSupplier", [&](RpcLogFields&) -> absl::Status {
    NewSupplier supplier{request->name(), request->endpoint(), FromProto(request->contact())};
    if (absl::Status s = ValidateName("name", supplier.name); !s.ok()) return s;
    if (absl::Status s = ValidateEndpoint("endpoint", supplier.endpoint); !s.ok()) return s;
    if (absl::Status s = ValidateContact(supplier.contact); !s.ok()) return s;
    absl::StatusOr<SupplierRecord> created = repository_->CreateSupplier(supplier);
    if (!created.ok()) return created.status();
    ToProto(*created, response);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::GetSupplier(grpc::ServerContext*,
                                           const pb::GetSupplierRequest* request,
                                           pb::Supplier* response) {
  return HandleRpc("AdminService/GetSupplier", [&](RpcLogFields&) -> absl::Status {
    if (absl::Status s = ValidateUuid("supplierId", request->supplier_id()); !s.ok()) return s;
    absl::StatusOr<SupplierRecord> supplier = repository_->GetSupplier(request->supplier_id());
    if (!supplier.ok()) return supplier.status();
    ToProto(*supplier, response);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::ListSuppliers(grpc::ServerContext*, const pb::ListSuppliersRequest*,
                                             pb::ListSuppliersResponse* response) {
  return HandleRpc("AdminService/ListSuppliers", [&](RpcLogFields&) -> absl::Status {
    absl::StatusOr<std::vector<SupplierRecord>> suppliers = repository_->ListSuppliers();
    if (!suppliers.ok()) return suppliers.status();
    for (const SupplierRecord& s : *suppliers) ToProto(s, response->add_suppliers());
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::UpdateSupplier(grpc::ServerContext*,
                                              const pb::UpdateSupplierRequest* request,
                                              pb::Supplier* response) {
  return HandleRpc("AdminService/UpdateSupplier", [&](RpcLogFields&) -> absl::Status {
    if (absl::Status s = ValidateUuid("supplierId", request->supplier_id()); !s.ok()) return s;
    SupplierPatch patch;
    if (request->has_name()) {
      if (absl::Status s = ValidateName("name", request->name()); !s.ok()) return s;
      patch.name = request->name();
    }
    if (request->has_endpoint()) {
      if (absl::Status s = ValidateEndpoint("endpoint", request->endpoint()); !s.ok()) return s;
      patch.endpoint = request->endpoint();
    }
    if (request->has_contact()) {
      patch.contact = FromProto(request->contact());
      if (absl::Status s = ValidateContact(*patch.contact); !s.ok()) return s;
    }
    absl::StatusOr<SupplierRecord> supplier =
        repository_->UpdateSupplier(request->supplier_id(), patch);
    if (!supplier.ok()) return supplier.status();
    ToProto(*supplier, response);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::CreateConnection(grpc::ServerContext*,
                                                const pb::CreateConnectionRequest* request,
                                                pb::Connection* response) {
  return HandleRpc("AdminService/CreateConnection", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("supplierId", request->supplier_id()); !s.ok()) return s;
    if (absl::Status s = ValidateName("name", request->name()); !s.ok()) return s;
    if (absl::Status s = ValidateMaxWebhooks(request->max_webhooks()); !s.ok()) return s;
    const int max_webhooks =
        request->max_webhooks() == 0 ? default_max_webhooks_ : request->max_webhooks();
    absl::StatusOr<ConnectionRecord> connection =
        repository_->CreateConnection(request->supplier_id(), request->name(), max_webhooks);
    if (!connection.ok()) return connection.status();
    log.connection_id = connection->id;
    ToProto(*connection, response);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::ListConnections(grpc::ServerContext*,
                                               const pb::ListConnectionsRequest* request,
                                               pb::ListConnectionsResponse* response) {
  return HandleRpc("AdminService/ListConnections", [&](RpcLogFields&) -> absl::Status {
    if (absl::Status s = ValidateUuid("supplierId", request->supplier_id()); !s.ok()) return s;
    absl::StatusOr<std::vector<ConnectionRecord>> connections =
        repository_->ListConnections(request->supplier_id());
    if (!connections.ok()) return connections.status();
    for (const ConnectionRecord& c : *connections) ToProto(c, response->add_connections());
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::CreateApiKey(grpc::ServerContext*,
                                            const pb::CreateApiKeyRequest* request,
                                            pb::CreateApiKeyResponse* response) {
  return HandleRpc("AdminService/CreateApiKey", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    if (absl::Status s = ValidateName("name", request->name(), /*allow_empty=*/true); !s.ok())
      return s;
    const std::string key = crypto::NewApiKey();
    NewApiKey record{request->connection_id(), request->name(), key.substr(0, kApiKeyPrefixChars),
                     crypto::Sha256(key)};
    absl::StatusOr<ApiKeyRecord> created = repository_->CreateApiKey(record);
    if (!created.ok()) return created.status();
    ToProto(*created, response->mutable_api_key());
    response->set_key(key);
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::ListApiKeys(grpc::ServerContext*,
                                           const pb::ListApiKeysRequest* request,
                                           pb::ListApiKeysResponse* response) {
  return HandleRpc("AdminService/ListApiKeys", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    absl::StatusOr<std::vector<ApiKeyRecord>> keys =
        repository_->ListApiKeys(request->connection_id());
    if (!keys.ok()) return keys.status();
    for (const ApiKeyRecord& k : *keys) ToProto(k, response->add_api_keys());
    return absl::OkStatus();
  });
}

grpc::Status AdminServiceImpl::RevokeApiKey(grpc::ServerContext*,
                                            const pb::RevokeApiKeyRequest* request,
                                            pb::ApiKey* response) {
  return HandleRpc("AdminService/RevokeApiKey", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("apiKeyId", request->api_key_id()); !s.ok()) return s;
    absl::StatusOr<ApiKeyRecord> key = repository_->RevokeApiKey(request->api_key_id());
    if (!key.ok()) return key.status();
    log.connection_id = key->connection_id;
    ToProto(*key, response);
    return absl::OkStatus();
  });
}

}  // namespace octo::subscription
