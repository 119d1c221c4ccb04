#pragma once
// octo.webhooks.v1.AuthService: resolves a bearer API key to its connection.
// The key is hashed (SHA-256) and looked up by hash; UNAUTHENTICATED for an
// unknown, malformed or revoked key (a malformed one never reaches the
// database). The key is never logged. Thread-safe.
#include <grpcpp/grpcpp.h>

#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

class AuthServiceImpl final : public ::octo::webhooks::v1::AuthService::Service {
 public:
  // `repository` must outlive the service.
  explicit AuthServiceImpl(Repository* repository) : repository_(repository) {}

  grpc::Status Authenticate(grpc::ServerContext* context,
                            const ::octo::webhooks::v1::AuthenticateRequest* request,
                            ::octo::webhooks::v1::AuthenticateResponse* response) override;

 private:
  Repository* const repository_;
};

}  // namespace octo::subscription
