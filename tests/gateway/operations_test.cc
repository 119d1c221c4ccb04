// The gateway's extension routes without a backend: routing, the
// parsing of query strings and bodies, the JSON of a delivery, the handler's
// checks before any backend call, and docs/openapi.yaml: validated by the
// public @apidevtools/swagger-parser and checked to document every route
// the router serves.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "gateway/api_handler.h"
#include "gateway/openapi_document.h"
#include "gateway/operations_json.h"
#include "gateway/router.h"
#include "tests/gateway/fake_subscription_backend.h"

#ifndef OCTO_SOURCE_DIR
#error "OCTO_SOURCE_DIR must name the repository root"
#endif

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace v1 = octo::webhooks::v1;

constexpr const char* kId = "9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e";
constexpr const char* kDeliveryId = "0b8c6a9e-3f2d-4e1a-8c7b-5d4e3f2a1b0c";

// ----------------------------------------------------------------- router --

TEST(ExtensionRouter, MatchesEveryRouteWithAndWithoutTrailingSlash) {
  const Router router("/octo");
  const std::string base = absl::StrCat("/octo/ext/webhooks/", kId);
  struct Case {
    http::verb method;
    std::string path;
    Route route;
    std::string tmpl;
  };
  const std::vector<Case> cases = {
      {http::verb::get, "/deliveries", Route::kListDeliveries, "/octo/ext/webhooks/:id/deliveries"},
      {http::verb::get, absl::StrCat("/deliveries/", kDeliveryId), Route::kGetDelivery,
       "/octo/ext/webhooks/:id/deliveries/:deliveryId"},
      {http::verb::post, absl::StrCat("/deliveries/", kDeliveryId, "/redeliver"), Route::kRedeliverDelivery,
       "/octo/ext/webhooks/:id/deliveries/:deliveryId/redeliver"},
      {http::verb::post, "/replay", Route::kReplayDeliveries, "/octo/ext/webhooks/:id/replay"},
      {http::verb::post, "/test", Route::kSendTestEvent, "/octo/ext/webhooks/:id/test"},
      {http::verb::post, "/rotate-secret", Route::kRotateWebhookSecret, "/octo/ext/webhooks/:id/rotate-secret"},
      {http::verb::post, "/enable", Route::kEnableWebhook, "/octo/ext/webhooks/:id/enable"},
  };
  for (const Case& c : cases) {
    for (const std::string& suffix : {std::string(), std::string("/"), std::string("?a=b")}) {
      const RouteMatch m = router.Match(c.method, base + c.path + suffix);
      EXPECT_EQ(m.route, c.route) << c.path << suffix;
      EXPECT_EQ(m.route_template, c.tmpl);
      EXPECT_EQ(m.webhook_id, kId);
    }
    const RouteMatch wrong =
        router.Match(c.method == http::verb::get ? http::verb::post : http::verb::get, base + c.path);
    EXPECT_EQ(wrong.route, Route::kMethodNotAllowed) << c.path;
    EXPECT_EQ(wrong.allow, c.method == http::verb::get ? "GET" : "POST");
  }
  EXPECT_EQ(router.Match(http::verb::get, absl::StrCat(base, "/deliveries/", kDeliveryId)).delivery_id,
            kDeliveryId);
}

TEST(ExtensionRouter, UnknownShapesAreNotFound) {
  const Router router("/octo");
  for (const std::string& target :
       {std::string("/octo/ext/webhooks/"), absl::StrCat("/octo/ext/webhooks/", kId),
        absl::StrCat("/octo/ext/webhooks/", kId, "/"), absl::StrCat("/octo/ext/webhooks/", kId, "/nope"),
        absl::StrCat("/octo/ext/webhooks/", kId, "/deliveries//redeliver"),
        absl::StrCat("/octo/ext/webhooks/", kId, "/deliveries/x/redeliver/more"),
        absl::StrCat("/octo/ext/webhooks//deliveries"), std::string("/ext/webhooks/x/test"),
        absl::StrCat("/octo/ext/", kId, "/test")}) {
    EXPECT_EQ(router.Match(http::verb::post, target).route, Route::kNotFound) << target;
  }
}

TEST(ExtensionRouter, FollowsTheBasePathAndListsEveryRoute) {
  const Router router("");
  EXPECT_EQ(router.Match(http::verb::post, absl::StrCat("/ext/webhooks/", kId, "/test")).route,
            Route::kSendTestEvent);
  EXPECT_EQ(router.Match(http::verb::get, "/openapi.yaml").route, Route::kOpenApi);
  EXPECT_EQ(router.Match(http::verb::get, "/metrics").route, Route::kMetrics);
  EXPECT_EQ(router.Match(http::verb::post, "/openapi.yaml").route, Route::kMethodNotAllowed);
  const std::vector<RouteSpec> routes = Router("/octo").Routes();
  EXPECT_EQ(routes.size(), 26u);  // 16 webhook, probe and extension routes + 10 notification routes
}

// ---------------------------------------------------------------- parsing --

TEST(ListDeliveriesQuery, ParsesEveryParameter) {
  absl::StatusOr<v1::ListDeliveriesRequest> r =
      ParseListDeliveriesQuery("/x?status=failed&event=order_update&limit=7&cursor=abc_-");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), v1::DELIVERY_STATE_FAILED);
  EXPECT_EQ(r->event(), "order_update");
  EXPECT_EQ(r->page_size(), 7);
  EXPECT_EQ(r->page_token(), "abc_-");
  absl::StatusOr<v1::ListDeliveriesRequest> none = ParseListDeliveriesQuery("/x");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->page_size(), 0);
  EXPECT_EQ(ParseListDeliveriesQuery("/x?status=%70ending")->state(), v1::DELIVERY_STATE_PENDING);
}

TEST(ListDeliveriesQuery, RefusesBadParameters) {
  for (const char* target :
       {"/x?status=ok", "/x?status=", "/x?limit=0", "/x?limit=101", "/x?limit=+5", "/x?limit=0x5",
        "/x?limit=99999999999", "/x?cursor=", "/x?event=", "/x?foo=1", "/x?limit=1&limit=1", "/x?limit=%",
        "/x?limit=%4", "/x?status=%zz", "/x?event=%FF", "/x?event=Order_Update", "/x?event=a%00b",
        "/x?cursor=%C3%28", "/x?cursor=a%2Bb", "/x?cursor=a/b"}) {
    absl::StatusOr<v1::ListDeliveriesRequest> r = ParseListDeliveriesQuery(target);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << target;
  }
}

TEST(ReplayBody, ParsesSinceAndLimit) {
  absl::StatusOr<v1::ReplayDeliveriesRequest> r =
      ParseReplayBody(R"({"since":"2026-11-25T10:00:00.5+01:00","limit":1000})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->since().seconds(), 1795597200);  // 09:00:00Z
  EXPECT_EQ(r->since().nanos(), 500000000);
  EXPECT_EQ(r->max_count(), 1000);
  EXPECT_EQ(ParseReplayBody(R"({"since":"2026-11-25T10:00:00Z"})")->max_count(), 0);
}

TEST(ReplayBody, RefusesBadBodies) {
  for (const char* body :
       {"", "[]", "{", "{}", R"({"since":null})", R"({"since":"2026-11-25"})", R"({"since":"2026-11-25T10:00:00"})",
        R"({"since":"1969-12-31T23:59:59Z"})", R"({"since":"2026-11-25T10:00:00Z","limit":0})",
        R"({"since":"2026-11-25T10:00:00Z","limit":1001})", R"({"since":"2026-11-25T10:00:00Z","limit":true})",
        R"({"since":"2026-11-25T10:00:00Z","limit":18446744073709551615})",
        R"({"since":"2026-11-25T10:00:00Z","x":1})"}) {
    EXPECT_EQ(ParseReplayBody(body).status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(RotateBody, GraceIsOptionalAndBounded) {
  EXPECT_FALSE(ParseRotateBody("")->has_grace_period_seconds());
  EXPECT_FALSE(ParseRotateBody("{}")->has_grace_period_seconds());
  EXPECT_EQ(ParseRotateBody(R"({"gracePeriodSeconds":0})")->grace_period_seconds(), 0);
  EXPECT_EQ(ParseRotateBody(R"({"gracePeriodSeconds":604800})")->grace_period_seconds(), 604800);
  for (const char* body : {R"({"gracePeriodSeconds":-1})", R"({"gracePeriodSeconds":604801})",
                           R"({"gracePeriodSeconds":1.5})", R"({"gracePeriodSeconds":null})", R"({"grace":1})",
                           "[1]"}) {
    EXPECT_EQ(ParseRotateBody(body).status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(EmptyBody, OnlyNothingOrAnEmptyObject) {
  EXPECT_TRUE(CheckEmptyBody("", false).ok());
  EXPECT_TRUE(CheckEmptyBody("{}", true).ok());
  EXPECT_TRUE(CheckEmptyBody(" { } ", true).ok());
  EXPECT_EQ(CheckEmptyBody("{}", false).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckEmptyBody(R"({"a":1})", true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckEmptyBody("null", true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckNoQuery("/x").ok());
  EXPECT_TRUE(CheckNoQuery("/x?").ok());
  EXPECT_FALSE(CheckNoQuery("/x?a").ok());
}

TEST(DeliveryJson, RendersNullsAndAttempts) {
  v1::Delivery d;
  d.set_id(kDeliveryId);
  d.set_webhook_id(kId);
  d.set_event_id(kId);
  d.set_event("booking_update");
  d.set_state(v1::DELIVERY_STATE_FAILED);
  d.set_attempt_count(1);
  d.mutable_create_time()->set_seconds(1764064800);
  d.mutable_complete_time()->set_seconds(1764064801);
  d.set_last_error_class("timeout");
  d.set_webhook_message_id("msg_x");
  v1::DeliveryAttempt* a = d.add_attempts();
  a->set_attempt_number(1);
  a->mutable_start_time()->set_seconds(1764064800);
  a->set_duration_ms(1000.5);
  a->set_error_class("timeout");
  EXPECT_EQ(boost::json::serialize(DeliveryToJson(d, true)),
            R"({"id":"0b8c6a9e-3f2d-4e1a-8c7b-5d4e3f2a1b0c","webhookId":"9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e",)"
            R"("eventId":"9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e","event":"booking_update","status":"failed",)"
            R"("attemptCount":1,"createdAt":"2025-11-25T10:00:00Z","completedAt":"2025-11-25T10:00:01Z",)"
            R"("lastHttpStatus":null,"lastErrorClass":"timeout","webhookMessageId":"msg_x",)"
            R"("attempts":[{"attemptNumber":1,"startedAt":"2025-11-25T10:00:00Z","durationMs":1.0005E3,)"
            R"("httpStatus":null,"errorClass":"timeout","responseSnippet":""}]})");
  EXPECT_FALSE(DeliveryToJson(d, false).contains("attempts"));
}

// ---------------------------------------------------------------- handler --

class ExtensionHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_.AddKey("key-1", "c0000000-0000-4000-8000-000000000001"); }

  HttpResponse Run(http::verb method, const std::string& target, const std::string& body = "",
                   bool json = true, bool auth = true) {
    HttpRequest request{method, target, 11};
    if (auth) request.set(http::field::authorization, "Bearer key-1");
    if (!body.empty()) {
      if (json) request.set(http::field::content_type, "application/json");
      request.body() = body;
      request.prepare_payload();
    }
    HttpResponse out;
    handler_.Handle(std::move(request), [&](HandlerResult r) { out = std::move(r.response); });
    return out;
  }

  static std::string Error(const HttpResponse& r) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(r.body(), ec);
    if (ec || !v.is_object() || !v.as_object().contains("error")) return "<no error>";
    return std::string(v.at("error").as_string());
  }

  testing::FakeSubscriptionBackend backend_;
  ApiHandler handler_{ApiHandler::Options{}, &backend_};
};

TEST_F(ExtensionHandlerTest, ChecksIdsAndInputBeforeCallingTheBackend) {
  const std::string w = absl::StrCat("/octo/ext/webhooks/", kId);
  struct Case {
    http::verb method;
    std::string target;
    std::string body;
    bool json;
    int status;
    std::string error;
  };
  const std::vector<Case> cases = {
      {http::verb::get, "/octo/ext/webhooks/x/deliveries", "", true, 400, "INVALID_WEBHOOK_ID"},
      {http::verb::get, w + "/deliveries/x", "", true, 400, "INVALID_DELIVERY_ID"},
      {http::verb::post, w + "/deliveries/x/redeliver", "", true, 400, "INVALID_DELIVERY_ID"},
      {http::verb::get, w + "/deliveries?limit=500", "", true, 400, "BAD_REQUEST"},
      {http::verb::post, w + "/replay", "", true, 415, "BAD_REQUEST"},
      {http::verb::post, w + "/replay", R"({"since":"x"})", true, 400, "BAD_REQUEST"},
      {http::verb::post, w + "/test", "{}", false, 415, "BAD_REQUEST"},
      {http::verb::post, w + "/test", R"({"a":1})", true, 400, "BAD_REQUEST"},
      {http::verb::post, w + "/enable?force=1", "", true, 400, "BAD_REQUEST"},
      {http::verb::post, w + "/rotate-secret", R"({"gracePeriodSeconds":-1})", true, 400, "BAD_REQUEST"},
      {http::verb::post, w + "/rotate-secret", "{}", false, 415, "BAD_REQUEST"},
  };
  for (const Case& c : cases) {
    const HttpResponse r = Run(c.method, c.target, c.body, c.json);
    EXPECT_EQ(static_cast<int>(r.result()), c.status) << c.target << " " << r.body();
    EXPECT_EQ(Error(r), c.error) << c.target << " " << r.body();
  }
  // Only authentication reached the backend.
  EXPECT_EQ(backend_.calls("Authenticate"), static_cast<int>(cases.size()));
  EXPECT_EQ(static_cast<int>(Run(http::verb::post, w + "/enable", "", true, /*auth=*/false).result()), 401);
}

TEST_F(ExtensionHandlerTest, ServesTheOpenApiDocumentWithoutAuthentication) {
  const HttpResponse r = Run(http::verb::get, "/openapi.yaml", "", true, /*auth=*/false);
  EXPECT_EQ(r.result(), http::status::ok);
  EXPECT_EQ(r[http::field::content_type], "application/yaml");
  EXPECT_EQ(r.body(), OpenApiDocument());
  EXPECT_EQ(backend_.calls("Authenticate"), 0);
}

// ---------------------------------------------------------------- OpenAPI --

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(OpenApi, TheServedDocumentIsDocsOpenapiYaml) {
  EXPECT_EQ(std::string(OpenApiDocument()), ReadFile(OCTO_SOURCE_DIR "/docs/openapi.yaml"));
}

// Runs tests/openapi/check.mjs: swagger-parser validation and the route check.
TEST(OpenApi, IsValidAndDocumentsEveryRoute) {
  const char* checker = std::getenv("OCTO_OPENAPI_CHECK");
  ASSERT_TRUE(checker != nullptr && *checker != '\0')
      << "OCTO_OPENAPI_CHECK is not set: it must name tests/openapi/check.mjs after `npm ci` in tests/openapi "
         "(scripts/test.sh does both)";
  ASSERT_TRUE(std::filesystem::exists(checker)) << checker;
  boost::json::array routes;
  for (const RouteSpec& r : Router("/octo").Routes()) {
    boost::json::object o;
    o["method"] = r.method;
    o["path"] = r.path_template;
    routes.push_back(std::move(o));
  }
  const std::string input = (std::filesystem::temp_directory_path() /
                             absl::StrCat("octo-openapi-routes-", ::getpid(), ".json"))
                                .string();
  {
    std::ofstream out(input, std::ios::binary);
    out << boost::json::serialize(routes);
  }
  const std::string command =
      absl::StrCat("node '", checker, "' '", OCTO_SOURCE_DIR "/docs/openapi.yaml' < '", input, "' 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[1024];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = ::pclose(pipe);
  std::filesystem::remove(input);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_NE(output.find("26 routes documented"), std::string::npos) << output;
}

}  // namespace
}  // namespace octo::gateway
