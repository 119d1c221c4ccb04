// The notifications dialect's part of the routing table (router.h).
#include "absl/strings/strip.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/router.h"
#include "gateway/string_views.h"

namespace octo::gateway {

namespace http = boost::beast::http;

namespace {

// The OCTO page spells the create path "subcriptions" once: both are served.
constexpr absl::string_view kCollections[] = {"subscriptions", "subcriptions"};

RouteMatch Matched(Route route, std::string tmpl) {
  RouteMatch m;
  m.route = route;
  m.route_template = std::move(tmpl);
  return m;
}

RouteMatch Refused(std::string tmpl, std::string_view allow) {
  RouteMatch m = Matched(Route::kMethodNotAllowed, std::move(tmpl));
  m.allow = std::string(allow);
  return m;
}

}  // namespace

bool IsSubscriptionRoute(Route route) {
  switch (route) {
    case Route::kCreateSubscription:
    case Route::kListSubscriptions:
    case Route::kGetSubscription:
    case Route::kUpdateSubscription:
    case Route::kDeleteSubscription:
      return true;
    default:
      return false;
  }
}

RouteMatch Router::MatchNotifications(http::verb method, absl::string_view path) const {
  for (absl::string_view collection : kCollections) {
    absl::string_view rest = path;
    if (!absl::ConsumePrefix(&rest, collection)) continue;
    const std::string base = absl::StrCat(base_path_, "/notifications/", collection);
    if (rest.empty() || rest == "/") {
      if (method == http::verb::get) return Matched(Route::kListSubscriptions, base);
      if (method == http::verb::post) return Matched(Route::kCreateSubscription, base);
      return Refused(base, "GET, POST");
    }
    if (!absl::ConsumePrefix(&rest, "/")) continue;
    absl::ConsumeSuffix(&rest, "/");
    if (rest.empty() || rest.find('/') != absl::string_view::npos) break;
    const std::string item = absl::StrCat(base, "/:id");
    RouteMatch m;
    switch (method) {
      case http::verb::get:
        m = Matched(Route::kGetSubscription, item);
        break;
      case http::verb::patch:
        m = Matched(Route::kUpdateSubscription, item);
        break;
      case http::verb::delete_:
        m = Matched(Route::kDeleteSubscription, item);
        break;
      default:
        return Refused(item, "GET, PATCH, DELETE");
    }
    m.webhook_id = std::string(rest);
    return m;
  }
  return Matched(Route::kNotFound, "unmatched");
}

void Router::AppendNotificationRoutes(std::vector<RouteSpec>& out) const {
  for (absl::string_view collection : kCollections) {
    const std::string base = absl::StrCat(base_path_, "/notifications/", collection);
    const std::string item = absl::StrCat(base, "/:id");
    out.push_back({"GET", base});
    out.push_back({"POST", base});
    out.push_back({"GET", item});
    out.push_back({"PATCH", item});
    out.push_back({"DELETE", item});
  }
}

}  // namespace octo::gateway
