#include "gateway/api_handler.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "gateway/json_body.h"
#include "gateway/notifications_handler.h"
#include "gateway/octo_error.h"
#include "gateway/openapi_document.h"
#include "gateway/operations_json.h"
#include "gateway/request_auth.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"
#include "gateway/webhook_json.h"
#include "services/common/log.h"
#include "services/common/validation.h"

namespace octo::gateway {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace v1 = octo::webhooks::v1;
namespace health = grpc::health::v1;

namespace {

// ListWebhooks pages are fetched until next_page_token is empty; this bounds
// the loop should a service ever hand back a token that never ends.
constexpr int kMaxListPages = 100;
constexpr int kListPageSize = 1000;

// The webhook routes see only webhooks; subscriptions have their own
// (notifications_handler.h). The extension routes serve both.
constexpr std::string_view kWebhookDialect = "webhook";

SubscriptionBackend::Deadline DeadlineAfter(std::chrono::milliseconds timeout) {
  return std::chrono::system_clock::now() + timeout;
}

// One webhook request, from authentication to response. Owned by the
// callbacks of the backend calls in flight; steps run one at a time.
class WebhookExchange : public std::enable_shared_from_this<WebhookExchange> {
 public:
  WebhookExchange(SubscriptionBackend* backend, const ApiHandler::Options& options,
                  HttpRequest request, RouteMatch match,
                  absl::StatusOr<std::vector<std::string>> capabilities, HttpHandler::Done done)
      : backend_(backend),
        list_cache_(options.list_cache),
        key_check_{options.key_limiter, options.guard_metrics},
        deadline_(DeadlineAfter(options.request_timeout)),
        request_(std::move(request)),
        match_(std::move(match)),
        capabilities_(std::move(capabilities)),
        done_(std::move(done)) {}

  void Start() {
    AuthenticateRequest(backend_, deadline_, request_, key_check_,
                        [self = shared_from_this()](AuthOutcome outcome) {
                          self->Step([&] { self->OnAuthenticated(std::move(outcome)); });
                        });
  }

 private:
  void OnAuthenticated(AuthOutcome auth) {
    if (auth.unauthorized) return Fail(*auth.unauthorized);
    if (!auth.backend_status.ok()) return FailWithStatus(auth.backend_status, /*webhook_id=*/"");
    if (auth.too_many) return Finish(*std::move(auth.too_many));
    connection_id_ = std::move(auth.connection_id);
    if (!capabilities_.ok()) return Fail(BadRequest(std::string(capabilities_.status().message())));

    switch (match_.route) {
      case Route::kCreateWebhook:
        return Create();
      case Route::kListWebhooks:
        return List();
      case Route::kGetWebhook:
        return Get();
      case Route::kUpdateWebhook:
        return Update();
      case Route::kDeleteWebhook:
        return Delete();
      case Route::kListDeliveries:
        return ListDeliveries();
      case Route::kGetDelivery:
        return GetDelivery();
      case Route::kRedeliverDelivery:
        return Redeliver();
      case Route::kReplayDeliveries:
        return Replay();
      case Route::kSendTestEvent:
        return SendTest();
      case Route::kRotateWebhookSecret:
        return RotateSecret();
      case Route::kEnableWebhook:
        return Enable();
      default:
        return Fail(InternalError());  // not a webhook route: a bug
    }
  }

  // 415 unless the body is declared JSON.
  bool CheckJsonBody() {
    const auto content_type = request_.find(http::field::content_type);
    if (content_type == request_.end() || !IsJsonContentType(content_type->value())) {
      Fail(BadRequest("Content-Type must be application/json",
                      http::status::unsupported_media_type));
      return false;
    }
    return true;
  }

  // INVALID_WEBHOOK_ID for an id that cannot exist.
  bool CheckWebhookId() {
    if (IsUuid(match_.webhook_id)) return true;
    Fail(InvalidWebhookId(match_.webhook_id));
    return false;
  }

  void Create() {
    if (!CheckJsonBody()) return;
    absl::StatusOr<v1::CreateWebhookRequest> request = ParseCreateWebhookBody(request_.body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id_);
    for (const std::string& capability : *capabilities_) request->add_capabilities(capability);
    backend_->CreateWebhook(
        *request, deadline_,
        [self = shared_from_this()](absl::StatusOr<v1::CreateWebhookResponse> r) {
          self->Step([&] {
            if (!r.ok()) return self->FailWithStatus(r.status());
            self->Succeed(JsonText(WebhookToJson(r->webhook(), r->secret())));
          });
        });
  }

  // From the cache when a fresh body is there (list_cache.h), else fetched.
  void List() {
    if (list_cache_ != nullptr && list_cache_->enabled()) {
      const ListCache::Clock::time_point now = ListCache::Clock::now();
      if (std::shared_ptr<const std::string> body = list_cache_->Find(connection_id_, now)) {
        if (key_check_.guard_metrics != nullptr) key_check_.guard_metrics->ListLookup("hit");
        return Succeed(*body);
      }
      if (key_check_.guard_metrics != nullptr) key_check_.guard_metrics->ListLookup("miss");
      fill_started_ = now;
    }
    ListPage("");
  }

  void ListPage(const std::string& page_token) {
    if (++pages_ > kMaxListPages) {
      log::Error("ListWebhooks paging did not end", {{"route", match_.route_template}});
      return Fail(InternalError());
    }
    v1::ListWebhooksRequest request;
    request.set_connection_id(connection_id_);
    request.set_page_size(kListPageSize);
    request.set_page_token(page_token);
    request.set_dialect(std::string(kWebhookDialect));
    backend_->ListWebhooks(request, deadline_,
                           [self = shared_from_this()](absl::StatusOr<v1::ListWebhooksResponse> r) {
                             self->Step([&] {
                               if (!r.ok()) return self->FailWithStatus(r.status());
                               for (const v1::Webhook& webhook : r->webhooks()) {
                                 self->list_.emplace_back(WebhookToJson(webhook));
                               }
                               if (!r->next_page_token().empty())
                                 return self->ListPage(r->next_page_token());
                               std::string body = JsonText(self->list_);
                               if (self->fill_started_.has_value())
                                 self->list_cache_->Store(self->connection_id_,
                                                          *self->fill_started_, body);
                               self->Succeed(std::move(body));
                             });
                           });
  }

  void Get() {
    if (!CheckWebhookId()) return;
    v1::GetWebhookRequest request;
    request.set_connection_id(connection_id_);
    request.set_webhook_id(match_.webhook_id);
    request.set_dialect(std::string(kWebhookDialect));
    backend_->GetWebhook(request, deadline_, WebhookCallback());
  }

  void Update() {
    if (!CheckWebhookId() || !CheckJsonBody()) return;
    absl::StatusOr<v1::UpdateWebhookRequest> request = ParseUpdateWebhookBody(request_.body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id_);
    request->set_webhook_id(match_.webhook_id);
    request->set_dialect(std::string(kWebhookDialect));
    backend_->UpdateWebhook(*request, deadline_, WebhookCallback());
  }

  void Delete() {
    if (!CheckWebhookId()) return;
    v1::DeleteWebhookRequest request;
    request.set_connection_id(connection_id_);
    request.set_webhook_id(match_.webhook_id);
    request.set_dialect(std::string(kWebhookDialect));
    backend_->DeleteWebhook(request, deadline_, WebhookCallback());
  }

  // ---- extensions ----

  bool IsExtensionRoute() const {
    switch (match_.route) {
      case Route::kListDeliveries:
      case Route::kGetDelivery:
      case Route::kRedeliverDelivery:
      case Route::kReplayDeliveries:
      case Route::kSendTestEvent:
      case Route::kRotateWebhookSecret:
      case Route::kEnableWebhook:
        return true;
      default:
        return false;
    }
  }

  // INVALID_DELIVERY_ID for an id that cannot exist.
  bool CheckDeliveryId() {
    if (IsUuid(match_.delivery_id)) return true;
    Fail(InvalidDeliveryId(match_.delivery_id));
    return false;
  }

  // Routes without parameters: no query; no body or "{}".
  bool CheckNoParameters() {
    if (absl::Status s = CheckNoQuery(request_.target()); !s.ok()) {
      Fail(BadRequest(std::string(s.message())));
      return false;
    }
    const auto content_type = request_.find(http::field::content_type);
    const bool json =
        content_type != request_.end() && IsJsonContentType(content_type->value());
    absl::Status s = CheckEmptyBody(request_.body(), json);
    if (absl::IsFailedPrecondition(s)) {
      Fail(BadRequest(std::string(s.message()), http::status::unsupported_media_type));
      return false;
    }
    if (!s.ok()) {
      Fail(BadRequest(std::string(s.message())));
      return false;
    }
    return true;
  }

  void ListDeliveries() {
    if (!CheckWebhookId()) return;
    absl::StatusOr<v1::ListDeliveriesRequest> request = ParseListDeliveriesQuery(request_.target());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id_);
    request->set_webhook_id(match_.webhook_id);
    backend_->ListDeliveries(
        *request, deadline_,
        [self = shared_from_this()](absl::StatusOr<v1::ListDeliveriesResponse> r) {
          self->Step([&] {
            if (!r.ok()) return self->FailWithStatus(r.status());
            json::array deliveries;
            for (const v1::Delivery& d : r->deliveries()) {
              deliveries.emplace_back(DeliveryToJson(d, /*with_attempts=*/false));
            }
            json::object body;
            body["deliveries"] = std::move(deliveries);
            if (r->next_page_token().empty()) {
              body["nextCursor"] = nullptr;
            } else {
              body["nextCursor"] = r->next_page_token();
            }
            self->Succeed(JsonText(body));
          });
        });
  }

  void GetDelivery() {
    if (!CheckWebhookId() || !CheckDeliveryId()) return;
    if (absl::Status s = CheckNoQuery(request_.target()); !s.ok())
      return Fail(BadRequest(std::string(s.message())));
    v1::GetDeliveryRequest request;
    request.set_connection_id(connection_id_);
    request.set_webhook_id(match_.webhook_id);
    request.set_delivery_id(match_.delivery_id);
    backend_->GetDelivery(request, deadline_, DeliveryCallback(/*with_attempts=*/true));
  }

  void Redeliver() {
    if (!CheckWebhookId() || !CheckDeliveryId() || !CheckNoParameters()) return;
    v1::RedeliverDeliveryRequest request;
    request.set_connection_id(connection_id_);
    request.set_webhook_id(match_.webhook_id);
    request.set_delivery_id(match_.delivery_id);
    backend_->RedeliverDelivery(request, deadline_, DeliveryCallback(/*with_attempts=*/false));
  }

  void Replay() {
    if (!CheckWebhookId() || !CheckJsonBody()) return;
    if (absl::Status s = CheckNoQuery(request_.target()); !s.ok())
      return Fail(BadRequest(std::string(s.message())));
    absl::StatusOr<v1::ReplayDeliveriesRequest> request = ParseReplayBody(request_.body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id_);
    request->set_webhook_id(match_.webhook_id);
    backend_->ReplayDeliveries(
        *request, deadline_,
        [self = shared_from_this()](absl::StatusOr<v1::ReplayDeliveriesResponse> r) {
          self->Step([&] {
            if (!r.ok()) return self->FailWithStatus(r.status());
            json::object body;
            body["queued"] = r->queued_count();
            body["more"] = r->more();
            self->Succeed(JsonText(body));
          });
        });
  }

  void SendTest() {
    if (!CheckWebhookId() || !CheckNoParameters()) return;
    v1::SendTestEventRequest request;
    request.set_connection_id(connection_id_);
    request.set_webhook_id(match_.webhook_id);
    backend_->SendTestEvent(
        request, deadline_,
        [self = shared_from_this()](absl::StatusOr<v1::SendTestEventResponse> r) {
          self->Step([&] {
            if (!r.ok()) return self->FailWithStatus(r.status());
            self->Succeed(JsonText(DeliveryToJson(r->delivery(), /*with_attempts=*/false)));
          });
        });
  }

  void RotateSecret() {
    if (!CheckWebhookId()) return;
    if (absl::Status s = CheckNoQuery(request_.target()); !s.ok())
      return Fail(BadRequest(std::string(s.message())));
    if (!request_.body().empty() && !CheckJsonBody()) return;
    absl::StatusOr<v1::RotateWebhookSecretRequest> request = ParseRotateBody(request_.body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id_);
    request->set_webhook_id(match_.webhook_id);
    backend_->RotateWebhookSecret(
        *request, deadline_,
        [self = shared_from_this()](absl::StatusOr<v1::RotateWebhookSecretResponse> r) {
          self->Step([&] {
            if (!r.ok()) return self->FailWithStatus(r.status());
            self->Succeed(JsonText(WebhookToJson(r->webhook(), r->secret())));
          });
        });
  }

  void Enable() {
    if (!CheckWebhookId() || !CheckNoParameters()) return;
    v1::EnableWebhookRequest request;
    request.set_connection_id(connection_id_);
    request.set_webhook_id(match_.webhook_id);
    backend_->EnableWebhook(request, deadline_, WebhookCallback());
  }

  SubscriptionBackend::Callback<v1::Delivery> DeliveryCallback(bool with_attempts) {
    return [self = shared_from_this(), with_attempts](absl::StatusOr<v1::Delivery> r) {
      self->Step([&] {
        if (!r.ok()) return self->FailWithStatus(r.status());
        self->Succeed(JsonText(DeliveryToJson(*r, with_attempts)));
      });
    };
  }

  SubscriptionBackend::Callback<v1::Webhook> WebhookCallback() {
    return [self = shared_from_this()](absl::StatusOr<v1::Webhook> r) {
      self->Step([&] {
        if (!r.ok()) return self->FailWithStatus(r.status());
        self->Succeed(JsonText(WebhookToJson(*r)));
      });
    };
  }

  void FailWithStatus(const absl::Status& status) { FailWithStatus(status, match_.webhook_id); }

  void FailWithStatus(const absl::Status& status, std::string_view webhook_id) {
    OctoError error = ErrorFromStatus(status, webhook_id);
    if (status.code() == absl::StatusCode::kNotFound && !match_.delivery_id.empty() &&
        absl::StartsWith(status.message(), "deliveryId")) {
      // The delivery routes name the id that was not found: "deliveryId: ...".
      error = InvalidDeliveryId(match_.delivery_id);
    } else if (status.code() == absl::StatusCode::kFailedPrecondition && IsExtensionRoute()) {
      // The delivery operations' one precondition: "webhookId: the webhook is
      // disabled; ..." (operations.proto), written for partners.
      error = Unprocessable(TruncateUtf8(StdView(status.message()), 1024));
    }
    if (static_cast<int>(error.http_status) >= 500) {
      // The service's message is logged, never answered.
      log::Warn("backend call failed", {{"route", match_.route_template},
                                        {"code", absl::StatusCodeToString(status.code())},
                                        {"detail", StdView(status.message())}});
    }
    Fail(error);
  }

  // Runs one step on a backend callback thread. Nothing may escape into
  // gRPC's threads: an exception answers 500 if nothing was answered yet.
  template <typename F>
  void Step(F&& step) {
    try {
      step();
    } catch (const std::exception& e) {
      log::Error("request step failed", {{"route", match_.route_template}, {"what", e.what()}});
      if (done_) Fail(InternalError());
    }
  }

  void Fail(const OctoError& error) { Finish(ErrorResponse(error, request_.version())); }

  void Succeed(std::string body) {
    Finish(JsonResponse(http::status::ok, request_.version(), std::move(body)));
  }

  void Finish(HttpResponse response) {
    response.set("Octo-Capabilities", capabilities_.ok() ? JoinCapabilities(*capabilities_) : "");
    response.keep_alive(request_.keep_alive());
    HttpHandler::Done done = std::move(done_);
    done(HandlerResult{std::move(response), match_.route_template});
  }

  SubscriptionBackend* const backend_;
  ListCache* const list_cache_;
  const KeyRateCheck key_check_;
  const SubscriptionBackend::Deadline deadline_;
  const HttpRequest request_;
  const RouteMatch match_;
  const absl::StatusOr<std::vector<std::string>> capabilities_;
  HttpHandler::Done done_;
  std::string connection_id_;
  std::optional<ListCache::Clock::time_point> fill_started_;  // set when the list is to be cached
  json::array list_;
  int pages_ = 0;
};

// The /readyz checks, run in parallel; the last one to finish answers.
class ReadinessProbe : public std::enable_shared_from_this<ReadinessProbe> {
 public:
  struct Check {
    const char* name;     // in the response body
    const char* service;  // grpc.health.v1 service name
    std::string result;   // "SERVING", "NOT_SERVING", "UNAVAILABLE", ...
  };

  ReadinessProbe(unsigned http_version, bool keep_alive, std::string echo, std::string route,
                 HttpHandler::Done done)
      : http_version_(http_version),
        keep_alive_(keep_alive),
        echo_(std::move(echo)),
        route_(std::move(route)),
        done_(std::move(done)),
        checks_{{"subscription", kOverallHealthService, ""},
                {"postgres", kPostgresHealthService, ""}},
        pending_(static_cast<int>(checks_.size())) {}

  void Start(SubscriptionBackend* backend, SubscriptionBackend::Deadline deadline) {
    for (std::size_t i = 0; i < checks_.size(); ++i) {
      health::HealthCheckRequest request;
      request.set_service(checks_[i].service);
      backend->CheckHealth(
          request, deadline,
          [self = shared_from_this(), i](absl::StatusOr<health::HealthCheckResponse> r) {
            self->OnResult(i, r);
          });
    }
  }

 private:
  void OnResult(std::size_t i, const absl::StatusOr<health::HealthCheckResponse>& r) {
    {
      std::lock_guard lock(mu_);
      checks_[i].result = r.ok() ? health::HealthCheckResponse::ServingStatus_Name(r->status())
                                 : absl::StatusCodeToString(r.status().code());
    }
    if (--pending_ == 0) Answer();
  }

  void Answer() {
    std::lock_guard lock(mu_);
    json::object checks;
    std::vector<std::string> failed;
    for (const Check& check : checks_) {
      checks[check.name] = check.result;
      if (check.result != "SERVING")
        failed.push_back(absl::StrCat(check.name, " (", check.result, ")"));
    }
    json::object body;
    HttpResponse response;
    if (failed.empty()) {
      body["status"] = "ready";
      body["checks"] = std::move(checks);
      response = JsonResponse(http::status::ok, http_version_, JsonText(body));
    } else {
      body["status"] = "unready";
      body["error"] = kInternalServerError;
      body["errorMessage"] = absl::StrCat("Not ready: ", absl::StrJoin(failed, ", "));
      body["checks"] = std::move(checks);
      response =
          JsonResponse(http::status::service_unavailable, http_version_, JsonText(body));
    }
    response.set("Octo-Capabilities", echo_);
    response.keep_alive(keep_alive_);
    HttpHandler::Done done = std::move(done_);
    done(HandlerResult{std::move(response), route_});
  }

  const unsigned http_version_;
  const bool keep_alive_;
  const std::string echo_;
  const std::string route_;
  HttpHandler::Done done_;
  std::mutex mu_;
  std::vector<Check> checks_;  // results guarded by mu_
  std::atomic<int> pending_;
};

}  // namespace

ApiHandler::ApiHandler(Options options, SubscriptionBackend* backend)
    : options_(std::move(options)), router_(options_.base_path), backend_(backend) {}

void ApiHandler::Handle(HttpRequest request, Done done) {
  RouteMatch match = router_.Match(request.method(), request.target());
  absl::StatusOr<std::vector<std::string>> capabilities = RequestCapabilities(request.base());
  const std::string echo = capabilities.ok() ? JoinCapabilities(*capabilities) : "";

  const auto answer = [&](HttpResponse response) {
    response.set("Octo-Capabilities", echo);
    response.keep_alive(request.keep_alive());
    done(HandlerResult{std::move(response), match.route_template});
  };

  switch (match.route) {
    case Route::kNotFound:
      return answer(ErrorResponse(
          BadRequest(absl::StrCat("No route for ", PrintableAscii(request.method_string(), 32), " ",
                                  PrintableAscii(
                                      request.target().substr(0, request.target().find('?')), 200)),
                     http::status::not_found),
          request.version()));
    case Route::kMethodNotAllowed: {
      HttpResponse response = ErrorResponse(
          BadRequest(
              absl::StrCat("Method ", PrintableAscii(request.method_string(), 32),
                           " is not allowed on ", match.route_template, "; allowed: ", match.allow),
              http::status::method_not_allowed),
          request.version());
      response.set(http::field::allow, match.allow);
      return answer(std::move(response));
    }
    case Route::kHealthz:
      return answer(JsonResponse(http::status::ok, request.version(), R"({"status":"ok"})"));
    case Route::kMetrics: {
      if (!options_.metrics_text) {
        return answer(ErrorResponse(BadRequest("No route for GET /metrics", http::status::not_found),
                                    request.version()));
      }
      HttpResponse response(http::status::ok, request.version());
      response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response.set(http::field::cache_control, "no-store");
      response.body() = options_.metrics_text();
      response.prepare_payload();
      return answer(std::move(response));
    }
    case Route::kOpenApi: {
      HttpResponse response{http::status::ok, request.version()};
      response.set(http::field::content_type, "application/yaml");
      response.body() = std::string(OpenApiDocument());
      response.prepare_payload();
      return answer(std::move(response));
    }
    case Route::kReadyz: {
      auto probe = std::make_shared<ReadinessProbe>(request.version(), request.keep_alive(), echo,
                                                    match.route_template, std::move(done));
      return probe->Start(backend_, DeadlineAfter(options_.readiness_timeout));
    }
    default:
      break;
  }
  if (IsSubscriptionRoute(match.route)) {
    return HandleSubscriptionRequest(backend_, options_.request_timeout, options_.base_path,
                                     {options_.key_limiter, options_.guard_metrics},
                                     std::move(request), std::move(match), std::move(done));
  }
  auto exchange =
      std::make_shared<WebhookExchange>(backend_, options_, std::move(request),
                                        std::move(match), std::move(capabilities), std::move(done));
  exchange->Start();
}

}  // namespace octo::gateway
