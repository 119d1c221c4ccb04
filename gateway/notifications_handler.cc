#include "gateway/notifications_handler.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/notifications_json.h"
#include "gateway/octo_error.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"
#include "services/common/log.h"
#include "services/common/validation.h"

namespace octo::gateway {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace v1 = octo::webhooks::v1;

namespace {

constexpr std::string_view kDialect = "notification";
constexpr std::string_view kBareCapability = "notifications";
// As the webhook list: every page, bounded.
constexpr int kMaxListPages = 100;
constexpr int kListPageSize = 1000;

OctoError InvalidSubscriptionId(std::string_view id) {
  OctoError e;
  e.http_status = http::status::bad_request;
  e.code = std::string(kInvalidSubscriptionId);
  e.message = "The subscriptionId was missing or invalid";
  e.extra.emplace_back("subscriptionId", PrintableAscii(id, 64));
  return e;
}

// The Octo-Capabilities of the request: the OCTO spelling "notifications"
// (no vendor prefix) is accepted beside the vendor/name ids.
absl::StatusOr<std::vector<std::string>> SubscriptionCapabilities(const http::fields& fields) {
  std::string joined;
  for (auto [it, end] = fields.equal_range("Octo-Capabilities"); it != end; ++it) {
    if (!joined.empty()) joined.push_back(',');
    joined.append(it->value().data(), it->value().size());
  }
  std::vector<std::string> out;
  std::string prefixed;
  for (absl::string_view part : absl::StrSplit(joined, ',')) {
    const absl::string_view id = absl::StripAsciiWhitespace(part);
    if (absl::EqualsIgnoreCase(id, AbslView(kBareCapability))) {
      out.emplace_back(kBareCapability);
    } else {
      if (!prefixed.empty()) prefixed.push_back(',');
      prefixed.append(id.data(), id.size());
    }
  }
  absl::StatusOr<std::vector<std::string>> others = ParseCapabilitiesHeader(prefixed);
  if (!others.ok()) return others.status();
  if (out.size() > 1) out.resize(1);
  out.insert(out.end(), others->begin(), others->end());
  return out;
}

class SubscriptionExchange : public std::enable_shared_from_this<SubscriptionExchange> {
 public:
  SubscriptionExchange(SubscriptionBackend* backend, std::chrono::milliseconds timeout,
                       std::string base_path, KeyRateCheck key_check, HttpRequest request,
                       RouteMatch match, HttpHandler::Done done)
      : backend_(backend),
        key_check_(key_check),
        deadline_(std::chrono::system_clock::now() + timeout),
        base_path_(std::move(base_path)),
        request_(std::move(request)),
        match_(std::move(match)),
        capabilities_(SubscriptionCapabilities(request_.base())),
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
    if (!auth.backend_status.ok()) return FailWithStatus(auth.backend_status);
    if (auth.too_many) return Finish(*std::move(auth.too_many));
    connection_id_ = std::move(auth.connection_id);
    if (!capabilities_.ok()) return Fail(BadRequest(std::string(capabilities_.status().message())));
    switch (match_.route) {
      case Route::kCreateSubscription:
        return Create();
      case Route::kListSubscriptions:
        return ListPage("");
      case Route::kGetSubscription:
        return Get();
      case Route::kUpdateSubscription:
        return Update();
      case Route::kDeleteSubscription:
        return Delete();
      default:
        return Fail(InternalError());  // not a subscription route: a bug
    }
  }

  bool CheckJsonBody() {
    const auto content_type = request_.find(http::field::content_type);
    if (content_type == request_.end() || !IsJsonContentType(content_type->value())) {
      Fail(BadRequest("Content-Type must be application/json", http::status::unsupported_media_type));
      return false;
    }
    return true;
  }

  bool CheckId() {
    if (IsUuid(match_.webhook_id)) return true;
    Fail(InvalidSubscriptionId(match_.webhook_id));
    return false;
  }

  void Create() {
    if (!CheckJsonBody()) return;
    absl::StatusOr<v1::CreateWebhookRequest> request = ParseCreateSubscriptionBody(request_.body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id_);
    backend_->CreateWebhook(*request, deadline_,
                            [self = shared_from_this()](absl::StatusOr<v1::CreateWebhookResponse> r) {
                              self->Step([&] {
                                if (!r.ok()) return self->FailWithStatus(r.status());
                                self->Created(*r);
                              });
                            });
  }

  void Created(const v1::CreateWebhookResponse& r) {
    HttpResponse response = JsonResponse(http::status::created, request_.version(),
                                         json::serialize(SubscriptionToJson(r.webhook(), r.secret())));
    response.set(http::field::location,
                 absl::StrCat(base_path_, "/notifications/subscriptions/", r.webhook().id()));
    Finish(std::move(response));
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
    request.set_dialect(std::string(kDialect));
    backend_->ListWebhooks(request, deadline_,
                           [self = shared_from_this()](absl::StatusOr<v1::ListWebhooksResponse> r) {
                             self->Step([&] {
                               if (!r.ok()) return self->FailWithStatus(r.status());
                               for (const v1::Webhook& w : r->webhooks()) {
                                 self->list_.emplace_back(SubscriptionToJson(w));
                               }
                               if (!r->next_page_token().empty()) return self->ListPage(r->next_page_token());
                               self->Succeed(json::serialize(self->list_));
                             });
                           });
  }

  void Get() {
    if (!CheckId()) return;
    v1::GetWebhookRequest request;
    request.set_connection_id(connection_id_);
    request.set_webhook_id(match_.webhook_id);
    request.set_dialect(std::string(kDialect));
    backend_->GetWebhook(request, deadline_, SubscriptionCallback());
  }

  void Update() {
    if (!CheckId() || !CheckJsonBody()) return;
    absl::StatusOr<v1::UpdateWebhookRequest> request = ParseUpdateSubscriptionBody(request_.body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id_);
    request->set_webhook_id(match_.webhook_id);
    backend_->UpdateWebhook(*request, deadline_, SubscriptionCallback());
  }

  void Delete() {
    if (!CheckId()) return;
    v1::DeleteWebhookRequest request;
    request.set_connection_id(connection_id_);
    request.set_webhook_id(match_.webhook_id);
    request.set_dialect(std::string(kDialect));
    backend_->DeleteWebhook(request, deadline_, SubscriptionCallback());
  }

  SubscriptionBackend::Callback<v1::Webhook> SubscriptionCallback() {
    return [self = shared_from_this()](absl::StatusOr<v1::Webhook> r) {
      self->Step([&] {
        if (!r.ok()) return self->FailWithStatus(r.status());
        self->Succeed(json::serialize(SubscriptionToJson(*r)));
      });
    };
  }

  void FailWithStatus(const absl::Status& status) {
    OctoError error = ErrorFromStatus(status, match_.webhook_id);
    if (error.code == kInvalidWebhookId) error = InvalidSubscriptionId(match_.webhook_id);
    if (static_cast<int>(error.http_status) >= 500) {
      log::Warn("backend call failed", {{"route", match_.route_template},
                                        {"code", absl::StatusCodeToString(status.code())},
                                        {"detail", StdView(status.message())}});
    }
    Fail(error);
  }

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
  const KeyRateCheck key_check_;
  const SubscriptionBackend::Deadline deadline_;
  const std::string base_path_;
  const HttpRequest request_;
  const RouteMatch match_;
  const absl::StatusOr<std::vector<std::string>> capabilities_;
  HttpHandler::Done done_;
  std::string connection_id_;
  json::array list_;
  int pages_ = 0;
};

}  // namespace

void HandleSubscriptionRequest(SubscriptionBackend* backend, std::chrono::milliseconds timeout,
                               const std::string& base_path, KeyRateCheck key_check,
                               HttpRequest request, RouteMatch match, HttpHandler::Done done) {
  auto exchange = std::make_shared<SubscriptionExchange>(backend, timeout, base_path, key_check,
                                                         std::move(request), std::move(match),
                                                         std::move(done));
  exchange->Start();
}

}  // namespace octo::gateway
