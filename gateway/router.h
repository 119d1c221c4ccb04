#pragma once
// The gateway's routing table. Webhook routes live under a configurable base
// path (default "/octo", so POST /octo/webhooks); probes live at the root.
//
//   route                      methods             Allow on 405
//   <base>/webhooks[/]         GET, POST           "GET, POST"
//   <base>/webhooks/:id[/]     GET, PATCH, DELETE  "GET, PATCH, DELETE"
//   /healthz                   GET                 "GET"
//   /readyz                    GET                 "GET"
//   /metrics                   GET                 "GET"   (Prometheus text format)
//   /openapi.yaml              GET                 "GET"
//
// The OCTO notifications dialect (notifications_router.cc), each "[/]", also
// under the spelling "subcriptions" that the OCTO page uses for create:
//   <base>/notifications/subscriptions       GET, POST           "GET, POST"
//   <base>/notifications/subscriptions/:id   GET, PATCH, DELETE  "GET, PATCH, DELETE"
//
// Extensions (docs/decisions.md: why "/ext"), each "[/]":
//   <base>/ext/webhooks/:id/deliveries                       GET
//   <base>/ext/webhooks/:id/deliveries/:deliveryId           GET
//   <base>/ext/webhooks/:id/deliveries/:deliveryId/redeliver POST
//   <base>/ext/webhooks/:id/replay                           POST
//   <base>/ext/webhooks/:id/test                             POST
//   <base>/ext/webhooks/:id/rotate-secret                    POST
//   <base>/ext/webhooks/:id/enable                           POST
//
// The query string is ignored. Paths are matched byte for byte (no
// percent-decoding, no "//" collapsing): an id that is not a UUID is answered
// as INVALID_WEBHOOK_ID by the handler, anything else unknown is 404.
//
// Example:
//   Router router("/octo");
//   RouteMatch m = router.Match(http::verb::get, "/octo/webhooks/1b2c...?x=1");
//   // m.route == Route::kGetWebhook, m.webhook_id == "1b2c..."
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/verb.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace octo::gateway {

enum class Route {
  kNotFound,          // no route has this path
  kMethodNotAllowed,  // the path exists, the method does not: see `allow`
  kHealthz,
  kReadyz,
  kMetrics,
  kCreateWebhook,
  kListWebhooks,
  kGetWebhook,
  kUpdateWebhook,
  kDeleteWebhook,
  kOpenApi,
  kListDeliveries,
  kGetDelivery,
  kRedeliverDelivery,
  kReplayDeliveries,
  kSendTestEvent,
  kRotateWebhookSecret,
  kEnableWebhook,
  kCreateSubscription,
  kListSubscriptions,
  kGetSubscription,
  kUpdateSubscription,
  kDeleteSubscription,
};

// True for the notifications dialect's routes.
bool IsSubscriptionRoute(Route route);

// One route the router serves: for the OpenAPI completeness test.
struct RouteSpec {
  std::string method;         // "GET", ...
  std::string path_template;  // "/octo/webhooks/:id"
};

struct RouteMatch {
  Route route = Route::kNotFound;
  // The path template for logs and metrics ("/octo/webhooks/:id"); "unmatched"
  // for kNotFound.
  std::string route_template;
  // The :id segment, raw, for the webhook-by-id routes.
  std::string webhook_id;
  // The :deliveryId segment, raw, for the delivery-by-id routes.
  std::string delivery_id;
  // For kMethodNotAllowed: the Allow header value.
  std::string allow;
};

// Normalizes a --base_path value: "" and "/" mean the root, a trailing slash
// is dropped, otherwise it must start with "/" and hold only RFC 3986 path
// characters (no "?", "#", "%", whitespace, "//", "." or ".." segments).
absl::StatusOr<std::string> NormalizeBasePath(std::string_view base_path);

// Immutable after construction; thread-safe.
class Router {
 public:
  // `base_path` must already be normalized.
  explicit Router(std::string base_path);

  RouteMatch Match(boost::beast::http::verb method, std::string_view target) const;

  const std::string& base_path() const { return base_path_; }

  // Every method and path template served, in routing-table order.
  std::vector<RouteSpec> Routes() const;

 private:
  RouteMatch MatchExtension(boost::beast::http::verb method, absl::string_view path) const;
  // `path` is what follows "<base>/notifications/".
  RouteMatch MatchNotifications(boost::beast::http::verb method, absl::string_view path) const;
  void AppendNotificationRoutes(std::vector<RouteSpec>& out) const;

  std::string base_path_;
  std::string collection_template_;  // <base>/webhooks
  std::string item_template_;        // <base>/webhooks/:id
};

}  // namespace octo::gateway
