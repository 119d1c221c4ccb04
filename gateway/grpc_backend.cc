#include "gateway/grpc_backend.h"

#include <utility>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "services/common/grpc_auth.h"
#include "services/common/grpc_channel.h"
#include "services/common/log.h"
#include "services/common/status.h"

namespace octo::gateway {

namespace v1 = octo::webhooks::v1;
namespace health = grpc::health::v1;

std::shared_ptr<grpc::Channel> MakeSubscriptionChannel(const std::string& target,
                                                      metrics::GrpcMetrics* metrics,
                                                      const std::string& caller_token) {
  // Round-robin over every address the target resolves to, a replica that
  // is down or NOT_SERVING skipped (services/common/grpc_channel.h).
  grpc::ChannelArguments args = grpc_channel::ReplicaChannelArguments();
  args.SetMaxReceiveMessageSize(kMaxSubscriptionMessageBytes);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (metrics != nullptr) interceptors = metrics->ClientInterceptors();
  if (!caller_token.empty()) interceptors.push_back(grpc_auth::TokenInterceptor(caller_token));
  if (!interceptors.empty()) {
    return grpc::experimental::CreateCustomChannelWithInterceptors(
        target, grpc::InsecureChannelCredentials(), args, std::move(interceptors));
  }
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

GrpcSubscriptionBackend::GrpcSubscriptionBackend(std::shared_ptr<grpc::Channel> channel)
    : auth_(v1::AuthService::NewStub(channel)),
      subscriptions_(v1::SubscriptionService::NewStub(channel)),
      health_(health::Health::NewStub(channel)) {}

GrpcSubscriptionBackend::~GrpcSubscriptionBackend() { Shutdown(); }

void GrpcSubscriptionBackend::Shutdown() {
  std::vector<std::shared_ptr<grpc::ClientContext>> in_flight;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (const auto& [raw, context] : contexts_) in_flight.push_back(context);
  }
  // Outside the lock: a cancelled call's callback may run on this thread.
  for (const auto& context : in_flight) context->TryCancel();
  in_flight.clear();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* count) { return *count == 0; }, &in_flight_));
}

bool GrpcSubscriptionBackend::Register(std::shared_ptr<grpc::ClientContext> context) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  grpc::ClientContext* raw = context.get();
  contexts_.emplace(raw, std::move(context));
  ++in_flight_;
  return true;
}

void GrpcSubscriptionBackend::Unregister(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  contexts_.erase(context);
}

void GrpcSubscriptionBackend::Finished() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

template <typename Request, typename Response, typename Start>
void GrpcSubscriptionBackend::Call(const Request& request, Deadline deadline,
                                   Callback<Response> done, Start start) {
  struct State {
    grpc::ClientContext context;
    Request request;
    Response response;
  };
  auto state = std::make_shared<State>();
  state->context.set_deadline(deadline);
  state->request = request;
  if (!Register(std::shared_ptr<grpc::ClientContext>(state, &state->context))) {
    done(absl::UnavailableError("the gateway is shutting down"));
    return;
  }
  State* raw = state.get();
  start(&raw->context, &raw->request, &raw->response,
        [this, state = std::move(state), done = std::move(done)](grpc::Status status) mutable {
          Unregister(&state->context);
          absl::StatusOr<Response> result =
              status.ok() ? absl::StatusOr<Response>(std::move(state->response))
                          : absl::StatusOr<Response>(
                                grpc_auth::FromInternalCall(status, "octo-subscription"));
          state.reset();
          Callback<Response> callback = std::move(done);
          try {
            callback(std::move(result));
          } catch (const std::exception& e) {
            // An exception must not unwind into gRPC's threads.
            log::Error("backend callback threw", {{"what", e.what()}});
          }
          // Counted finished only after `callback` returned: Shutdown() waits
          // for the callbacks, not only for the calls.
          Finished();
        });
}

void GrpcSubscriptionBackend::Authenticate(const v1::AuthenticateRequest& request,
                                           Deadline deadline,
                                           Callback<v1::AuthenticateResponse> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         auth_->async()->Authenticate(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::CreateWebhook(const v1::CreateWebhookRequest& request,
                                            Deadline deadline,
                                            Callback<v1::CreateWebhookResponse> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->CreateWebhook(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::GetWebhook(const v1::GetWebhookRequest& request, Deadline deadline,
                                         Callback<v1::Webhook> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->GetWebhook(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::ListWebhooks(const v1::ListWebhooksRequest& request,
                                           Deadline deadline,
                                           Callback<v1::ListWebhooksResponse> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->ListWebhooks(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::UpdateWebhook(const v1::UpdateWebhookRequest& request,
                                            Deadline deadline, Callback<v1::Webhook> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->UpdateWebhook(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::DeleteWebhook(const v1::DeleteWebhookRequest& request,
                                            Deadline deadline, Callback<v1::Webhook> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->DeleteWebhook(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::CheckHealth(const health::HealthCheckRequest& request,
                                          Deadline deadline,
                                          Callback<health::HealthCheckResponse> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         health_->async()->Check(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::RotateWebhookSecret(const v1::RotateWebhookSecretRequest& request, Deadline deadline,
                                       Callback<v1::RotateWebhookSecretResponse> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->RotateWebhookSecret(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::EnableWebhook(const v1::EnableWebhookRequest& request, Deadline deadline,
                                       Callback<v1::Webhook> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->EnableWebhook(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::ListDeliveries(const v1::ListDeliveriesRequest& request, Deadline deadline,
                                       Callback<v1::ListDeliveriesResponse> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->ListDeliveries(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::GetDelivery(const v1::GetDeliveryRequest& request, Deadline deadline,
                                       Callback<v1::Delivery> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->GetDelivery(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::RedeliverDelivery(const v1::RedeliverDeliveryRequest& request, Deadline deadline,
                                       Callback<v1::Delivery> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->RedeliverDelivery(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::ReplayDeliveries(const v1::ReplayDeliveriesRequest& request, Deadline deadline,
                                       Callback<v1::ReplayDeliveriesResponse> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->ReplayDeliveries(context, req, resp, std::move(callback));
       });
}

void GrpcSubscriptionBackend::SendTestEvent(const v1::SendTestEventRequest& request, Deadline deadline,
                                       Callback<v1::SendTestEventResponse> done) {
  Call(request, deadline, std::move(done),
       [this](auto* context, auto* req, auto* resp, auto callback) {
         subscriptions_->async()->SendTestEvent(context, req, resp, std::move(callback));
       });
}

}  // namespace octo::gateway
