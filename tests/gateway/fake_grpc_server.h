#pragma once
// A real gRPC server on 127.0.0.1:0 serving AuthService, SubscriptionService
// and grpc.health.v1.Health from a FakeSubscriptionBackend, so the gateway's
// GrpcSubscriptionBackend (and the dashboard's stubs) are tested over the
// wire. A test may add a service of its own (e.g. an OperatorService).
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/impl/service_type.h>
#include <grpcpp/server.h>

#include "tests/gateway/fake_subscription_backend.h"

namespace octo::gateway::testing {

class FakeGrpcServer {
 public:
  // `extra`, when given, is served too and must outlive the server.
  explicit FakeGrpcServer(FakeSubscriptionBackend* backend, grpc::Service* extra = nullptr);
  ~FakeGrpcServer();

  // "127.0.0.1:<port>".
  std::string target() const;
  // Every RPC sleeps this long before answering.
  void SetDelay(std::chrono::milliseconds delay) { delay_ms_ = static_cast<int>(delay.count()); }

 private:
  class Services;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<int> delay_ms_{0};
};

}  // namespace octo::gateway::testing
