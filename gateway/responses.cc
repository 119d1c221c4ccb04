#include "gateway/responses.h"

#include <utility>

#include <boost/beast/http/field.hpp>

#include "absl/strings/str_cat.h"
#include "gateway/string_views.h"

namespace octo::gateway {

namespace http = boost::beast::http;

HttpResponse JsonResponse(http::status status, unsigned http_version, std::string body) {
  HttpResponse response(status, http_version);
  response.set(http::field::content_type, "application/json");
  response.set(http::field::cache_control, "no-store");
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

HttpResponse ErrorResponse(const OctoError& error, unsigned http_version) {
  HttpResponse response = JsonResponse(error.http_status, http_version, ErrorBodyJson(error));
  if (error.http_status == http::status::service_unavailable)
    response.set(http::field::retry_after, "1");
  return response;
}

HttpResponse TooManyRequestsResponse(std::string_view message, int retry_after_s,
                                     unsigned http_version) {
  HttpResponse response = ErrorResponse(
      BadRequest(absl::StrCat(AbslView(message), "; retry after ", retry_after_s, " s"),
                 http::status::too_many_requests),
      http_version);
  response.set(http::field::retry_after, absl::StrCat(retry_after_s));
  return response;
}

}  // namespace octo::gateway
