#include "gateway/notifications_handler.h"

#include <memory>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/json_body.h"
#include "gateway/notifications_json.h"
#include "gateway/octo_error.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"
#include "services/common/validation.h"

namespace octo::gateway {

namespace http = boost::beast::http;
namespace v1 = octo::webhooks::v1;

namespace {

constexpr std::string_view kDialect = "notification";
constexpr std::string_view kBareCapability = "notifications";

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

class SubscriptionExchange final : public KeyedExchange {
 public:
  SubscriptionExchange(const Context& context, std::string base_path, HttpRequest request,
                       RouteMatch match, absl::StatusOr<std::vector<std::string>> capabilities,
                       HttpHandler::Done done)
      : KeyedExchange(context, std::move(request), std::move(match), std::move(capabilities),
                      std::move(done)),
        base_path_(std::move(base_path)) {}

 private:
  void Run() override {
    switch (match().route) {
      case Route::kCreateSubscription:
        return Create();
      case Route::kListSubscriptions:
        return ListAll(std::string(kDialect),
                       [](const v1::Webhook& w) { return SubscriptionToJson(w); },
                       [this](std::string body) { Succeed(std::move(body)); });
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

  OctoError ErrorOf(const absl::Status& status) const override {
    OctoError error = ErrorFromStatus(status, match().webhook_id);
    if (error.code == kInvalidWebhookId) error = InvalidSubscriptionId(match().webhook_id);
    return error;
  }

  bool CheckId() {
    if (IsUuid(match().webhook_id)) return true;
    Fail(InvalidSubscriptionId(match().webhook_id));
    return false;
  }

  void Create() {
    if (!CheckJsonBody()) return;
    absl::StatusOr<v1::CreateWebhookRequest> request =
        ParseCreateSubscriptionBody(http_request().body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id());
    backend()->CreateWebhook(
        *request, deadline(),
        Then<v1::CreateWebhookResponse>([this](const v1::CreateWebhookResponse& r) {
          HttpResponse response =
              JsonResponse(http::status::created, http_request().version(),
                           JsonText(SubscriptionToJson(r.webhook(), r.secret())));
          response.set(http::field::location,
                       absl::StrCat(base_path_, "/notifications/subscriptions/", r.webhook().id()));
          Finish(std::move(response));
        }));
  }

  void Get() {
    if (!CheckId()) return;
    v1::GetWebhookRequest request;
    request.set_connection_id(connection_id());
    request.set_webhook_id(match().webhook_id);
    request.set_dialect(std::string(kDialect));
    backend()->GetWebhook(request, deadline(), SubscriptionCallback());
  }

  void Update() {
    if (!CheckId() || !CheckJsonBody()) return;
    absl::StatusOr<v1::UpdateWebhookRequest> request =
        ParseUpdateSubscriptionBody(http_request().body());
    if (!request.ok()) return Fail(BadRequest(std::string(request.status().message())));
    request->set_connection_id(connection_id());
    request->set_webhook_id(match().webhook_id);
    backend()->UpdateWebhook(*request, deadline(), SubscriptionCallback());
  }

  void Delete() {
    if (!CheckId()) return;
    v1::DeleteWebhookRequest request;
    request.set_connection_id(connection_id());
    request.set_webhook_id(match().webhook_id);
    request.set_dialect(std::string(kDialect));
    backend()->DeleteWebhook(request, deadline(), SubscriptionCallback());
  }

  SubscriptionBackend::Callback<v1::Webhook> SubscriptionCallback() {
    return Then<v1::Webhook>(
        [this](const v1::Webhook& w) { Succeed(JsonText(SubscriptionToJson(w))); });
  }

  const std::string base_path_;
};

}  // namespace

void HandleSubscriptionRequest(const KeyedExchange::Context& context, const std::string& base_path,
                               HttpRequest request, RouteMatch match, HttpHandler::Done done) {
  absl::StatusOr<std::vector<std::string>> capabilities = SubscriptionCapabilities(request.base());
  auto exchange = std::make_shared<SubscriptionExchange>(context, base_path, std::move(request),
                                                         std::move(match), std::move(capabilities),
                                                         std::move(done));
  exchange->Start();
}

}  // namespace octo::gateway
