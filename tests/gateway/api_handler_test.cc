#include "gateway/api_handler.h"

#include <optional>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "tests/gateway/fake_subscription_backend.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace health = grpc::health::v1;
using testing::FakeSubscriptionBackend;

constexpr const char* kKey = "octo_key_a";
constexpr const char* kOtherKey = "octo_key_b";
constexpr const char* kConnection = "c0000000-0000-4000-8000-00000000000a";
constexpr const char* kMissingId = "9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e";
constexpr const char* kValidBody =
    R"({"url":"https://u:p@example.com/h","event":"booking_update"})";

class ApiHandlerTest : public ::testing::Test {
 protected:
  ApiHandlerTest() : handler_(Options(), &backend_) {
    backend_.AddKey(kKey, kConnection);
    backend_.AddKey(kOtherKey, "c0000000-0000-4000-8000-00000000000b");
  }

  static ApiHandler::Options Options() {
    ApiHandler::Options options;
    options.base_path = "/octo";
    options.request_timeout = std::chrono::milliseconds(1234);
    return options;
  }

  // The fake completes inline, so the result is there when Handle returns.
  HandlerResult Call(http::verb method, const std::string& target, const std::string& body = "",
                     const char* key = kKey, const char* content_type = "application/json") {
    HttpRequest request(method, target, 11);
    if (key != nullptr) request.set(http::field::authorization, std::string("Bearer ") + key);
    if (content_type != nullptr && !body.empty())
      request.set(http::field::content_type, content_type);
    for (const auto& [name, value] : extra_headers_) request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    return Call(std::move(request));
  }

  HandlerResult Call(HttpRequest request) {
    std::optional<HandlerResult> result;
    handler_.Handle(std::move(request), [&](HandlerResult r) { result = std::move(r); });
    EXPECT_TRUE(result.has_value());
    return result.value_or(HandlerResult{});
  }

  static json::value Body(const HandlerResult& r) {
    EXPECT_EQ(r.response[http::field::content_type], "application/json");
    boost::system::error_code ec;
    json::value v = json::parse(r.response.body(), ec);
    EXPECT_FALSE(ec) << r.response.body();
    return v;
  }

  static std::string Error(const HandlerResult& r) {
    return std::string(Body(r).at("error").as_string());
  }

  std::string CreateWebhook() {
    HandlerResult r = Call(http::verb::post, "/octo/webhooks", kValidBody);
    EXPECT_EQ(r.response.result(), http::status::ok) << r.response.body();
    return std::string(Body(r).at("id").as_string());
  }

  FakeSubscriptionBackend backend_;
  ApiHandler handler_;
  std::vector<std::pair<std::string, std::string>> extra_headers_;
};

TEST_F(ApiHandlerTest, Healthz) {
  HandlerResult r = Call(http::verb::get, "/healthz", "", nullptr);
  EXPECT_EQ(r.response.result(), http::status::ok);
  EXPECT_EQ(r.response.body(), R"({"status":"ok"})");
  EXPECT_EQ(r.route, "/healthz");
}

TEST_F(ApiHandlerTest, MetricsServesTheProvidersText) {
  // Without a provider (as in the fixture): no such route.
  EXPECT_EQ(Call(http::verb::get, "/metrics", "", nullptr).response.result(), http::status::not_found);
  ApiHandler::Options options = Options();
  options.metrics_text = [] { return std::string("# TYPE x_total counter\nx_total 1\n"); };
  ApiHandler handler(options, &backend_);
  HandlerResult result;
  handler.Handle(HttpRequest(http::verb::get, "/metrics", 11), [&](HandlerResult r) { result = std::move(r); });
  EXPECT_EQ(result.response.result(), http::status::ok);
  EXPECT_EQ(result.response.body(), "# TYPE x_total counter\nx_total 1\n");
  EXPECT_EQ(result.response[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(result.route, "/metrics");
}

TEST_F(ApiHandlerTest, ReadyzWhenBothChecksServe) {
  backend_.SetHealth(kOverallHealthService, health::HealthCheckResponse::SERVING);
  backend_.SetHealth(kPostgresHealthService, health::HealthCheckResponse::SERVING);
  HandlerResult r = Call(http::verb::get, "/readyz", "", nullptr);
  EXPECT_EQ(r.response.result(), http::status::ok);
  EXPECT_EQ(Body(r).at("status").as_string(), "ready");
}

TEST_F(ApiHandlerTest, ReadyzNamesTheFailedCheck) {
  backend_.SetHealth(kOverallHealthService, health::HealthCheckResponse::SERVING);
  backend_.SetHealth(kPostgresHealthService, health::HealthCheckResponse::NOT_SERVING);
  HandlerResult r = Call(http::verb::get, "/readyz", "", nullptr);
  EXPECT_EQ(r.response.result(), http::status::service_unavailable);
  const json::value body = Body(r);
  EXPECT_EQ(body.at("status").as_string(), "unready");
  EXPECT_EQ(body.at("checks").at("subscription").as_string(), "SERVING");
  EXPECT_EQ(body.at("checks").at("postgres").as_string(), "NOT_SERVING");
  EXPECT_NE(std::string(body.at("errorMessage").as_string()).find("postgres"), std::string::npos);

  backend_.FailNext("CheckHealth", absl::UnavailableError("down"));
  EXPECT_EQ(Call(http::verb::get, "/readyz", "", nullptr).response.result(),
            http::status::service_unavailable);
}

TEST_F(ApiHandlerTest, UnknownRouteIs404AndWrongMethodIs405) {
  HandlerResult r = Call(http::verb::get, "/nope");
  EXPECT_EQ(r.response.result(), http::status::not_found);
  EXPECT_EQ(Error(r), "BAD_REQUEST");
  EXPECT_EQ(r.route, "unmatched");

  r = Call(http::verb::put, "/octo/webhooks");
  EXPECT_EQ(r.response.result(), http::status::method_not_allowed);
  EXPECT_EQ(r.response[http::field::allow], "GET, POST");
  EXPECT_EQ(Error(r), "BAD_REQUEST");
  EXPECT_EQ(backend_.calls("Authenticate"), 0);
}

TEST_F(ApiHandlerTest, MissingOrMalformedAuthorizationIs401WithoutABackendCall) {
  HandlerResult r = Call(http::verb::get, "/octo/webhooks", "", nullptr);
  EXPECT_EQ(r.response.result(), http::status::unauthorized);
  EXPECT_EQ(Error(r), "UNAUTHORIZED");

  HttpRequest request(http::verb::get, "/octo/webhooks", 11);
  request.set(http::field::authorization, "Basic dXNlcjpwYXNz");
  EXPECT_EQ(Call(std::move(request)).response.result(), http::status::unauthorized);

  HttpRequest twice(http::verb::get, "/octo/webhooks", 11);
  twice.insert(http::field::authorization, std::string("Bearer ") + kKey);
  twice.insert(http::field::authorization, std::string("Bearer ") + kKey);
  EXPECT_EQ(Call(std::move(twice)).response.result(), http::status::unauthorized);
  EXPECT_EQ(backend_.calls("Authenticate"), 0);
}

TEST_F(ApiHandlerTest, UnknownKeyIs401) {
  HandlerResult r = Call(http::verb::get, "/octo/webhooks", "", "octo_wrong");
  EXPECT_EQ(r.response.result(), http::status::unauthorized);
  EXPECT_EQ(Error(r), "UNAUTHORIZED");
  backend_.FailNext("Authenticate", absl::InvalidArgumentError("api_key: malformed"));
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks").response.result(), http::status::unauthorized);
}

TEST_F(ApiHandlerTest, AuthFirstThenEverythingElse) {
  // A bad key wins over a bad body and a bad id.
  EXPECT_EQ(Call(http::verb::post, "/octo/webhooks", "{", "octo_wrong").response.result(),
            http::status::unauthorized);
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks/x", "", "octo_wrong").response.result(),
            http::status::unauthorized);
}

TEST_F(ApiHandlerTest, UnreachableAuthIs503) {
  backend_.FailNext("Authenticate", absl::UnavailableError("connection refused"));
  HandlerResult r = Call(http::verb::get, "/octo/webhooks");
  EXPECT_EQ(r.response.result(), http::status::service_unavailable);
  EXPECT_EQ(Error(r), "INTERNAL_SERVER_ERROR");
  EXPECT_EQ(r.response[http::field::retry_after], "1");
  EXPECT_EQ(r.response.body().find("refused"), std::string::npos);
}

TEST_F(ApiHandlerTest, CreateAnswers200WithTheWebhookAndSecretOnce) {
  extra_headers_ = {{"Octo-Capabilities", "octo/pricing, octo/content"}};
  HandlerResult r =
      Call(http::verb::post, "/octo/webhooks",
           R"({"url":"https://u:p@example.com/h","event":"booking_update","retryOnError":false,)"
           R"("headers":{"X-Token":"secret"},"capabilities":["octo/offers"]})");
  ASSERT_EQ(r.response.result(), http::status::ok) << r.response.body();
  EXPECT_EQ(r.route, "/octo/webhooks");
  EXPECT_EQ(r.response["Octo-Capabilities"], "octo/pricing, octo/content");
  EXPECT_EQ(r.response[http::field::cache_control], "no-store");
  const json::value body = Body(r);
  EXPECT_EQ(body.at("url").as_string(), "https://u:***@example.com/h");
  EXPECT_EQ(body.at("retryOnError").as_bool(), false);
  EXPECT_EQ(body.at("useContactLanguage").as_bool(), true);
  EXPECT_EQ(body.at("headers").at("X-Token").as_string(), "***");
  EXPECT_EQ(body.at("secret").as_string(), "whsec_dGVzdA==");
  EXPECT_EQ(json::serialize(body.at("capabilities")), R"(["octo/pricing","octo/content"])");

  // The header's capabilities reach the service, the body's do not.
  const auto sent = backend_.last_create();
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->connection_id(), kConnection);
  ASSERT_EQ(sent->capabilities_size(), 2);
  EXPECT_EQ(sent->capabilities(0), "octo/pricing");

  // Reads never show the secret.
  const std::string id(body.at("id").as_string());
  EXPECT_FALSE(Body(Call(http::verb::get, "/octo/webhooks/" + id)).as_object().contains("secret"));
}

TEST_F(ApiHandlerTest, CreateChecksContentType) {
  for (const char* type :
       {"text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"}) {
    HandlerResult r = Call(http::verb::post, "/octo/webhooks", kValidBody, kKey, type);
    EXPECT_EQ(r.response.result(), http::status::unsupported_media_type) << type;
    EXPECT_EQ(Error(r), "BAD_REQUEST");
  }
  EXPECT_EQ(Call(http::verb::post, "/octo/webhooks", kValidBody, kKey, nullptr).response.result(),
            http::status::unsupported_media_type);
  EXPECT_EQ(
      Call(http::verb::post, "/octo/webhooks", kValidBody, kKey, "application/json; charset=UTF-8")
          .response.result(),
      http::status::ok);
  EXPECT_EQ(backend_.calls("CreateWebhook"), 1);
}

TEST_F(ApiHandlerTest, CreateRejectsBadBodiesWith400NamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"url":1,"event":"booking_update"})", "url"},
      {R"({"url":"https://x.test","event":"booking_update","headers":{"A":true}})", "headers.A"},
      {R"({"url":"https://x.test","event":"booking_update","color":"red"})", "color"},
  };
  for (const auto& [body, expected] : cases) {
    HandlerResult r = Call(http::verb::post, "/octo/webhooks", body);
    EXPECT_EQ(r.response.result(), http::status::bad_request) << body;
    EXPECT_EQ(Error(r), "BAD_REQUEST");
    EXPECT_NE(std::string(Body(r).at("errorMessage").as_string()).find(expected), std::string::npos)
        << body;
  }
  EXPECT_EQ(backend_.calls("CreateWebhook"), 0);
}

TEST_F(ApiHandlerTest, InvalidCapabilitiesHeaderIs400) {
  extra_headers_ = {{"Octo-Capabilities", "not a capability!"}};
  HandlerResult r = Call(http::verb::post, "/octo/webhooks", kValidBody);
  EXPECT_EQ(r.response.result(), http::status::bad_request);
  EXPECT_EQ(r.response["Octo-Capabilities"], "");
  EXPECT_EQ(backend_.calls("CreateWebhook"), 0);
}

TEST_F(ApiHandlerTest, ServiceValidationErrorsPassThrough) {
  HandlerResult r =
      Call(http::verb::post, "/octo/webhooks", R"({"url":"https://x.test","event":"nope"})");
  EXPECT_EQ(r.response.result(), http::status::bad_request);
  EXPECT_EQ(Error(r), "BAD_REQUEST");
  EXPECT_EQ(std::string(Body(r).at("errorMessage").as_string()).rfind("event", 0), 0u);
}

TEST_F(ApiHandlerTest, WebhookCapIs422) {
  backend_.FailNext("CreateWebhook",
                    absl::ResourceExhaustedError("this connection already has 100 webhooks"));
  HandlerResult r = Call(http::verb::post, "/octo/webhooks", kValidBody);
  EXPECT_EQ(r.response.result(), http::status::unprocessable_entity);
  EXPECT_EQ(Error(r), "UNPROCESSABLE_ENTITY");
  EXPECT_EQ(Body(r).at("errorMessage").as_string(), "this connection already has 100 webhooks");
}

TEST_F(ApiHandlerTest, InternalErrorsDoNotLeak) {
  backend_.FailNext("GetWebhook", absl::InternalError("pq: deadlock detected in webhooks_pkey"));
  HandlerResult r = Call(http::verb::get, std::string("/octo/webhooks/") + kMissingId);
  EXPECT_EQ(r.response.result(), http::status::internal_server_error);
  EXPECT_EQ(Error(r), "INTERNAL_SERVER_ERROR");
  EXPECT_EQ(r.response.body().find("pq"), std::string::npos);
}

TEST_F(ApiHandlerTest, ListPagesThroughEverything) {
  backend_.SetPageSize(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(CreateWebhook());
  // Another connection's webhook is not listed.
  Call(http::verb::post, "/octo/webhooks", kValidBody, kOtherKey);

  for (const char* target : {"/octo/webhooks", "/octo/webhooks/"}) {
    HandlerResult r = Call(http::verb::get, target);
    ASSERT_EQ(r.response.result(), http::status::ok);
    const json::array list = Body(r).as_array();
    ASSERT_EQ(list.size(), 5u);
    for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(list[i].at("id").as_string(), ids[i]);
  }
}

TEST_F(ApiHandlerTest, ListOfNothingIsAnEmptyArray) {
  HandlerResult r = Call(http::verb::get, "/octo/webhooks");
  EXPECT_EQ(r.response.result(), http::status::ok);
  EXPECT_EQ(r.response.body(), "[]");
}

TEST_F(ApiHandlerTest, GetUpdateDeleteCycle) {
  const std::string id = CreateWebhook();
  const std::string path = "/octo/webhooks/" + id;

  HandlerResult r = Call(http::verb::get, path + "/");
  ASSERT_EQ(r.response.result(), http::status::ok);
  EXPECT_EQ(Body(r).at("id").as_string(), id);
  EXPECT_EQ(r.route, "/octo/webhooks/:id");

  r = Call(http::verb::patch, path,
           R"({"event":"order_update","headers":{},"useContactLanguage":false})");
  ASSERT_EQ(r.response.result(), http::status::ok) << r.response.body();
  EXPECT_EQ(Body(r).at("event").as_string(), "order_update");
  EXPECT_EQ(Body(r).at("useContactLanguage").as_bool(), false);
  const auto sent = backend_.last_update();
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->webhook_id(), id);
  EXPECT_EQ(sent->connection_id(), kConnection);
  EXPECT_FALSE(sent->has_url());
  EXPECT_TRUE(sent->has_headers());

  r = Call(http::verb::delete_, path);
  ASSERT_EQ(r.response.result(), http::status::ok);
  EXPECT_EQ(Body(r).at("id").as_string(), id);

  r = Call(http::verb::get, path);
  EXPECT_EQ(r.response.result(), http::status::bad_request);
  EXPECT_EQ(Error(r), "INVALID_WEBHOOK_ID");
  EXPECT_EQ(Body(r).at("webhookId").as_string(), id);
}

TEST_F(ApiHandlerTest, AnotherConnectionsWebhookLooksMissing) {
  const std::string id = CreateWebhook();
  for (http::verb method : {http::verb::get, http::verb::delete_}) {
    HandlerResult theirs = Call(method, "/octo/webhooks/" + id, "", kOtherKey);
    HandlerResult missing =
        Call(method, std::string("/octo/webhooks/") + kMissingId, "", kOtherKey);
    EXPECT_EQ(theirs.response.result(), http::status::bad_request);
    EXPECT_EQ(Error(theirs), "INVALID_WEBHOOK_ID");
    EXPECT_EQ(Error(missing), "INVALID_WEBHOOK_ID");
  }
  HandlerResult r =
      Call(http::verb::patch, "/octo/webhooks/" + id, R"({"event":"order_update"})", kOtherKey);
  EXPECT_EQ(Error(r), "INVALID_WEBHOOK_ID");
}

TEST_F(ApiHandlerTest, NonUuidIdIsInvalidWithoutAServiceCall) {
  HandlerResult r = Call(http::verb::get, "/octo/webhooks/webhook-001");
  EXPECT_EQ(r.response.result(), http::status::bad_request);
  EXPECT_EQ(Error(r), "INVALID_WEBHOOK_ID");
  EXPECT_EQ(Body(r).at("webhookId").as_string(), "webhook-001");
  EXPECT_EQ(Call(http::verb::delete_, "/octo/webhooks/x").response.result(),
            http::status::bad_request);
  EXPECT_EQ(backend_.calls("GetWebhook") + backend_.calls("DeleteWebhook"), 0);
}

TEST_F(ApiHandlerTest, PatchChecksContentTypeAndBody) {
  const std::string path = "/octo/webhooks/" + CreateWebhook();
  EXPECT_EQ(Call(http::verb::patch, path, R"({"event":"order_update"})", kKey, "text/plain")
                .response.result(),
            http::status::unsupported_media_type);
  EXPECT_EQ(Call(http::verb::patch, path, R"({"retryOnError":"no"})").response.result(),
            http::status::bad_request);
  EXPECT_EQ(Call(http::verb::patch, path, R"({"secret":"x"})").response.result(),
            http::status::bad_request);
  EXPECT_EQ(backend_.calls("UpdateWebhook"), 0);
}

TEST_F(ApiHandlerTest, EveryResponseEchoesCapabilities) {
  extra_headers_ = {{"Octo-Capabilities", "octo/pricing"}};
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks").response["Octo-Capabilities"], "octo/pricing");
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks", "", nullptr).response["Octo-Capabilities"],
            "octo/pricing");
  EXPECT_EQ(Call(http::verb::get, "/nowhere").response["Octo-Capabilities"], "octo/pricing");
  EXPECT_EQ(Call(http::verb::get, "/healthz").response["Octo-Capabilities"], "octo/pricing");
  extra_headers_.clear();
  HandlerResult r = Call(http::verb::get, "/octo/webhooks");
  EXPECT_EQ(r.response.count("Octo-Capabilities"), 1u);
  EXPECT_EQ(r.response["Octo-Capabilities"], "");
}

TEST_F(ApiHandlerTest, DeadlineFollowsTheRequestTimeout) {
  const auto before = std::chrono::system_clock::now();
  Call(http::verb::get, "/octo/webhooks");
  const auto deadline = backend_.last_deadline();
  EXPECT_GE(deadline, before + std::chrono::milliseconds(1234));
  EXPECT_LE(deadline, std::chrono::system_clock::now() + std::chrono::milliseconds(1234));
}

TEST_F(ApiHandlerTest, KeepAliveFollowsTheRequest) {
  HttpRequest request(http::verb::get, "/healthz", 11);
  request.keep_alive(false);
  EXPECT_FALSE(Call(std::move(request)).response.keep_alive());
  HttpRequest http10(http::verb::get, "/healthz", 10);
  EXPECT_FALSE(Call(std::move(http10)).response.keep_alive());
  EXPECT_TRUE(Call(HttpRequest(http::verb::get, "/healthz", 11)).response.keep_alive());
}

}  // namespace
}  // namespace octo::gateway
