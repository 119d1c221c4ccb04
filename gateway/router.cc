#include "gateway/router.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/string_views.h"

namespace octo::gateway {

namespace http = boost::beast::http;

namespace {

constexpr absl::string_view kHealthz = "/healthz";
constexpr absl::string_view kReadyz = "/readyz";
constexpr absl::string_view kMetrics = "/metrics";
constexpr absl::string_view kOpenApiPath = "/openapi.yaml";

bool IsPathChar(char c) {
  // RFC 3986 pchar minus "%" (we never decode), plus "/".
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~!$&'()*+,;=:@/").find(c) != std::string_view::npos;
}

RouteMatch Allowed(Route route, std::string_view tmpl) {
  RouteMatch m;
  m.route = route;
  m.route_template = std::string(tmpl);
  return m;
}

RouteMatch NotAllowed(std::string_view tmpl, std::string_view allow) {
  RouteMatch m;
  m.route = Route::kMethodNotAllowed;
  m.route_template = std::string(tmpl);
  m.allow = std::string(allow);
  return m;
}

}  // namespace

absl::StatusOr<std::string> NormalizeBasePath(std::string_view base_path_arg) {
  const absl::string_view base_path = AbslView(base_path_arg);
  std::string path(base_path);
  if (path == "/") path.clear();
  if (!path.empty() && path.back() == '/') path.pop_back();
  if (path.empty()) return path;
  if (path.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("--base_path must start with '/': '", base_path, "'"));
  }
  for (char c : path) {
    if (!IsPathChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--base_path may hold only unreserved path characters: '", base_path, "'"));
    }
  }
  for (absl::string_view segment : absl::StrSplit(absl::string_view(path).substr(1), '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("--base_path has an empty, '.' or '..' segment: '", base_path, "'"));
    }
  }
  return path;
}

Router::Router(std::string base_path)
    : base_path_(std::move(base_path)),
      collection_template_(absl::StrCat(base_path_, "/webhooks")),
      item_template_(absl::StrCat(base_path_, "/webhooks/:id")) {}

RouteMatch Router::Match(http::verb method, std::string_view target) const {
  absl::string_view path = AbslView(target.substr(0, target.find('?')));

  if (path == kMetrics) {
    if (method != http::verb::get) return NotAllowed(StdView(path), "GET");
    return Allowed(Route::kMetrics, StdView(path));
  }
  if (path == kOpenApiPath) {
    if (method != http::verb::get) return NotAllowed(StdView(path), "GET");
    return Allowed(Route::kOpenApi, StdView(path));
  }
  if (path == kHealthz || path == kReadyz) {
    const bool healthz = path == kHealthz;
    if (method != http::verb::get) return NotAllowed(StdView(path), "GET");
    return Allowed(healthz ? Route::kHealthz : Route::kReadyz, StdView(path));
  }

  if (!absl::ConsumePrefix(&path, base_path_)) return Allowed(Route::kNotFound, "unmatched");
  // <base>/ext/webhooks/:id/...
  if (absl::ConsumePrefix(&path, "/ext/webhooks/")) return MatchExtension(method, path);
  // <base>/notifications/subscriptions ...
  if (absl::ConsumePrefix(&path, "/notifications/")) return MatchNotifications(method, path);
  // <base>/webhooks ...
  if (!absl::ConsumePrefix(&path, "/webhooks")) {
    return Allowed(Route::kNotFound, "unmatched");
  }
  if (path.empty() || path == "/") {
    switch (method) {
      case http::verb::get:
        return Allowed(Route::kListWebhooks, collection_template_);
      case http::verb::post:
        return Allowed(Route::kCreateWebhook, collection_template_);
      default:
        return NotAllowed(collection_template_, "GET, POST");
    }
  }
  // ... /:id or /:id/
  if (!absl::ConsumePrefix(&path, "/")) return Allowed(Route::kNotFound, "unmatched");
  absl::ConsumeSuffix(&path, "/");
  if (path.empty() || path.find('/') != absl::string_view::npos) {
    return Allowed(Route::kNotFound, "unmatched");
  }
  RouteMatch m;
  switch (method) {
    case http::verb::get:
      m = Allowed(Route::kGetWebhook, item_template_);
      break;
    case http::verb::patch:
      m = Allowed(Route::kUpdateWebhook, item_template_);
      break;
    case http::verb::delete_:
      m = Allowed(Route::kDeleteWebhook, item_template_);
      break;
    default:
      return NotAllowed(item_template_, "GET, PATCH, DELETE");
  }
  m.webhook_id = std::string(path);
  return m;
}

namespace {

// One extension route: the segments after "/ext/webhooks/:id" (":delivery"
// stands for a delivery id), its method and what it is.
struct ExtensionRoute {
  std::vector<absl::string_view> tail;
  http::verb method;
  Route route;
};

const std::vector<ExtensionRoute>& ExtensionRoutes() {
  static const auto* routes = new std::vector<ExtensionRoute>{
      {{"deliveries"}, http::verb::get, Route::kListDeliveries},
      {{"deliveries", ":deliveryId"}, http::verb::get, Route::kGetDelivery},
      {{"deliveries", ":deliveryId", "redeliver"}, http::verb::post, Route::kRedeliverDelivery},
      {{"replay"}, http::verb::post, Route::kReplayDeliveries},
      {{"test"}, http::verb::post, Route::kSendTestEvent},
      {{"rotate-secret"}, http::verb::post, Route::kRotateWebhookSecret},
      {{"enable"}, http::verb::post, Route::kEnableWebhook},
  };
  return *routes;
}

std::string ExtensionTemplate(absl::string_view base, const ExtensionRoute& r) {
  std::string t = absl::StrCat(base, "/ext/webhooks/:id");
  for (absl::string_view segment : r.tail) absl::StrAppend(&t, "/", segment);
  return t;
}

}  // namespace

// `path` is what follows "<base>/ext/webhooks/".
RouteMatch Router::MatchExtension(http::verb method, absl::string_view path) const {
  absl::ConsumeSuffix(&path, "/");
  std::vector<absl::string_view> segments = absl::StrSplit(path, '/');
  if (segments.size() < 2 || segments[0].empty()) return Allowed(Route::kNotFound, "unmatched");
  const absl::string_view webhook_id = segments[0];
  for (const ExtensionRoute& r : ExtensionRoutes()) {
    if (r.tail.size() != segments.size() - 1) continue;
    bool same = true;
    absl::string_view delivery_id;
    for (std::size_t i = 0; i < r.tail.size() && same; ++i) {
      const absl::string_view got = segments[i + 1];
      if (r.tail[i] == ":deliveryId") {
        same = !got.empty();
        delivery_id = got;
      } else {
        same = got == r.tail[i];
      }
    }
    if (!same) continue;
    const std::string tmpl = ExtensionTemplate(base_path_, r);
    if (method != r.method) {
      return NotAllowed(tmpl, r.method == http::verb::get ? "GET" : "POST");
    }
    RouteMatch m = Allowed(r.route, tmpl);
    m.webhook_id = std::string(webhook_id);
    m.delivery_id = std::string(delivery_id);
    return m;
  }
  return Allowed(Route::kNotFound, "unmatched");
}

std::vector<RouteSpec> Router::Routes() const {
  std::vector<RouteSpec> out = {
      {"GET", collection_template_},  {"POST", collection_template_},
      {"GET", item_template_},        {"PATCH", item_template_},
      {"DELETE", item_template_},     {"GET", std::string(kHealthz)},
      {"GET", std::string(kReadyz)},  {"GET", std::string(kOpenApiPath)},
      {"GET", std::string(kMetrics)},
  };
  for (const ExtensionRoute& r : ExtensionRoutes()) {
    out.push_back({r.method == http::verb::get ? "GET" : "POST", ExtensionTemplate(base_path_, r)});
  }
  AppendNotificationRoutes(out);
  return out;
}

}  // namespace octo::gateway
