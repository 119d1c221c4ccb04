#include "gateway/dashboard_http.h"

#include <boost/beast/http/field.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/json_body.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"
#include "services/common/crypto.h"

namespace octo::gateway {
namespace http = boost::beast::http;

std::optional<std::string> SessionCookie(const HttpRequest& request, bool secure) {
  const std::string_view name = secure ? kSecureSessionCookie : kSessionCookie;
  for (auto [it, end] = request.equal_range(http::field::cookie); it != end; ++it) {
    for (absl::string_view part : absl::StrSplit(AbslView(it->value()), ';')) {
      part = absl::StripAsciiWhitespace(part);
      const std::size_t eq = part.find('=');
      if (eq == absl::string_view::npos) continue;
      if (StdView(part.substr(0, eq)) == name) return std::string(part.substr(eq + 1));
    }
  }
  return std::nullopt;
}

std::string SessionSetCookie(std::string_view token, std::chrono::seconds max_age, bool secure) {
  return absl::StrCat(AbslView(secure ? kSecureSessionCookie : kSessionCookie), "=", AbslView(token),
                      secure ? "; Path=/" : "; Path=/dashboard", "; Max-Age=", max_age.count(),
                      "; HttpOnly; SameSite=Strict", secure ? "; Secure" : "");
}

std::string SessionClearCookie(bool secure) {
  return SessionSetCookie("", std::chrono::seconds(0), secure);
}

namespace {

// "http://127.0.0.1:8080/x" -> "127.0.0.1:8080".
std::string_view HostOfUrl(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  url.remove_prefix(scheme + 3);
  return url.substr(0, url.find_first_of("/?#"));
}

}  // namespace

absl::Status CheckSameOrigin(const HttpRequest& request) {
  const std::string_view host(request[http::field::host].data(), request[http::field::host].size());
  std::string_view source(request[http::field::origin].data(), request[http::field::origin].size());
  if (source.empty()) source = std::string_view(request[http::field::referer].data(), request[http::field::referer].size());
  if (source.empty()) return absl::OkStatus();  // same-origin fetches of old browsers; SameSite and CSRF still hold
  if (host.empty() || !absl::EqualsIgnoreCase(AbslView(HostOfUrl(source)), AbslView(host))) {
    return absl::PermissionDeniedError("The request comes from another site");
  }
  return absl::OkStatus();
}

absl::Status CheckCsrf(const HttpRequest& request, std::string_view session_csrf) {
  const auto [first, end] = request.equal_range(kCsrfHeader);
  if (first == end || std::next(first) != end ||
      !crypto::ConstantTimeEquals(std::string_view(first->value().data(), first->value().size()), session_csrf)) {
    return absl::PermissionDeniedError("Missing or wrong X-CSRF-Token: reload the page");
  }
  return absl::OkStatus();
}

void AddSecurityHeaders(HttpResponse& response) {
  response.set("Content-Security-Policy", kDashboardCsp);
  response.set("X-Content-Type-Options", "nosniff");
  response.set("X-Frame-Options", "DENY");
  response.set("Referrer-Policy", "no-referrer");
  response.set("Cross-Origin-Opener-Policy", "same-origin");
}

std::string FieldOfMessage(std::string_view message) {
  const std::size_t colon = message.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 40) return "";
  std::string_view field = message.substr(0, colon);
  field = field.substr(0, field.find('.'));
  for (char c : field) {
    if (!absl::ascii_isalpha(static_cast<unsigned char>(c))) return "";
  }
  return std::string(field);
}

HttpResponse DashboardError(const OctoError& error, unsigned http_version) {
  boost::json::object body;
  body["error"] = error.code;
  body["errorMessage"] = error.message;
  for (const auto& [key, value] : error.extra) body[key] = value;
  if (std::string field = FieldOfMessage(error.message); !field.empty() && error.code == kBadRequest) {
    body["field"] = field;
  }
  HttpResponse response = JsonResponse(error.http_status, http_version, JsonText(body));
  if (error.http_status == http::status::service_unavailable) response.set(http::field::retry_after, "1");
  AddSecurityHeaders(response);
  return response;
}

HttpResponse DashboardForbidden(const absl::Status& check, unsigned http_version) {
  return DashboardError(OctoError{http::status::forbidden, std::string(kForbidden),
                                  std::string(StdView(check.message())), {}},
                        http_version);
}

HttpResponse DashboardStatusError(const absl::Status& status, unsigned http_version, std::string_view not_found_code,
                                  std::string_view id_member, std::string_view id) {
  if (status.code() == absl::StatusCode::kNotFound) {
    OctoError e{http::status::not_found, std::string(not_found_code), "Not found: it does not exist, or is not yours",
                {}};
    if (!id_member.empty()) e.extra.emplace_back(std::string(id_member), PrintableAscii(id, 64));
    return DashboardError(e, http_version);
  }
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    return DashboardError(Unauthorized("Log in to use the dashboard"), http_version);
  }
  // The backend's other messages are passed through only when written for
  // partners (they name the field or id they are about, and no SQL state);
  // otherwise the OCTO routes' fixed messages (ErrorFromStatus) apply.
  const std::string_view message = StdView(status.message());
  const bool partner_facing = !FieldOfMessage(message).empty() && message.find("SQLSTATE") == std::string_view::npos;
  if (status.code() == absl::StatusCode::kPermissionDenied) {
    return DashboardError(OctoError{http::status::forbidden, std::string(kForbidden),
                                    "You do not have access to this resource", {}},
                          http_version);
  }
  if (status.code() == absl::StatusCode::kAlreadyExists) {
    return DashboardError(Unprocessable(partner_facing ? TruncateUtf8(message, 1024) : "It already exists"),
                          http_version);
  }
  if (status.code() == absl::StatusCode::kFailedPrecondition && partner_facing &&
      message.starts_with("webhookId:")) {
    return DashboardError(Unprocessable(TruncateUtf8(message, 1024)), http_version);
  }
  if (status.code() == absl::StatusCode::kInvalidArgument && !partner_facing &&
      message.find("SQLSTATE") != std::string_view::npos) {
    return DashboardError(BadRequest("The request was rejected by a data constraint"), http_version);
  }
  return DashboardError(ErrorFromStatus(status, ""), http_version);
}

}  // namespace octo::gateway
