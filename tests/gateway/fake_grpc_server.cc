#include "tests/gateway/fake_grpc_server.h"

#include <future>
#include <thread>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "services/common/status.h"

namespace octo::gateway::testing {

namespace v1 = octo::webhooks::v1;
namespace health = grpc::health::v1;

namespace {

// Runs one fake call (which completes inline) and copies its result out.
template <typename Response, typename Start>
grpc::Status Serve(const std::atomic<int>& delay_ms, Response* out, Start start) {
  if (int ms = delay_ms.load(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  absl::StatusOr<Response> result = absl::InternalError("fake did not answer");
  start([&](absl::StatusOr<Response> r) { result = std::move(r); });
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

SubscriptionBackend::Deadline DeadlineOf(grpc::ServerContext* context) {
  return context->deadline();
}

}  // namespace

class FakeGrpcServer::Services final : public v1::AuthService::Service,
                                       public v1::SubscriptionService::Service,
                                       public health::Health::Service {
 public:
  Services(FakeSubscriptionBackend* backend, const std::atomic<int>* delay_ms)
      : backend_(backend), delay_ms_(delay_ms) {}

  grpc::Status Authenticate(grpc::ServerContext* c, const v1::AuthenticateRequest* r,
                            v1::AuthenticateResponse* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->Authenticate(*r, DeadlineOf(c), done); });
  }
  grpc::Status CreateWebhook(grpc::ServerContext* c, const v1::CreateWebhookRequest* r,
                             v1::CreateWebhookResponse* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->CreateWebhook(*r, DeadlineOf(c), done); });
  }
  grpc::Status GetWebhook(grpc::ServerContext* c, const v1::GetWebhookRequest* r,
                          v1::Webhook* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->GetWebhook(*r, DeadlineOf(c), done); });
  }
  grpc::Status ListWebhooks(grpc::ServerContext* c, const v1::ListWebhooksRequest* r,
                            v1::ListWebhooksResponse* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->ListWebhooks(*r, DeadlineOf(c), done); });
  }
  grpc::Status UpdateWebhook(grpc::ServerContext* c, const v1::UpdateWebhookRequest* r,
                             v1::Webhook* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->UpdateWebhook(*r, DeadlineOf(c), done); });
  }
  grpc::Status DeleteWebhook(grpc::ServerContext* c, const v1::DeleteWebhookRequest* r,
                             v1::Webhook* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->DeleteWebhook(*r, DeadlineOf(c), done); });
  }
  grpc::Status RotateWebhookSecret(grpc::ServerContext* c, const v1::RotateWebhookSecretRequest* r,
                                   v1::RotateWebhookSecretResponse* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->RotateWebhookSecret(*r, DeadlineOf(c), done); });
  }
  grpc::Status EnableWebhook(grpc::ServerContext* c, const v1::EnableWebhookRequest* r,
                             v1::Webhook* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->EnableWebhook(*r, DeadlineOf(c), done); });
  }
  grpc::Status Check(grpc::ServerContext* c, const health::HealthCheckRequest* r,
                     health::HealthCheckResponse* out) override {
    return Serve(*delay_ms_, out,
                 [&](auto done) { backend_->CheckHealth(*r, DeadlineOf(c), done); });
  }

 private:
  FakeSubscriptionBackend* const backend_;
  const std::atomic<int>* const delay_ms_;
};

FakeGrpcServer::FakeGrpcServer(FakeSubscriptionBackend* backend, grpc::Service* extra)
    : services_(std::make_unique<Services>(backend, &delay_ms_)) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(static_cast<v1::AuthService::Service*>(services_.get()));
  builder.RegisterService(static_cast<v1::SubscriptionService::Service*>(services_.get()));
  builder.RegisterService(static_cast<health::Health::Service*>(services_.get()));
  if (extra != nullptr) builder.RegisterService(extra);
  server_ = builder.BuildAndStart();
}

FakeGrpcServer::~FakeGrpcServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

std::string FakeGrpcServer::target() const { return absl::StrCat("127.0.0.1:", port_); }

}  // namespace octo::gateway::testing
