#pragma once
// One request of a route an API key opens, from authentication to response:
// the machinery the webhook routes (webhook_exchange.cc) and the
// notifications routes (notifications_handler.cc) share, so it lives once.
//
//   Start() -> AuthenticateRequest (request_auth.h: 401, 429, or the
//   service's error) -> the request's capabilities (400 when invalid) ->
//   Run(), the route's own work, which ends in exactly one Succeed, Fail,
//   FailWithStatus or Finish.
//
// Owned (shared_ptr) by the callbacks of the backend calls in flight; steps
// run one at a time, each on the thread of the callback that starts it, and
// only do CPU work. An exception in a step is logged and answers 500 if
// nothing was answered yet: nothing escapes into gRPC's threads. Every
// response carries Octo-Capabilities: the request's capabilities joined with
// ", " (empty when none or invalid).
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "gateway/http_types.h"
#include "gateway/octo_error.h"
#include "gateway/request_auth.h"
#include "gateway/router.h"
#include "gateway/subscription_backend.h"
#include "services/common/log.h"

namespace octo::gateway {

class KeyedExchange : public std::enable_shared_from_this<KeyedExchange> {
 public:
  // What every exchange of one handler shares.
  struct Context {
    SubscriptionBackend* backend = nullptr;  // outlives every callback
    KeyRateCheck key_check;
    std::chrono::milliseconds timeout{5000};  // all backend calls of one request, together
  };

  virtual ~KeyedExchange() = default;

  // Authenticates, then Run(); calls the request's `done` exactly once.
  void Start();

 protected:
  KeyedExchange(const Context& context, HttpRequest request, RouteMatch match,
                absl::StatusOr<std::vector<std::string>> capabilities, HttpHandler::Done done);

  // The route's work: the key was accepted (connection_id() is set) and the
  // capabilities are valid.
  virtual void Run() = 0;
  // The OCTO error for a failed backend call; default ErrorFromStatus with
  // the route's :id.
  virtual OctoError ErrorOf(const absl::Status& status) const;

  SubscriptionBackend* backend() const { return backend_; }
  SubscriptionBackend::Deadline deadline() const { return deadline_; }
  metrics::GatewayGuardMetrics* guard_metrics() const { return key_check_.guard_metrics; }
  const HttpRequest& http_request() const { return request_; }
  const RouteMatch& match() const { return match_; }
  const std::vector<std::string>& capabilities() const { return *capabilities_; }
  const std::string& connection_id() const { return connection_id_; }

  // 415 unless the body is declared JSON; false when it answered.
  bool CheckJsonBody();

  // A backend callback: on success `next(response)` as a step, else the
  // failure answered through ErrorOf.
  template <typename Response, typename Next>
  SubscriptionBackend::Callback<Response> Then(Next next) {
    return [self = shared_from_this(), next = std::move(next)](absl::StatusOr<Response> r) {
      self->Step([&] {
        if (!r.ok()) return self->FailWithStatus(r.status());
        next(*r);
      });
    };
  }

  // Every webhook of the connection with `dialect`, page after page (pages
  // of 1,000; after 100 a service that never ends its paging answers 500),
  // each rendered by `render`; then `done` with the JSON text of the array.
  using Renderer = std::function<boost::json::object(const octo::webhooks::v1::Webhook&)>;
  void ListAll(std::string dialect, Renderer render, std::function<void(std::string)> done);

  // Answers the failed backend call (ErrorOf); a 5xx is logged with the
  // service's message, which is never answered.
  void FailWithStatus(const absl::Status& status);
  void Fail(const OctoError& error);
  // 200 with a JSON body.
  void Succeed(std::string body);
  // Adds Octo-Capabilities and keep-alive, and answers.
  void Finish(HttpResponse response);

  // Runs one step on a backend callback thread.
  template <typename F>
  void Step(F&& step) {
    try {
      step();
    } catch (const std::exception& e) {
      log::Error("request step failed", {{"route", match_.route_template}, {"what", e.what()}});
      if (done_) Fail(InternalError());
    }
  }

 private:
  void OnAuthenticated(AuthOutcome auth);
  void ListPage(const std::string& page_token);

  SubscriptionBackend* const backend_;
  const KeyRateCheck key_check_;
  const SubscriptionBackend::Deadline deadline_;
  const HttpRequest request_;
  const RouteMatch match_;
  const absl::StatusOr<std::vector<std::string>> capabilities_;
  HttpHandler::Done done_;
  std::string connection_id_;
  // ListAll's state.
  std::string list_dialect_;
  Renderer list_render_;
  std::function<void(std::string)> list_done_;
  boost::json::array list_;
  int pages_ = 0;
};

}  // namespace octo::gateway
