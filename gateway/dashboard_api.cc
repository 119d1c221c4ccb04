#include "gateway/dashboard_api.h"

#include <set>
#include <utility>

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gateway/dashboard_http.h"
#include "gateway/dashboard_json.h"
#include "gateway/dashboard_routes.h"
#include "gateway/json_body.h"
#include "gateway/list_cache.h"
#include "gateway/operations_json.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"
#include "gateway/webhook_json.h"
#include "services/common/grpc_auth.h"
#include "services/common/status.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace v1 = octo::webhooks::v1;

// One API request: its session, deadline and the steps shared by routes.
class Exchange {
 public:
  Exchange(const HttpRequest& request, const DashboardApiOptions& options, v1::OperatorService::StubInterface* ops,
           v1::SubscriptionService::StubInterface* subs, std::chrono::system_clock::time_point deadline)
      : request_(request), options_(options), ops_(ops), subs_(subs), deadline_(deadline) {}

  HttpResponse Run(const std::vector<std::string>& segments, std::string& route);

 private:
  template <typename Response, typename Method>
  absl::StatusOr<Response> Call(Method method) const {
    grpc::ClientContext context;
    context.set_deadline(deadline_);
    Response response;
    const grpc::Status status = method(&context, &response);
    if (!status.ok()) return grpc_auth::FromInternalCall(status, "octo-subscription");
    return response;
  }

  // A call that changes the webhooks of `connection`: the partner routes'
  // cached list of it (list_cache.h) is dropped once the service answered,
  // whatever the answer (a call that timed out may still have committed), so
  // the partner's next GET <base>/webhooks through this gateway shows it.
  template <typename Response, typename Method>
  absl::StatusOr<Response> Change(const std::string& connection, Method method) const {
    absl::StatusOr<Response> response = Call<Response>(std::move(method));
    if (options_.list_cache != nullptr) options_.list_cache->Invalidate(connection);
    return response;
  }

  unsigned version() const { return request_.version(); }
  HttpResponse Json(const json::value& body, http::status status = http::status::ok) const {
    HttpResponse response = JsonResponse(status, version(), JsonText(body));
    AddSecurityHeaders(response);
    return response;
  }
  HttpResponse Error(const absl::Status& status, std::string_view code = kInvalidWebhookId,
                     std::string_view member = "", std::string_view id = "") const {
    return DashboardStatusError(status, version(), code, member, id);
  }
  bool Mutating() const {
    return request_.method() != http::verb::get && request_.method() != http::verb::head;
  }

  absl::Status Authenticate();
  absl::StatusOr<std::string> ConnectionOf(std::string_view webhook_id);
  std::optional<HttpResponse> JsonContentTypeError() const;
  std::optional<HttpResponse> EmptyBodyError() const;

  HttpResponse Login();
  HttpResponse Logout();
  HttpResponse Session() const;
  HttpResponse Connections();
  HttpResponse ListWebhooks();
  HttpResponse CreateWebhook();
  HttpResponse GetWebhook(const std::string& id);
  HttpResponse WebhookAction(const std::string& id, const std::string& action);
  HttpResponse UpdateOrDelete(const std::string& id, const std::string& connection);
  HttpResponse Deliveries(const std::string& id, const std::string& connection);
  HttpResponse Delivery(const std::string& id, const std::string& connection, const std::string& delivery_id,
                        bool redeliver);

  const HttpRequest& request_;
  const DashboardApiOptions& options_;
  v1::OperatorService::StubInterface* const ops_;
  v1::SubscriptionService::StubInterface* const subs_;
  const std::chrono::system_clock::time_point deadline_;
  v1::OperatorSession session_;
};

absl::Status Exchange::Authenticate() {
  std::optional<std::string> token = SessionCookie(request_, options_.secure_cookies);
  if (!token.has_value() || token->empty()) return absl::UnauthenticatedError("no session");
  v1::SessionRequest req;
  req.set_token(*token);
  absl::StatusOr<v1::OperatorSession> s = Call<v1::OperatorSession>(
      [&](grpc::ClientContext* c, v1::OperatorSession* r) { return ops_->AuthenticateSession(c, req, r); });
  if (!s.ok()) return s.status();
  session_ = *std::move(s);
  return absl::OkStatus();
}

// 415 unless the body is declared JSON (as the OCTO routes answer).
std::optional<HttpResponse> Exchange::JsonContentTypeError() const {
  const auto type = request_[http::field::content_type];
  if (!IsJsonContentType(std::string_view(type.data(), type.size()))) {
    return DashboardError(BadRequest("Content-Type must be application/json", http::status::unsupported_media_type),
                          version());
  }
  return std::nullopt;
}

// Routes without a body: none, or "{}" declared JSON (CheckEmptyBody, as the
// OCTO routes): invalid JSON and unknown or duplicate members answer 400.
std::optional<HttpResponse> Exchange::EmptyBodyError() const {
  const auto type = request_[http::field::content_type];
  const absl::Status s =
      CheckEmptyBody(std::string_view(request_.body()), IsJsonContentType(std::string_view(type.data(), type.size())));
  if (absl::IsFailedPrecondition(s)) {
    return DashboardError(BadRequest(std::string(StdView(s.message())), http::status::unsupported_media_type),
                          version());
  }
  if (!s.ok()) return Error(s);
  return std::nullopt;
}

absl::StatusOr<std::string> Exchange::ConnectionOf(std::string_view webhook_id) {
  v1::GetSupplierWebhookRequest req;
  req.set_supplier_id(session_.operator_().supplier_id());
  req.set_webhook_id(std::string(webhook_id));
  absl::StatusOr<v1::SupplierWebhook> w = Call<v1::SupplierWebhook>(
      [&](grpc::ClientContext* c, v1::SupplierWebhook* r) { return ops_->GetSupplierWebhook(c, req, r); });
  if (!w.ok()) return w.status();
  return w->webhook().connection_id();
}

HttpResponse Exchange::Login() {
  if (absl::Status s = CheckSameOrigin(request_); !s.ok()) return DashboardForbidden(s, version());
  if (std::optional<HttpResponse> e = JsonContentTypeError()) return *std::move(e);
  absl::StatusOr<v1::LoginRequest> req = ParseLoginBody(request_.body());
  if (!req.ok()) return Error(req.status());
  absl::StatusOr<v1::OperatorSession> s = Call<v1::OperatorSession>(
      [&](grpc::ClientContext* c, v1::OperatorSession* r) { return ops_->Login(c, *req, r); });
  if (!s.ok()) {
    if (s.status().code() == absl::StatusCode::kUnauthenticated) {
      return DashboardError(Unauthorized("Wrong name or password"), version());
    }
    return Error(s.status());
  }
  HttpResponse response = Json(SessionToJson(*s), http::status::ok);
  const auto max_age = std::chrono::seconds(std::max<int64_t>(1, s->expire_time().seconds() - std::time(nullptr)));
  response.set(http::field::set_cookie, SessionSetCookie(s->token(), max_age, options_.secure_cookies));
  return response;
}

HttpResponse Exchange::Logout() {
  if (std::optional<HttpResponse> e = EmptyBodyError()) return *std::move(e);
  v1::SessionRequest req;
  req.set_token(SessionCookie(request_, options_.secure_cookies).value_or(""));
  absl::StatusOr<v1::LogoutResponse> r = Call<v1::LogoutResponse>(
      [&](grpc::ClientContext* c, v1::LogoutResponse* out) { return ops_->Logout(c, req, out); });
  if (!r.ok()) return Error(r.status());
  HttpResponse response = Json(json::object{{"loggedOut", true}});
  response.set(http::field::set_cookie, SessionClearCookie(options_.secure_cookies));
  return response;
}

HttpResponse Exchange::Session() const { return Json(SessionToJson(session_)); }

HttpResponse Exchange::Connections() {
  v1::ListSupplierConnectionsRequest req;
  req.set_supplier_id(session_.operator_().supplier_id());
  absl::StatusOr<v1::ListSupplierConnectionsResponse> r = Call<v1::ListSupplierConnectionsResponse>(
      [&](grpc::ClientContext* c, v1::ListSupplierConnectionsResponse* out) {
        return ops_->ListSupplierConnections(c, req, out);
      });
  if (!r.ok()) return Error(r.status());
  return Json(ConnectionsToJson(*r));
}

HttpResponse Exchange::ListWebhooks() {
  absl::StatusOr<v1::ListSupplierWebhooksRequest> req = ParseWebhookFilter(request_.target());
  if (!req.ok()) return Error(req.status());
  req->set_supplier_id(session_.operator_().supplier_id());
  absl::StatusOr<v1::ListSupplierWebhooksResponse> r = Call<v1::ListSupplierWebhooksResponse>(
      [&](grpc::ClientContext* c, v1::ListSupplierWebhooksResponse* out) {
        return ops_->ListSupplierWebhooks(c, *req, out);
      });
  if (!r.ok()) return Error(r.status());
  json::array out;
  for (const v1::SupplierWebhook& w : r->webhooks()) out.push_back(SupplierWebhookToJson(w));
  return Json(json::object{{"webhooks", std::move(out)}});
}

HttpResponse Exchange::CreateWebhook() {
  if (std::optional<HttpResponse> e = JsonContentTypeError()) return *std::move(e);
  absl::StatusOr<v1::CreateWebhookRequest> req = ParseDashboardCreateBody(request_.body());
  if (!req.ok()) return Error(req.status());
  // The connection must be one of the operator's supplier's.
  v1::ListSupplierConnectionsRequest list;
  list.set_supplier_id(session_.operator_().supplier_id());
  absl::StatusOr<v1::ListSupplierConnectionsResponse> mine = Call<v1::ListSupplierConnectionsResponse>(
      [&](grpc::ClientContext* c, v1::ListSupplierConnectionsResponse* out) {
        return ops_->ListSupplierConnections(c, list, out);
      });
  if (!mine.ok()) return Error(mine.status());
  // Connection ids are UUIDs: compared in canonical lower case, and the
  // stored spelling is the one sent on.
  const std::string wanted = absl::AsciiStrToLower(req->connection_id());
  bool found = false;
  for (const auto& c : mine->connections()) {
    if (absl::AsciiStrToLower(c.connection().id()) != wanted) continue;
    req->set_connection_id(c.connection().id());
    found = true;
  }
  if (!found) return Error(absl::InvalidArgumentError("connectionId: select one of your connections"));
  absl::StatusOr<v1::CreateWebhookResponse> r = Change<v1::CreateWebhookResponse>(
      req->connection_id(),
      [&](grpc::ClientContext* c, v1::CreateWebhookResponse* out) { return subs_->CreateWebhook(c, *req, out); });
  if (!r.ok()) return Error(r.status());
  return Json(WebhookToJson(r->webhook(), r->secret()), http::status::created);
}

HttpResponse Exchange::GetWebhook(const std::string& id) {
  v1::GetSupplierWebhookRequest req;
  req.set_supplier_id(session_.operator_().supplier_id());
  req.set_webhook_id(id);
  absl::StatusOr<v1::SupplierWebhook> w = Call<v1::SupplierWebhook>(
      [&](grpc::ClientContext* c, v1::SupplierWebhook* r) { return ops_->GetSupplierWebhook(c, req, r); });
  if (!w.ok()) return Error(w.status(), kInvalidWebhookId, "webhookId", id);
  return Json(SupplierWebhookToJson(*w));
}

HttpResponse Exchange::UpdateOrDelete(const std::string& id, const std::string& connection) {
  if (request_.method() == http::verb::delete_) {
    v1::DeleteWebhookRequest req;
    req.set_connection_id(connection);
    req.set_webhook_id(id);
    absl::StatusOr<v1::Webhook> w = Change<v1::Webhook>(
        connection, [&](grpc::ClientContext* c, v1::Webhook* r) { return subs_->DeleteWebhook(c, req, r); });
    if (!w.ok()) return Error(w.status(), kInvalidWebhookId, "webhookId", id);
    return Json(WebhookToJson(*w));
  }
  if (std::optional<HttpResponse> e = JsonContentTypeError()) return *std::move(e);
  absl::StatusOr<v1::UpdateWebhookRequest> req = ParseUpdateWebhookBody(request_.body());
  if (!req.ok()) return Error(req.status());
  req->set_connection_id(connection);
  req->set_webhook_id(id);
  absl::StatusOr<v1::Webhook> w = Change<v1::Webhook>(
      connection, [&](grpc::ClientContext* c, v1::Webhook* r) { return subs_->UpdateWebhook(c, *req, r); });
  if (!w.ok()) return Error(w.status(), kInvalidWebhookId, "webhookId", id);
  return Json(WebhookToJson(*w));
}

HttpResponse Exchange::WebhookAction(const std::string& id, const std::string& action) {
  absl::StatusOr<std::string> connection = ConnectionOf(id);
  if (!connection.ok()) return Error(connection.status(), kInvalidWebhookId, "webhookId", id);
  if (action.empty()) return UpdateOrDelete(id, *connection);
  if (action == "deliveries") return Deliveries(id, *connection);
  const std::string_view body(request_.body());
  if (action == "enable" || action == "test") {
    if (std::optional<HttpResponse> e = EmptyBodyError()) return *std::move(e);
  } else if (!body.empty()) {
    if (std::optional<HttpResponse> e = JsonContentTypeError()) return *std::move(e);
  }
  if (action == "enable") {
    v1::EnableWebhookRequest req;
    req.set_connection_id(*connection);
    req.set_webhook_id(id);
    absl::StatusOr<v1::Webhook> w = Change<v1::Webhook>(
        *connection, [&](grpc::ClientContext* c, v1::Webhook* r) { return subs_->EnableWebhook(c, req, r); });
    return w.ok() ? Json(WebhookToJson(*w)) : Error(w.status(), kInvalidWebhookId, "webhookId", id);
  }
  if (action == "rotate-secret") {
    absl::StatusOr<v1::RotateWebhookSecretRequest> req = ParseRotateBody(body);
    if (!req.ok()) return Error(req.status());
    req->set_connection_id(*connection);
    req->set_webhook_id(id);
    absl::StatusOr<v1::RotateWebhookSecretResponse> r = Change<v1::RotateWebhookSecretResponse>(
        *connection, [&](grpc::ClientContext* c, v1::RotateWebhookSecretResponse* out) {
          return subs_->RotateWebhookSecret(c, *req, out);
        });
    return r.ok() ? Json(WebhookToJson(r->webhook(), r->secret())) : Error(r.status(), kInvalidWebhookId, "webhookId", id);
  }
  if (action == "test") {
    v1::SendTestEventRequest req;
    req.set_connection_id(*connection);
    req.set_webhook_id(id);
    absl::StatusOr<v1::SendTestEventResponse> r = Call<v1::SendTestEventResponse>(
        [&](grpc::ClientContext* c, v1::SendTestEventResponse* out) { return subs_->SendTestEvent(c, req, out); });
    return r.ok() ? Json(DeliveryToJson(r->delivery(), false), http::status::created)
                  : Error(r.status(), kInvalidWebhookId, "webhookId", id);
  }
  // replay
  absl::StatusOr<v1::ReplayDeliveriesRequest> req = ParseReplayBody(body);
  if (!req.ok()) return Error(req.status());
  req->set_connection_id(*connection);
  req->set_webhook_id(id);
  absl::StatusOr<v1::ReplayDeliveriesResponse> r = Call<v1::ReplayDeliveriesResponse>(
      [&](grpc::ClientContext* c, v1::ReplayDeliveriesResponse* out) { return subs_->ReplayDeliveries(c, *req, out); });
  if (!r.ok()) return Error(r.status(), kInvalidWebhookId, "webhookId", id);
  return Json(json::object{{"queued", r->queued_count()}, {"more", r->more()}});
}

HttpResponse Exchange::Deliveries(const std::string& id, const std::string& connection) {
  absl::StatusOr<v1::ListDeliveriesRequest> req = ParseListDeliveriesQuery(request_.target());
  if (!req.ok()) return Error(req.status());
  req->set_connection_id(connection);
  req->set_webhook_id(id);
  absl::StatusOr<v1::ListDeliveriesResponse> r = Call<v1::ListDeliveriesResponse>(
      [&](grpc::ClientContext* c, v1::ListDeliveriesResponse* out) { return subs_->ListDeliveries(c, *req, out); });
  if (!r.ok()) return Error(r.status(), kInvalidWebhookId, "webhookId", id);
  json::array list;
  for (const v1::Delivery& d : r->deliveries()) list.push_back(DeliveryToJson(d, false));
  json::object body{{"deliveries", std::move(list)}};
  body["nextCursor"] = r->next_page_token().empty() ? json::value(nullptr) : json::value(r->next_page_token());
  return Json(body);
}

HttpResponse Exchange::Delivery(const std::string& id, const std::string& connection,
                                const std::string& delivery_id, bool redeliver) {
  absl::StatusOr<v1::Delivery> d;
  if (redeliver) {
    v1::RedeliverDeliveryRequest req;
    req.set_connection_id(connection);
    req.set_webhook_id(id);
    req.set_delivery_id(delivery_id);
    d = Call<v1::Delivery>([&](grpc::ClientContext* c, v1::Delivery* r) { return subs_->RedeliverDelivery(c, req, r); });
  } else {
    v1::GetDeliveryRequest req;
    req.set_connection_id(connection);
    req.set_webhook_id(id);
    req.set_delivery_id(delivery_id);
    d = Call<v1::Delivery>([&](grpc::ClientContext* c, v1::Delivery* r) { return subs_->GetDelivery(c, req, r); });
  }
  if (!d.ok()) return Error(d.status(), kInvalidDeliveryId, "deliveryId", delivery_id);
  return Json(DeliveryToJson(*d, !redeliver));
}

// Runs a request Precheck() let through.
HttpResponse Exchange::Run(const std::vector<std::string>& s, std::string& route) {
  const std::string tmpl = DashboardRouteTemplate(s);
  route = absl::StrCat(AbslView(kDashboardApiPrefix), tmpl);
  if (tmpl == "login") return Login();
  if (absl::Status s = Authenticate(); !s.ok()) return Error(s);
  if (Mutating()) {
    if (absl::Status s = CheckSameOrigin(request_); !s.ok()) return DashboardForbidden(s, version());
    if (absl::Status s = CheckCsrf(request_, session_.csrf_token()); !s.ok()) return DashboardForbidden(s, version());
  }
  if (tmpl == "logout") return Logout();
  if (tmpl == "session") return Session();
  if (tmpl == "connections") return Connections();
  if (tmpl == "webhooks") return request_.method() == http::verb::get ? ListWebhooks() : CreateWebhook();
  const std::string& id = s[1];
  if (s.size() == 2 && request_.method() == http::verb::get) return GetWebhook(id);
  if (s.size() <= 3) return WebhookAction(id, s.size() == 3 ? s[2] : "");
  if (s.size() == 5) {
    if (std::optional<HttpResponse> e = EmptyBodyError()) return *std::move(e);
  }
  absl::StatusOr<std::string> connection = ConnectionOf(id);
  if (!connection.ok()) return Error(connection.status(), kInvalidWebhookId, "webhookId", id);
  return Delivery(id, *connection, s[3], s.size() == 5);
}

}  // namespace

std::optional<HttpResponse> DashboardApi::Precheck(const HttpRequest& request, std::string& route) {
  return DashboardPrecheck(request, DashboardApiSegments(request), route);
}

HttpResponse DashboardApi::Handle(const HttpRequest& request, std::string& route,
                                  std::chrono::system_clock::time_point deadline) const {
  const std::vector<std::string> segments = DashboardApiSegments(request);
  if (std::optional<HttpResponse> early = DashboardPrecheck(request, segments, route)) return *std::move(early);
  Exchange exchange(request, options_, operators_, subscriptions_, deadline);
  return exchange.Run(segments, route);
}

std::vector<std::pair<std::string, std::string>> DashboardApi::Routes() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const DashboardRoute& r : DashboardRouteTable())
    out.emplace_back(r.method, absl::StrCat(AbslView(kDashboardApiPrefix), r.path));
  return out;
}

}  // namespace octo::gateway
