#pragma once
// The routes of the dashboard's JSON API (under /dashboard/api/; the calls
// themselves are dashboard_api.cc), and the answers that need no backend
// call: an unknown route (404), a wrong method (405 + Allow), the capability
// list, and a request without a session cookie (401).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http_types.h"

namespace octo::gateway {

inline constexpr std::string_view kDashboardApiPrefix = "/dashboard/api/";

struct DashboardRoute {
  std::string method;
  std::string path;  // template, relative to kDashboardApiPrefix
};

// Every route, in the order docs/openapi.yaml is checked against.
const std::vector<DashboardRoute>& DashboardRouteTable();

// The path segments of `request` after kDashboardApiPrefix (query dropped).
std::vector<std::string> DashboardApiSegments(const HttpRequest& request);

// The template of `segments`: "webhooks/:id/deliveries/:deliveryId", ...
std::string DashboardRouteTemplate(const std::vector<std::string>& segments);

// The answer when the request needs no backend call, else nullopt. Sets
// `route` to the matched template, with the prefix ("unmatched" for 404).
std::optional<HttpResponse> DashboardPrecheck(const HttpRequest& request,
                                              const std::vector<std::string>& segments,
                                              std::string& route);

}  // namespace octo::gateway
