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
  if (path == kHealthz || path == kReadyz) {
    const bool healthz = path == kHealthz;
    if (method != http::verb::get) return NotAllowed(StdView(path), "GET");
    return Allowed(healthz ? Route::kHealthz : Route::kReadyz, StdView(path));
  }

  // <base>/webhooks ...
  if (!absl::ConsumePrefix(&path, base_path_) || !absl::ConsumePrefix(&path, "/webhooks")) {
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

}  // namespace octo::gateway
