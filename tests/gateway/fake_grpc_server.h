#pragma once
// A real gRPC server on 127.0.0.1:0 serving AuthService, SubscriptionService
// and grpc.health.v1.Health from a FakeSubscriptionBackend, so the gateway's
// GrpcSubscriptionBackend is tested over the wire.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/server.h>

#include "tests/gateway/fake_subscription_backend.h"

namespace octo::gateway::testing {

class FakeGrpcServer {
 public:
  explicit FakeGrpcServer(FakeSubscriptionBackend* backend);
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
