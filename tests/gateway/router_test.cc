#include "gateway/router.h"

#include <gtest/gtest.h>

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;

constexpr const char* kId = "9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e";

TEST(Router, WebhookCollection) {
  const Router router("/octo");
  for (const char* target : {"/octo/webhooks", "/octo/webhooks/", "/octo/webhooks?limit=5"}) {
    EXPECT_EQ(router.Match(http::verb::get, target).route, Route::kListWebhooks) << target;
    EXPECT_EQ(router.Match(http::verb::post, target).route, Route::kCreateWebhook) << target;
    EXPECT_EQ(router.Match(http::verb::get, target).route_template, "/octo/webhooks");
  }
}

TEST(Router, WebhookItem) {
  const Router router("/octo");
  for (const std::string& target :
       {std::string("/octo/webhooks/") + kId, std::string("/octo/webhooks/") + kId + "/",
        std::string("/octo/webhooks/") + kId + "?x=1"}) {
    RouteMatch m = router.Match(http::verb::get, target);
    EXPECT_EQ(m.route, Route::kGetWebhook) << target;
    EXPECT_EQ(m.webhook_id, kId);
    EXPECT_EQ(m.route_template, "/octo/webhooks/:id");
    EXPECT_EQ(router.Match(http::verb::patch, target).route, Route::kUpdateWebhook);
    EXPECT_EQ(router.Match(http::verb::delete_, target).route, Route::kDeleteWebhook);
  }
  // Any single segment is an id here; the handler decides whether it is valid.
  EXPECT_EQ(router.Match(http::verb::get, "/octo/webhooks/not-a-uuid").webhook_id, "not-a-uuid");
}

TEST(Router, MethodNotAllowedCarriesAllow) {
  const Router router("/octo");
  RouteMatch m = router.Match(http::verb::delete_, "/octo/webhooks");
  EXPECT_EQ(m.route, Route::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, POST");
  m = router.Match(http::verb::put, std::string("/octo/webhooks/") + kId);
  EXPECT_EQ(m.route, Route::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, PATCH, DELETE");
  m = router.Match(http::verb::post, "/healthz");
  EXPECT_EQ(m.route, Route::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET");
  EXPECT_EQ(router.Match(http::verb::unknown, "/octo/webhooks").route, Route::kMethodNotAllowed);
}

TEST(Router, Probes) {
  const Router router("/octo");
  EXPECT_EQ(router.Match(http::verb::get, "/healthz").route, Route::kHealthz);
  EXPECT_EQ(router.Match(http::verb::get, "/readyz?verbose").route, Route::kReadyz);
  // Probes are not under the base path.
  EXPECT_EQ(router.Match(http::verb::get, "/octo/healthz").route, Route::kNotFound);
}

TEST(Router, MetricsAtTheRootOnly) {
  const Router router("/octo");
  const RouteMatch m = router.Match(http::verb::get, "/metrics");
  EXPECT_EQ(m.route, Route::kMetrics);
  EXPECT_EQ(m.route_template, "/metrics");
  EXPECT_EQ(router.Match(http::verb::post, "/metrics").allow, "GET");
  EXPECT_EQ(router.Match(http::verb::get, "/octo/metrics").route, Route::kNotFound);
  EXPECT_EQ(router.Match(http::verb::get, "/metrics/x").route, Route::kNotFound);
}

TEST(Router, UnknownPaths) {
  const Router router("/octo");
  for (const char* target :
       {"/", "", "*", "/webhooks", "/octo", "/octo/", "/octowebhooks", "/octo/webhooksx",
        "/octo/webhooks//", "/octo/webhooks/a/b", "/octo/webhooks/a//", "/OCTO/webhooks",
        "http://host/octo/webhooks", "/healthz/"}) {
    const RouteMatch m = router.Match(http::verb::get, target);
    EXPECT_EQ(m.route, Route::kNotFound) << target;
    EXPECT_EQ(m.route_template, "unmatched");
  }
}

TEST(Router, RootBasePath) {
  const Router router("");
  EXPECT_EQ(router.Match(http::verb::get, "/webhooks").route, Route::kListWebhooks);
  EXPECT_EQ(router.Match(http::verb::get, "/webhooks/x").route, Route::kGetWebhook);
  EXPECT_EQ(router.Match(http::verb::get, "/octo/webhooks").route, Route::kNotFound);
}

TEST(Router, NestedBasePath) {
  const Router router("/integrations/octo");
  EXPECT_EQ(router.Match(http::verb::post, "/integrations/octo/webhooks").route,
            Route::kCreateWebhook);
  EXPECT_EQ(router.Match(http::verb::post, "/integrations/octo/webhooks").route_template,
            "/integrations/octo/webhooks");
}

TEST(NormalizeBasePath, AcceptsAndNormalizes) {
  EXPECT_EQ(NormalizeBasePath("/octo").value(), "/octo");
  EXPECT_EQ(NormalizeBasePath("/octo/").value(), "/octo");
  EXPECT_EQ(NormalizeBasePath("/").value(), "");
  EXPECT_EQ(NormalizeBasePath("").value(), "");
  EXPECT_EQ(NormalizeBasePath("/a/b-c_d.e~f").value(), "/a/b-c_d.e~f");
}

TEST(NormalizeBasePath, RejectsBadPaths) {
  for (const char* path :
       {"octo", "/oc to", "/octo?x", "/octo#", "/a//b", "/a/./b", "/a/../b", "/%41", "//"}) {
    EXPECT_FALSE(NormalizeBasePath(path).ok()) << path;
  }
}

}  // namespace
}  // namespace octo::gateway
