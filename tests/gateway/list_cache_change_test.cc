// The partner's cached webhook list (list_cache.h) and the changes made
// through the other doors of the same gateway: the operators' dashboard
// (/dashboard/api/..., its own gRPC stubs) and the notifications routes.
// The gateway is wired as main.cc wires it (HttpServer -> DashboardHandler ->
// ApiHandler -> CachingBackend -> GrpcSubscriptionBackend), on 127.0.0.1,
// over a fake subscription service (a real gRPC server). The cache's TTL is
// a minute here, so a list that is not dropped is certainly served stale.
#include <memory>
#include <optional>
#include <string>

#include <boost/json/parse.hpp>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "gateway/api_handler.h"
#include "gateway/auth_cache.h"
#include "gateway/caching_backend.h"
#include "gateway/dashboard_handler.h"
#include "gateway/grpc_backend.h"
#include "gateway/http_server.h"
#include "gateway/list_cache.h"
#include "octo/webhooks/v1/operators.grpc.pb.h"
#include "tests/gateway/fake_grpc_server.h"
#include "tests/gateway/fake_subscription_backend.h"
#include "tests/gateway/http_test_client.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace v1 = octo::webhooks::v1;
using namespace std::chrono_literals;
using testing::FakeGrpcServer;
using testing::FakeSubscriptionBackend;
using testing::TestConnection;
using testing::TestRequest;
using testing::TestResponse;

constexpr const char* kKey = "octo_key_a";
constexpr const char* kConnection = "c0000000-0000-4000-8000-00000000000a";
constexpr const char* kSupplier = "50000000-0000-4000-8000-000000000001";
constexpr const char* kSessionToken = "ops_session";
constexpr const char* kCsrfToken = "csrf-token";
constexpr const char* kWebhookBody =
    R"({"url":"https://example.com/partner","event":"booking_update"})";

// OperatorService for one operator of one supplier with one connection,
// whose webhooks are the fake subscription service's.
class FakeOperators final : public v1::OperatorService::Service {
 public:
  explicit FakeOperators(FakeSubscriptionBackend* backend) : backend_(backend) {}

  grpc::Status AuthenticateSession(grpc::ServerContext*, const v1::SessionRequest* request,
                                   v1::OperatorSession* out) override {
    if (request->token() != kSessionToken)
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown session");
    out->set_token(kSessionToken);
    out->set_csrf_token(kCsrfToken);
    out->mutable_operator_()->set_supplier_id(kSupplier);
    out->mutable_operator_()->set_name("ops");
    return grpc::Status::OK;
  }

  grpc::Status ListSupplierConnections(grpc::ServerContext*,
                                       const v1::ListSupplierConnectionsRequest*,
                                       v1::ListSupplierConnectionsResponse* out) override {
    out->add_connections()->mutable_connection()->set_id(kConnection);
    return grpc::Status::OK;
  }

  grpc::Status GetSupplierWebhook(grpc::ServerContext*, const v1::GetSupplierWebhookRequest* request,
                                  v1::SupplierWebhook* out) override {
    v1::GetWebhookRequest get;
    get.set_connection_id(kConnection);
    get.set_webhook_id(request->webhook_id());
    grpc::Status status = grpc::Status(grpc::StatusCode::NOT_FOUND, "no such webhook");
    backend_->GetWebhook(get, std::chrono::system_clock::now() + 5s,
                         [&](absl::StatusOr<v1::Webhook> r) {
                           if (!r.ok()) return;
                           *out->mutable_webhook() = *std::move(r);
                           status = grpc::Status::OK;
                         });
    return status;
  }

 private:
  FakeSubscriptionBackend* const backend_;
};

class ListCacheChangeTest : public ::testing::Test {
 protected:
  ListCacheChangeTest()
      : operators_(&backend_),
        service_(&backend_, &operators_),
        channel_(grpc::CreateChannel(service_.target(), grpc::InsecureChannelCredentials())),
        grpc_backend_(channel_),
        auth_({.ttl = 60s, .negative_ttl = 60s}),
        lists_({.ttl = 60s}),
        caching_(&grpc_backend_, &auth_, &lists_, nullptr),
        api_(ApiOptions(), &caching_),
        dashboard_(DashboardOptions(), &api_, channel_),
        server_(ServerOptions(), &dashboard_) {
    backend_.AddKey(kKey, kConnection);
    EXPECT_TRUE(server_.Start().ok());
  }

  ~ListCacheChangeTest() override {
    server_.Stop(0ms);
    dashboard_.Stop();
    grpc_backend_.Shutdown();
  }

  ApiHandler::Options ApiOptions() {
    ApiHandler::Options options;
    options.list_cache = &lists_;
    return options;
  }
  DashboardHandler::Options DashboardOptions() {
    DashboardHandler::Options options;
    options.api.list_cache = &lists_;
    options.threads = 1;
    return options;
  }
  static HttpServer::Options ServerOptions() {
    HttpServer::Options options;
    options.port = 0;
    options.threads = 1;
    return options;
  }

  TestResponse RoundTrip(TestRequest request) {
    TestConnection connection(server_.port());
    std::optional<TestResponse> response = connection.RoundTrip(std::move(request));
    EXPECT_TRUE(response.has_value());
    return response.value_or(TestResponse{});
  }

  // A partner's request with the API key.
  TestResponse Partner(http::verb method, const std::string& target, const std::string& body = "") {
    TestRequest request(method, target, 11);
    request.set(http::field::authorization, std::string("Bearer ") + kKey);
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = body;
    return RoundTrip(std::move(request));
  }

  // An operator's request to the dashboard's API, with session and CSRF token.
  TestResponse Operator(http::verb method, const std::string& path, const std::string& body = "") {
    TestRequest request(method, "/dashboard/api/" + path, 11);
    request.set(http::field::cookie, std::string("octo_dashboard_session=") + kSessionToken);
    request.set("X-CSRF-Token", kCsrfToken);
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = body;
    return RoundTrip(std::move(request));
  }

  // The partner's list, twice: the second from the cache.
  std::string CachedList() {
    const TestResponse first = Partner(http::verb::get, "/octo/webhooks");
    EXPECT_EQ(first.result_int(), 200) << first.body();
    const int fetched = backend_.calls("ListWebhooks");
    EXPECT_EQ(Partner(http::verb::get, "/octo/webhooks").body(), first.body());
    EXPECT_EQ(backend_.calls("ListWebhooks"), fetched) << "the second list came from the cache";
    return first.body();
  }

  std::string CreateWebhook() {
    const TestResponse created = Partner(http::verb::post, "/octo/webhooks", kWebhookBody);
    EXPECT_EQ(created.result_int(), 200) << created.body();
    return std::string(json::parse(created.body()).at("id").as_string());
  }

  FakeSubscriptionBackend backend_;
  FakeOperators operators_;
  FakeGrpcServer service_;
  std::shared_ptr<grpc::Channel> channel_;
  GrpcSubscriptionBackend grpc_backend_;
  AuthCache auth_;
  ListCache lists_;
  CachingBackend caching_;
  ApiHandler api_;
  DashboardHandler dashboard_;
  HttpServer server_;
};

TEST_F(ListCacheChangeTest, ADashboardCreateShowsInThePartnersNextList) {
  EXPECT_EQ(CachedList(), "[]");
  const TestResponse created = Operator(
      http::verb::post, "webhooks",
      absl::StrCat(R"({"connectionId":")", kConnection,
                   R"(","url":"https://example.com/from-dashboard","event":"booking_update"})"));
  ASSERT_EQ(created.result_int(), 201) << created.body();
  const TestResponse listed = Partner(http::verb::get, "/octo/webhooks");
  EXPECT_NE(listed.body().find("example.com/from-dashboard"), std::string::npos) << listed.body();
}

TEST_F(ListCacheChangeTest, ADashboardUpdateShowsInThePartnersNextList) {
  const std::string id = CreateWebhook();
  EXPECT_NE(CachedList().find("example.com/partner"), std::string::npos);
  const TestResponse updated =
      Operator(http::verb::patch, "webhooks/" + id, R"({"url":"https://example.com/changed"})");
  ASSERT_EQ(updated.result_int(), 200) << updated.body();
  const TestResponse listed = Partner(http::verb::get, "/octo/webhooks");
  EXPECT_NE(listed.body().find("example.com/changed"), std::string::npos) << listed.body();
}

TEST_F(ListCacheChangeTest, ADashboardDeleteShowsInThePartnersNextList) {
  const std::string id = CreateWebhook();
  EXPECT_NE(CachedList(), "[]");
  ASSERT_EQ(Operator(http::verb::delete_, "webhooks/" + id).result_int(), 200);
  EXPECT_EQ(Partner(http::verb::get, "/octo/webhooks").body(), "[]");
}

TEST_F(ListCacheChangeTest, ADashboardEnableShowsInThePartnersNextList) {
  const std::string id = CreateWebhook();
  backend_.Disable(id, "failing for 5 days");  // as octo-delivery would
  EXPECT_NE(CachedList().find(R"("status":"disabled")"), std::string::npos);
  const TestResponse enabled = Operator(http::verb::post, "webhooks/" + id + "/enable");
  ASSERT_EQ(enabled.result_int(), 200) << enabled.body();
  const TestResponse listed = Partner(http::verb::get, "/octo/webhooks");
  EXPECT_NE(listed.body().find(R"("status":"enabled")"), std::string::npos) << listed.body();
}

TEST_F(ListCacheChangeTest, ADashboardSecretRotationShowsInThePartnersNextList) {
  const std::string id = CreateWebhook();
  EXPECT_EQ(CachedList().find("previousSecretExpiresAt"), std::string::npos);
  const TestResponse rotated = Operator(http::verb::post, "webhooks/" + id + "/rotate-secret");
  ASSERT_EQ(rotated.result_int(), 200) << rotated.body();
  const TestResponse listed = Partner(http::verb::get, "/octo/webhooks");
  EXPECT_NE(listed.body().find("previousSecretExpiresAt"), std::string::npos) << listed.body();
}

// A refused change drops the list too (a timed-out one may have committed);
// reads through the dashboard keep it.
TEST_F(ListCacheChangeTest, DashboardReadsKeepTheListAndFailedChangesDropIt) {
  const std::string id = CreateWebhook();
  CachedList();
  int fetched = backend_.calls("ListWebhooks");
  ASSERT_EQ(Operator(http::verb::get, "webhooks/" + id).result_int(), 200);
  Partner(http::verb::get, "/octo/webhooks");
  EXPECT_EQ(backend_.calls("ListWebhooks"), fetched);
  backend_.FailNext("UpdateWebhook", absl::DeadlineExceededError("slow"));
  EXPECT_EQ(Operator(http::verb::patch, "webhooks/" + id, R"({"url":"https://example.com/x"})")
                .result_int(),
            503);
  Partner(http::verb::get, "/octo/webhooks");
  EXPECT_EQ(backend_.calls("ListWebhooks"), fetched + 1);
}

// The dashboard's body checks on a request without Content-Type (Beast
// answers a missing header with a null view): once a crash of the worker.
TEST_F(ListCacheChangeTest, DashboardRequestsWithoutContentTypeAreAnsweredNotCrashed) {
  const std::string id = CreateWebhook();
  TestRequest login(http::verb::post, "/dashboard/api/login", 11);
  login.body() = R"({"name":"ops","password":"x"})";
  EXPECT_EQ(RoundTrip(std::move(login)).result_int(), 415);
  EXPECT_EQ(Operator(http::verb::post, "webhooks", R"({"connectionId":"x"})").result_int(), 400)
      << "declared JSON: parsed";
  TestRequest create(http::verb::post, "/dashboard/api/webhooks", 11);
  create.set(http::field::cookie, std::string("octo_dashboard_session=") + kSessionToken);
  create.set("X-CSRF-Token", kCsrfToken);
  create.body() = R"({"connectionId":"x"})";
  EXPECT_EQ(RoundTrip(std::move(create)).result_int(), 415);
  EXPECT_EQ(Operator(http::verb::post, "webhooks/" + id + "/enable").result_int(), 200)
      << "no body and no Content-Type: as it should be";
}

// The notifications routes change the same rows through the same backend.
TEST_F(ListCacheChangeTest, NotificationChangesShowInThePartnersNextList) {
  CachedList();
  const TestResponse created =
      Partner(http::verb::post, "/octo/notifications/subscriptions",
              R"({"url":"https://example.com/subscribed","notificationType":"BOOKING_UPDATE"})");
  ASSERT_EQ(created.result_int(), 201) << created.body();
  const std::string id(json::parse(created.body()).at("id").as_string());
  // The fake serves every dialect in one list, which makes the change visible.
  EXPECT_NE(Partner(http::verb::get, "/octo/webhooks").body().find("example.com/subscribed"),
            std::string::npos);
  CachedList();
  ASSERT_EQ(Partner(http::verb::patch, "/octo/notifications/subscriptions/" + id,
                    R"({"url":"https://example.com/resubscribed"})")
                .result_int(),
            200);
  EXPECT_NE(Partner(http::verb::get, "/octo/webhooks").body().find("example.com/resubscribed"),
            std::string::npos);
  CachedList();
  ASSERT_EQ(Partner(http::verb::delete_, "/octo/notifications/subscriptions/" + id).result_int(),
            200);
  EXPECT_EQ(Partner(http::verb::get, "/octo/webhooks").body(), "[]");
}

}  // namespace
}  // namespace octo::gateway
