#pragma once
// The web side of the operators' dashboard: the session cookie, CSRF and
// origin checks, the security headers every /dashboard response carries, and
// the JSON error bodies the pages read (the OCTO error shape, plus "field"
// naming the form field a validation error is about). Pure functions.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gateway/http_types.h"
#include "gateway/octo_error.h"

namespace octo::gateway {

inline constexpr std::string_view kSessionCookie = "octo_dashboard_session";
// The name when the cookie is Secure: browsers take a __Host- cookie only
// with Secure, Path=/ and no Domain, so a sibling subdomain or a plain-HTTP
// page cannot set or shadow it.
inline constexpr std::string_view kSecureSessionCookie = "__Host-octo_dashboard_session";
inline constexpr std::string_view kCsrfHeader = "X-CSRF-Token";

// No inline script or style, nothing from another origin.
inline constexpr std::string_view kDashboardCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

// The session token from the Cookie header(s), if any: the cookie named
// kSecureSessionCookie when `secure`, kSessionCookie otherwise.
std::optional<std::string> SessionCookie(const HttpRequest& request, bool secure = false);

// Set-Cookie for a new session (HttpOnly, SameSite=Strict, Max-Age;
// Path=/dashboard, or when `secure` the __Host- name with Path=/ and Secure),
// and the one that clears it.
std::string SessionSetCookie(std::string_view token, std::chrono::seconds max_age, bool secure);
std::string SessionClearCookie(bool secure);

// A state-changing request's origin: when an Origin (or, lacking it, a
// Referer) header is present its host must be the request's Host.
// PERMISSION_DENIED otherwise.
absl::Status CheckSameOrigin(const HttpRequest& request);

// X-CSRF-Token must equal the session's token (constant-time compare).
absl::Status CheckCsrf(const HttpRequest& request, std::string_view session_csrf);

// Adds the security headers (CSP, nosniff, no framing, no referrer).
void AddSecurityHeaders(HttpResponse& response);

// The form field an INVALID_ARGUMENT message is about ("url: must be ..."
// -> "url", "headers.X-A: ..." -> "headers"), or "" when none.
std::string FieldOfMessage(std::string_view message);

// An error response for the dashboard API: OCTO shape + "field".
HttpResponse DashboardError(const OctoError& error, unsigned http_version);
// 403 with the message of CheckSameOrigin()/CheckCsrf() (the gateway's own).
HttpResponse DashboardForbidden(const absl::Status& check, unsigned http_version);
// From a backend status; NOT_FOUND becomes 404 with `not_found_code`
// (INVALID_WEBHOOK_ID, INVALID_DELIVERY_ID, ...) and `id`. Backend messages
// are answered only when written for partners ("field: ..." without a SQL
// state); PERMISSION_DENIED and the rest get the OCTO routes' fixed text.
HttpResponse DashboardStatusError(const absl::Status& status, unsigned http_version,
                                  std::string_view not_found_code = kInvalidWebhookId,
                                  std::string_view id_member = "", std::string_view id = "");

}  // namespace octo::gateway
