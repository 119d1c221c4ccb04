#include "gateway/api_handler.h"

#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>

#include "absl/strings/str_cat.h"
#include "gateway/keyed_exchange.h"
#include "gateway/notifications_handler.h"
#include "gateway/octo_error.h"
#include "gateway/openapi_document.h"
#include "gateway/readiness_probe.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "gateway/webhook_exchange.h"

namespace octo::gateway {

namespace http = boost::beast::http;

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
    case Route::kReadyz:
      return ProbeReadiness(backend_, std::chrono::system_clock::now() + options_.readiness_timeout,
                            request, echo, match.route_template, std::move(done));
    default:
      break;
  }
  const KeyedExchange::Context context{
      backend_, {options_.key_limiter, options_.guard_metrics}, options_.request_timeout};
  if (IsSubscriptionRoute(match.route)) {
    return HandleSubscriptionRequest(context, options_.base_path, std::move(request),
                                     std::move(match), std::move(done));
  }
  HandleWebhookRequest(context, options_.list_cache, std::move(request), std::move(match),
                       std::move(capabilities), std::move(done));
}

}  // namespace octo::gateway
