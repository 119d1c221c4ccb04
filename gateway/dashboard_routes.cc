#include "gateway/dashboard_routes.h"

#include <algorithm>

#include <boost/beast/http/field.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/dashboard_http.h"
#include "gateway/dashboard_json.h"
#include "gateway/json_body.h"
#include "gateway/octo_error.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"

namespace octo::gateway {

namespace http = boost::beast::http;

const std::vector<DashboardRoute>& DashboardRouteTable() {
  static const std::vector<DashboardRoute> kRoutes = {
      {"POST", "login"},
      {"POST", "logout"},
      {"GET", "session"},
      {"GET", "capabilities"},
      {"GET", "connections"},
      {"GET", "webhooks"},
      {"POST", "webhooks"},
      {"GET", "webhooks/:id"},
      {"PATCH", "webhooks/:id"},
      {"DELETE", "webhooks/:id"},
      {"POST", "webhooks/:id/enable"},
      {"POST", "webhooks/:id/rotate-secret"},
      {"POST", "webhooks/:id/test"},
      {"POST", "webhooks/:id/replay"},
      {"GET", "webhooks/:id/deliveries"},
      {"GET", "webhooks/:id/deliveries/:deliveryId"},
      {"POST", "webhooks/:id/deliveries/:deliveryId/redeliver"},
  };
  return kRoutes;
}

std::string DashboardRouteTemplate(const std::vector<std::string>& s) {
  std::string t;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0) t += '/';
    t += (i == 1 && s[0] == "webhooks") ? ":id" : (i == 3 && s[0] == "webhooks") ? ":deliveryId" : s[i];
  }
  return t;
}

std::optional<HttpResponse> DashboardPrecheck(const HttpRequest& request,
                                              const std::vector<std::string>& s,
                                              std::string& route) {
  const std::string tmpl = DashboardRouteTemplate(s);
  route = absl::StrCat(AbslView(kDashboardApiPrefix), tmpl);
  std::string allow;
  bool method_ok = false;
  for (const DashboardRoute& r : DashboardRouteTable()) {
    if (r.path != tmpl) continue;
    allow += allow.empty() ? r.method : ", " + r.method;
    method_ok = method_ok || r.method == std::string_view(request.method_string().data(), request.method_string().size());
  }
  if (allow.empty()) {
    route = "unmatched";
    return DashboardError(BadRequest("No such dashboard API route", http::status::not_found), request.version());
  }
  if (!method_ok) {
    HttpResponse r = DashboardError(BadRequest(absl::StrCat("Allowed: ", allow), http::status::method_not_allowed),
                                    request.version());
    r.set(http::field::allow, allow);
    return r;
  }
  if (tmpl == "capabilities") {
    HttpResponse response = JsonResponse(http::status::ok, request.version(), JsonText(KnownCapabilitiesJson()));
    AddSecurityHeaders(response);
    return response;
  }
  if (tmpl == "login") return std::nullopt;
  // Either name: which one this gateway uses is checked on the worker.
  std::optional<std::string> token = SessionCookie(request, false);
  if (!token.has_value() || token->empty()) token = SessionCookie(request, true);
  if (!token.has_value() || token->empty()) {
    return DashboardStatusError(absl::UnauthenticatedError("no session"), request.version());
  }
  return std::nullopt;
}

std::vector<std::string> DashboardApiSegments(const HttpRequest& request) {
  std::string_view path(request.target().data(), request.target().size());
  path = path.substr(0, path.find('?'));
  path.remove_prefix(std::min(path.size(), kDashboardApiPrefix.size()));
  return absl::StrSplit(AbslView(path), '/', absl::SkipEmpty());
}

}  // namespace octo::gateway
