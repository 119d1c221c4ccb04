// The gateway over real gRPC: HttpServer + ApiHandler + GrpcSubscriptionBackend
// against an in-process gRPC server backed by the in-memory fake.
#include "gateway/grpc_backend.h"

#include <future>

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "gateway/api_handler.h"
#include "gateway/http_server.h"
#include "tests/gateway/fake_grpc_server.h"
#include "tests/gateway/http_test_client.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace v1 = octo::webhooks::v1;
namespace health = grpc::health::v1;
using testing::FakeGrpcServer;
using testing::FakeSubscriptionBackend;
using testing::Get;
using testing::TestConnection;
using testing::TestRequest;
using testing::TestResponse;

constexpr const char* kKey = "octo_key_a";
constexpr const char* kOtherKey = "octo_key_b";

class GrpcBackendTest : public ::testing::Test {
 protected:
  GrpcBackendTest() : grpc_server_(&fake_) {
    fake_.AddKey(kKey, "c0000000-0000-4000-8000-00000000000a");
    fake_.AddKey(kOtherKey, "c0000000-0000-4000-8000-00000000000b");
    fake_.SetHealth(kOverallHealthService, health::HealthCheckResponse::SERVING);
    fake_.SetHealth(kPostgresHealthService, health::HealthCheckResponse::SERVING);
    backend_ =
        std::make_unique<GrpcSubscriptionBackend>(MakeSubscriptionChannel(grpc_server_.target()));
  }

  void StartHttp(std::chrono::milliseconds request_timeout = std::chrono::milliseconds(5000)) {
    ApiHandler::Options api;
    api.base_path = "/octo";
    api.request_timeout = request_timeout;
    handler_ = std::make_unique<ApiHandler>(api, backend_.get());
    HttpServer::Options options;
    options.port = 0;
    server_ = std::make_unique<HttpServer>(options, handler_.get());
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    if (server_) server_->Stop(std::chrono::seconds(1));
    backend_->Shutdown();
  }

  std::optional<TestResponse> Call(http::verb method, const std::string& target,
                                   const std::string& body = "", const char* key = kKey) {
    TestRequest request(method, target, 11);
    if (key != nullptr) request.set(http::field::authorization, std::string("Bearer ") + key);
    request.set("Octo-Capabilities", "octo/pricing");
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = body;
    return connection_->RoundTrip(std::move(request));
  }

  void Connect() { connection_ = std::make_unique<TestConnection>(server_->port()); }

  FakeSubscriptionBackend fake_;
  FakeGrpcServer grpc_server_;
  std::unique_ptr<GrpcSubscriptionBackend> backend_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<TestConnection> connection_;
};

TEST_F(GrpcBackendTest, CallsCompleteWithResultsAndStatuses) {
  std::promise<absl::StatusOr<v1::AuthenticateResponse>> good, bad;
  v1::AuthenticateRequest request;
  request.set_api_key(kKey);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  backend_->Authenticate(request, deadline, [&](auto r) { good.set_value(std::move(r)); });
  request.set_api_key("octo_unknown");
  backend_->Authenticate(request, deadline, [&](auto r) { bad.set_value(std::move(r)); });
  const auto ok = good.get_future().get();
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->connection_id(), "c0000000-0000-4000-8000-00000000000a");
  EXPECT_EQ(bad.get_future().get().status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(GrpcBackendTest, DeadlineExceeded) {
  grpc_server_.SetDelay(std::chrono::milliseconds(500));
  std::promise<absl::Status> done;
  backend_->Authenticate(v1::AuthenticateRequest(),
                         std::chrono::system_clock::now() + std::chrono::milliseconds(50),
                         [&](auto r) { done.set_value(r.status()); });
  EXPECT_EQ(done.get_future().get().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(GrpcBackendTest, ShutdownCancelsCallsInFlightAndRefusesNewOnes) {
  grpc_server_.SetDelay(std::chrono::milliseconds(1500));
  std::promise<absl::Status> done;
  backend_->Authenticate(v1::AuthenticateRequest(),
                         std::chrono::system_clock::now() + std::chrono::seconds(30),
                         [&](auto r) { done.set_value(r.status()); });
  const auto start = std::chrono::steady_clock::now();
  backend_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  auto future = done.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(future.get().code(), absl::StatusCode::kCancelled);

  std::promise<absl::Status> later;
  backend_->Authenticate(v1::AuthenticateRequest(),
                         std::chrono::system_clock::now() + std::chrono::seconds(1),
                         [&](auto r) { later.set_value(r.status()); });
  EXPECT_EQ(later.get_future().get().code(), absl::StatusCode::kUnavailable);
}

TEST_F(GrpcBackendTest, ReadyzOverGrpc) {
  StartHttp();
  auto r = Get(server_->port(), "/readyz");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::ok);
  EXPECT_EQ(json::parse(r->body()).at("status").as_string(), "ready");

  fake_.SetHealth(kPostgresHealthService, health::HealthCheckResponse::NOT_SERVING);
  r = Get(server_->port(), "/readyz");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::service_unavailable);
  EXPECT_EQ(json::parse(r->body()).at("checks").at("postgres").as_string(), "NOT_SERVING");
}

TEST_F(GrpcBackendTest, FullWebhookCycleOverHttpAndGrpc) {
  StartHttp();
  Connect();
  auto r = Call(
      http::verb::post, "/octo/webhooks",
      R"({"url":"https://user:pw@example.com/h","event":"booking_update","headers":{"X-K":"v"}})");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->result(), http::status::ok) << r->body();
  EXPECT_EQ((*r)["Octo-Capabilities"], "octo/pricing");
  json::value created = json::parse(r->body());
  const std::string id(created.at("id").as_string());
  EXPECT_EQ(created.at("url").as_string(), "https://user:***@example.com/h");
  EXPECT_EQ(created.at("headers").at("X-K").as_string(), "***");
  EXPECT_EQ(created.at("capabilities").at(0).as_string(), "octo/pricing");
  EXPECT_TRUE(created.as_object().contains("secret"));

  r = Call(http::verb::get, "/octo/webhooks");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->result(), http::status::ok);
  EXPECT_EQ(json::parse(r->body()).as_array().size(), 1u);

  r = Call(http::verb::patch, "/octo/webhooks/" + id + "/", R"({"retryOnError":false})");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->result(), http::status::ok) << r->body();
  EXPECT_FALSE(json::parse(r->body()).at("retryOnError").as_bool());

  // Another connection sees nothing.
  r = Call(http::verb::get, "/octo/webhooks/" + id, "", kOtherKey);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::bad_request);
  EXPECT_EQ(json::parse(r->body()).at("error").as_string(), "INVALID_WEBHOOK_ID");

  r = Call(http::verb::delete_, "/octo/webhooks/" + id);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->result(), http::status::ok);
  EXPECT_EQ(json::parse(r->body()).at("id").as_string(), id);

  r = Call(http::verb::delete_, "/octo/webhooks/" + id);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::bad_request);
  EXPECT_EQ(json::parse(r->body()).at("webhookId").as_string(), id);

  r = Call(http::verb::get, "/octo/webhooks", "", "octo_wrong");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::unauthorized);
}

TEST_F(GrpcBackendTest, SlowServiceIs503AfterTheRequestTimeout) {
  StartHttp(std::chrono::milliseconds(200));
  Connect();
  grpc_server_.SetDelay(std::chrono::milliseconds(1000));
  const auto start = std::chrono::steady_clock::now();
  auto r = Call(http::verb::get, "/octo/webhooks");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::service_unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
  // While one connection waits on the service, others are served.
  EXPECT_TRUE(Get(server_->port(), "/healthz").has_value());
}

TEST_F(GrpcBackendTest, IoThreadsDoNotWaitOnTheService) {
  StartHttp(std::chrono::milliseconds(3000));
  grpc_server_.SetDelay(std::chrono::milliseconds(800));
  // More slow requests in flight than there are I/O threads (2)...
  std::vector<std::unique_ptr<TestConnection>> slow;
  for (int i = 0; i < 6; ++i) {
    slow.push_back(std::make_unique<TestConnection>(server_->port()));
    TestRequest request(http::verb::get, "/octo/webhooks", 11);
    request.set(http::field::authorization, std::string("Bearer ") + kKey);
    ASSERT_TRUE(slow.back()->Send(std::move(request)));
  }
  // ...and /healthz still answers at once.
  const auto start = std::chrono::steady_clock::now();
  auto r = Get(server_->port(), "/healthz");
  ASSERT_TRUE(r.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
  for (auto& connection : slow) {
    auto answer = connection->Read();
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->result(), http::status::ok);
  }
}

}  // namespace
}  // namespace octo::gateway
