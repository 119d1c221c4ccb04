#include "gateway/webhook_exchange.h"

#include <memory>
#include <optional>
#include <utility>

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "absl/strings/match.h"
#include "gateway/json_body.h"
#include "gateway/operations_json.h"
#include "gateway/request_parsing.h"
#include "gateway/string_views.h"
#include "gateway/webhook_json.h"
#include "services/common/validation.h"

namespace octo::gateway {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace v1 = octo::webhooks::v1;

namespace {

// The webhook routes see only webhooks; subscriptions have their own
// (notifications_handler.h). The extension routes serve both.
constexpr std::string_view kWebhookDialect = "webhook";

bool IsExtensionRoute(Route route) {
  switch (route) {
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

class WebhookExchange final : public KeyedExchange {
 public:
  WebhookExchange(const Context& context, ListCache* list_cache, HttpRequest request,
                  RouteMatch match, absl::StatusOr<std::vector<std::string>> capabilities,
                  HttpHandler::Done done)
      : KeyedExchange(context, std::move(request), std::move(match), std::move(capabilities),
                      std::move(done)),
        list_cache_(list_cache) {}

 private:
  void Run() override {
    switch (match().route) {
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

  OctoError ErrorOf(const absl::Status& status) const override {
    const RouteMatch& m = match();
    if (status.code() == absl::StatusCode::kNotFound && !m.delivery_id.empty() &&
        absl::StartsWith(status.message(), "deliveryId")) {
      // The delivery routes name the id that was not found: "deliveryId: ...".
      return InvalidDeliveryId(m.delivery_id);
    }
    if (status.code() == absl::StatusCode::kFailedPrecondition && IsExtensionRoute(m.route)) {
      // The delivery operations' one precondition: "webhookId: the webhook is
      // disabled; ..." (operations.proto), written for partners.
      return Unprocessable(TruncateUtf8(StdView(status.message()), 1024));
    }
    return ErrorFromStatus(status, m.webhook_id);
  }

  // INVALID_WEBHOOK_ID for an id that cannot exist.
  bool CheckWebhookId() {
    if (IsUuid(match().webhook_id)) return true;
    Fail(InvalidWebhookId(match().webhook_id));
    return false;
  }

  // INVALID_DELIVERY_ID for an id that cannot exist.
  bool CheckDeliveryId() {
    if (IsUuid(match().delivery_id)) return true;
    Fail(InvalidDeliveryId(match().delivery_id));
    return false;
  }

  // No query string (400).
  bool CheckQueryless() {
    if (absl::Status s = CheckNoQuery(http_request().target()); !s.ok()) {
      Fail(BadRequest(std::string(s.message())));
      return false;
    }
    return true;
  }

  // Routes without parameters: no query; no body or "{}".
  bool CheckNoParameters() {
    if (!CheckQueryless()) return false;
    const auto content_type = http_request().find(http::field::content_type);
    const bool json =
        content_type != http_request().end() && IsJsonContentType(content_type->value());
    absl::Status s = CheckEmptyBody(http_request().body(), json);
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

  // Sets the connection and, for the :id routes, the webhook of a request.
  template <typename Request>
  void Scope(Request& request) const {
    request.set_connection_id(connection_id());
    if constexpr (requires { request.set_webhook_id(std::string()); })
      request.set_webhook_id(match().webhook_id);
  }

  void Create() {
    if (!CheckJsonBody()) return;
    absl::StatusOr<v1::CreateWebhookRequest> request = ParseCreateWebhookBody(http_request().body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    Scope(*request);
    for (const std::string& capability : capabilities()) request->add_capabilities(capability);
    backend()->CreateWebhook(*request, deadline(), WebhookWithSecret<v1::CreateWebhookResponse>());
  }

  // From the cache when a fresh body is there (list_cache.h), else fetched.
  void List() {
    std::optional<ListCache::Clock::time_point> fill_started;
    if (list_cache_ != nullptr && list_cache_->enabled()) {
      const ListCache::Clock::time_point now = ListCache::Clock::now();
      if (std::shared_ptr<const std::string> body = list_cache_->Find(connection_id(), now)) {
        if (guard_metrics() != nullptr) guard_metrics()->ListLookup("hit");
        return Succeed(*body);
      }
      if (guard_metrics() != nullptr) guard_metrics()->ListLookup("miss");
      fill_started = now;
    }
    ListAll(std::string(kWebhookDialect),
            [](const v1::Webhook& webhook) { return WebhookToJson(webhook); },
            [this, fill_started](std::string body) {
              if (fill_started.has_value())
                list_cache_->Store(connection_id(), *fill_started, body);
              Succeed(std::move(body));
            });
  }

  void Get() {
    if (!CheckWebhookId()) return;
    v1::GetWebhookRequest request;
    Scope(request);
    request.set_dialect(std::string(kWebhookDialect));
    backend()->GetWebhook(request, deadline(), WebhookCallback());
  }

  void Update() {
    if (!CheckWebhookId() || !CheckJsonBody()) return;
    absl::StatusOr<v1::UpdateWebhookRequest> request = ParseUpdateWebhookBody(http_request().body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    Scope(*request);
    request->set_dialect(std::string(kWebhookDialect));
    backend()->UpdateWebhook(*request, deadline(), WebhookCallback());
  }

  void Delete() {
    if (!CheckWebhookId()) return;
    v1::DeleteWebhookRequest request;
    Scope(request);
    request.set_dialect(std::string(kWebhookDialect));
    backend()->DeleteWebhook(request, deadline(), WebhookCallback());
  }

  // ---- extensions ----

  void ListDeliveries() {
    if (!CheckWebhookId()) return;
    absl::StatusOr<v1::ListDeliveriesRequest> request = ParseListDeliveriesQuery(http_request().target());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    Scope(*request);
    backend()->ListDeliveries(
        *request, deadline(),
        Then<v1::ListDeliveriesResponse>([this](const v1::ListDeliveriesResponse& r) {
          json::array deliveries;
          for (const v1::Delivery& d : r.deliveries()) {
            deliveries.emplace_back(DeliveryToJson(d, /*with_attempts=*/false));
          }
          json::object body;
          body["deliveries"] = std::move(deliveries);
          if (r.next_page_token().empty()) {
            body["nextCursor"] = nullptr;
          } else {
            body["nextCursor"] = r.next_page_token();
          }
          Succeed(JsonText(body));
        }));
  }

  void GetDelivery() {
    if (!CheckWebhookId() || !CheckDeliveryId() || !CheckQueryless()) return;
    v1::GetDeliveryRequest request;
    Scope(request);
    request.set_delivery_id(match().delivery_id);
    backend()->GetDelivery(request, deadline(), DeliveryCallback(/*with_attempts=*/true));
  }

  void Redeliver() {
    if (!CheckWebhookId() || !CheckDeliveryId() || !CheckNoParameters()) return;
    v1::RedeliverDeliveryRequest request;
    Scope(request);
    request.set_delivery_id(match().delivery_id);
    backend()->RedeliverDelivery(request, deadline(), DeliveryCallback(/*with_attempts=*/false));
  }

  void Replay() {
    if (!CheckWebhookId() || !CheckJsonBody() || !CheckQueryless()) return;
    absl::StatusOr<v1::ReplayDeliveriesRequest> request = ParseReplayBody(http_request().body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    Scope(*request);
    backend()->ReplayDeliveries(
        *request, deadline(),
        Then<v1::ReplayDeliveriesResponse>([this](const v1::ReplayDeliveriesResponse& r) {
          json::object body;
          body["queued"] = r.queued_count();
          body["more"] = r.more();
          Succeed(JsonText(body));
        }));
  }

  void SendTest() {
    if (!CheckWebhookId() || !CheckNoParameters()) return;
    v1::SendTestEventRequest request;
    Scope(request);
    backend()->SendTestEvent(
        request, deadline(),
        Then<v1::SendTestEventResponse>([this](const v1::SendTestEventResponse& r) {
          Succeed(JsonText(DeliveryToJson(r.delivery(), /*with_attempts=*/false)));
        }));
  }

  void RotateSecret() {
    if (!CheckWebhookId() || !CheckQueryless()) return;
    if (!http_request().body().empty() && !CheckJsonBody()) return;
    absl::StatusOr<v1::RotateWebhookSecretRequest> request = ParseRotateBody(http_request().body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    Scope(*request);
    backend()->RotateWebhookSecret(*request, deadline(),
                                   WebhookWithSecret<v1::RotateWebhookSecretResponse>());
  }

  void Enable() {
    if (!CheckWebhookId() || !CheckNoParameters()) return;
    v1::EnableWebhookRequest request;
    Scope(request);
    backend()->EnableWebhook(request, deadline(), WebhookCallback());
  }

  // The webhook, shown once with its new secret (create, rotate).
  template <typename Response>
  SubscriptionBackend::Callback<Response> WebhookWithSecret() {
    return Then<Response>([this](const Response& r) {
      Succeed(JsonText(WebhookToJson(r.webhook(), r.secret())));
    });
  }

  SubscriptionBackend::Callback<v1::Delivery> DeliveryCallback(bool with_attempts) {
    return Then<v1::Delivery>([this, with_attempts](const v1::Delivery& d) {
      Succeed(JsonText(DeliveryToJson(d, with_attempts)));
    });
  }

  SubscriptionBackend::Callback<v1::Webhook> WebhookCallback() {
    return Then<v1::Webhook>(
        [this](const v1::Webhook& webhook) { Succeed(JsonText(WebhookToJson(webhook))); });
  }

  ListCache* const list_cache_;
};

}  // namespace

void HandleWebhookRequest(const KeyedExchange::Context& context, ListCache* list_cache,
                          HttpRequest request, RouteMatch match,
                          absl::StatusOr<std::vector<std::string>> capabilities,
                          HttpHandler::Done done) {
  auto exchange = std::make_shared<WebhookExchange>(context, list_cache, std::move(request),
                                                    std::move(match), std::move(capabilities),
                                                    std::move(done));
  exchange->Start();
}

}  // namespace octo::gateway
