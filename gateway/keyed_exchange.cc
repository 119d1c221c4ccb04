#include "gateway/keyed_exchange.h"

#include <boost/beast/http/field.hpp>

#include "gateway/json_body.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"

namespace octo::gateway {

namespace http = boost::beast::http;
namespace v1 = octo::webhooks::v1;

namespace {

// ListWebhooks pages are fetched until next_page_token is empty; this bounds
// the loop should a service ever hand back a token that never ends.
constexpr int kMaxListPages = 100;
constexpr int kListPageSize = 1000;

}  // namespace

KeyedExchange::KeyedExchange(const Context& context, HttpRequest request, RouteMatch match,
                             absl::StatusOr<std::vector<std::string>> capabilities,
                             HttpHandler::Done done)
    : backend_(context.backend),
      key_check_(context.key_check),
      deadline_(std::chrono::system_clock::now() + context.timeout),
      request_(std::move(request)),
      match_(std::move(match)),
      capabilities_(std::move(capabilities)),
      done_(std::move(done)) {}

void KeyedExchange::Start() {
  AuthenticateRequest(backend_, deadline_, request_, key_check_,
                      [self = shared_from_this()](AuthOutcome outcome) {
                        self->Step([&] { self->OnAuthenticated(std::move(outcome)); });
                      });
}

void KeyedExchange::OnAuthenticated(AuthOutcome auth) {
  if (auth.unauthorized) return Fail(*auth.unauthorized);
  // AuthenticateRequest answers NOT_FOUND itself (401), so the route's :id
  // never colours what is left: UNAVAILABLE, timeouts, ...
  if (!auth.backend_status.ok()) return FailWithStatus(auth.backend_status);
  if (auth.too_many) return Finish(*std::move(auth.too_many));
  connection_id_ = std::move(auth.connection_id);
  if (!capabilities_.ok()) return Fail(BadRequest(std::string(capabilities_.status().message())));
  Run();
}

OctoError KeyedExchange::ErrorOf(const absl::Status& status) const {
  return ErrorFromStatus(status, match_.webhook_id);
}

bool KeyedExchange::CheckJsonBody() {
  const auto content_type = request_.find(http::field::content_type);
  if (content_type == request_.end() || !IsJsonContentType(content_type->value())) {
    Fail(BadRequest("Content-Type must be application/json", http::status::unsupported_media_type));
    return false;
  }
  return true;
}

void KeyedExchange::ListAll(std::string dialect, Renderer render,
                            std::function<void(std::string)> done) {
  list_dialect_ = std::move(dialect);
  list_render_ = std::move(render);
  list_done_ = std::move(done);
  ListPage("");
}

void KeyedExchange::ListPage(const std::string& page_token) {
  if (++pages_ > kMaxListPages) {
    log::Error("ListWebhooks paging did not end", {{"route", match_.route_template}});
    return Fail(InternalError());
  }
  v1::ListWebhooksRequest request;
  request.set_connection_id(connection_id_);
  request.set_page_size(kListPageSize);
  request.set_page_token(page_token);
  request.set_dialect(list_dialect_);
  backend_->ListWebhooks(request, deadline_, Then<v1::ListWebhooksResponse>(
                                                 [this](const v1::ListWebhooksResponse& r) {
                                                   for (const v1::Webhook& webhook : r.webhooks())
                                                     list_.emplace_back(list_render_(webhook));
                                                   if (!r.next_page_token().empty())
                                                     return ListPage(r.next_page_token());
                                                   list_done_(JsonText(list_));
                                                 }));
}

void KeyedExchange::FailWithStatus(const absl::Status& status) {
  const OctoError error = ErrorOf(status);
  if (static_cast<int>(error.http_status) >= 500) {
    log::Warn("backend call failed", {{"route", match_.route_template},
                                      {"code", absl::StatusCodeToString(status.code())},
                                      {"detail", StdView(status.message())}});
  }
  Fail(error);
}

void KeyedExchange::Fail(const OctoError& error) { Finish(ErrorResponse(error, request_.version())); }

void KeyedExchange::Succeed(std::string body) {
  Finish(JsonResponse(http::status::ok, request_.version(), std::move(body)));
}

void KeyedExchange::Finish(HttpResponse response) {
  response.set("Octo-Capabilities", capabilities_.ok() ? JoinCapabilities(*capabilities_) : "");
  response.keep_alive(request_.keep_alive());
  HttpHandler::Done done = std::move(done_);
  done(HandlerResult{std::move(response), match_.route_template});
}

}  // namespace octo::gateway
