// The real gateway server (HttpServer + ApiHandler + GrpcSubscriptionBackend)
// on 127.0.0.1:0, pointed at a subscription target where nothing listens:
// everything that does not need the service, and everything a hostile client
// can send.
#include "gateway/http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <thread>

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "gateway/api_handler.h"
#include "gateway/grpc_backend.h"
#include "tests/gateway/http_test_client.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using testing::Get;
using testing::TestConnection;
using testing::TestRequest;
using testing::TestResponse;

// Port 1 on loopback: nothing listens there, connecting fails at once.
constexpr const char* kUnreachableTarget = "127.0.0.1:1";

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.host = "127.0.0.1";
    options_.port = 0;
    options_.threads = 2;
    options_.max_body_bytes = 1024;
    options_.max_header_bytes = 4096;
  }

  void Start() {
    backend_ =
        std::make_unique<GrpcSubscriptionBackend>(MakeSubscriptionChannel(kUnreachableTarget));
    ApiHandler::Options api;
    api.request_timeout = std::chrono::milliseconds(2000);
    api.readiness_timeout = std::chrono::milliseconds(1000);
    handler_ = std::make_unique<ApiHandler>(api, backend_.get());
    server_ = std::make_unique<HttpServer>(options_, handler_.get());
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
    ASSERT_GT(port_, 0);
  }

  void TearDown() override {
    if (server_) server_->Stop(std::chrono::seconds(1));
    if (backend_) backend_->Shutdown();
  }

  // The server still answers on a fresh connection.
  void ExpectAlive() {
    const auto r = Get(port_, "/healthz");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->result(), http::status::ok);
  }

  static std::string ErrorCode(const TestResponse& r) {
    EXPECT_EQ(r[http::field::content_type], "application/json");
    boost::system::error_code ec;
    const json::value body = json::parse(r.body(), ec);
    EXPECT_FALSE(ec) << r.body();
    if (ec || !body.is_object() || !body.as_object().contains("error")) return "";
    EXPECT_TRUE(body.as_object().contains("errorMessage"));
    return std::string(body.at("error").as_string());
  }

  HttpServer::Options options_;
  std::unique_ptr<GrpcSubscriptionBackend> backend_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(HttpServerTest, HealthzIsUpWhileReadyzIsNot) {
  Start();
  auto r = Get(port_, "/healthz");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::ok);
  EXPECT_EQ(r->body(), R"({"status":"ok"})");

  r = Get(port_, "/readyz");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::service_unavailable);
  const json::value body = json::parse(r->body());
  EXPECT_EQ(body.at("status").as_string(), "unready");
  EXPECT_EQ(body.at("checks").at("subscription").as_string(), "UNAVAILABLE");
}

TEST_F(HttpServerTest, WebhookRoutesNeedAKey) {
  Start();
  TestConnection c(port_);
  TestRequest request(http::verb::post, "/octo/webhooks", 11);
  request.set(http::field::content_type, "application/json");
  request.body() = R"({"url":"https://example.com","event":"booking_update"})";
  auto r = c.RoundTrip(request);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::unauthorized);
  EXPECT_EQ(ErrorCode(*r), "UNAUTHORIZED");
}

TEST_F(HttpServerTest, AKeyWithTheServiceDownIs503) {
  Start();
  TestConnection c(port_);
  TestRequest request(http::verb::get, "/octo/webhooks", 11);
  request.set(http::field::authorization, "Bearer octo_whatever");
  request.set("Octo-Capabilities", "octo/pricing");
  auto r = c.RoundTrip(request);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::service_unavailable);
  EXPECT_EQ(ErrorCode(*r), "INTERNAL_SERVER_ERROR");
  EXPECT_EQ((*r)["Octo-Capabilities"], "octo/pricing");
}

TEST_F(HttpServerTest, UnknownRouteIs404AndWrongMethodIs405) {
  Start();
  TestConnection c(port_);
  auto r = c.RoundTrip(TestRequest(http::verb::get, "/nope", 11));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::not_found);
  EXPECT_EQ(ErrorCode(*r), "BAD_REQUEST");

  r = c.RoundTrip(TestRequest(http::verb::delete_, "/octo/webhooks", 11));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::method_not_allowed);
  EXPECT_EQ((*r)[http::field::allow], "GET, POST");

  // An unknown method token is a 405 on a known path, not a parse error.
  ASSERT_TRUE(c.Send("BREW /octo/webhooks HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::method_not_allowed);
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Start();
  TestConnection c(port_);
  for (int i = 0; i < 20; ++i) {
    auto r = c.RoundTrip(TestRequest(http::verb::get, i % 2 ? "/healthz" : "/nope", 11));
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_TRUE(r->keep_alive());
  }
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  TestConnection c(port_);
  ASSERT_TRUE(
      c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
             "DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const http::status expected[] = {http::status::ok, http::status::not_found,
                                   http::status::method_not_allowed,
                                   http::status::service_unavailable};
  for (http::status status : expected) {
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->result(), status);
  }
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(HttpServerTest, Http10ClosesAfterTheAnswer) {
  Start();
  TestConnection c(port_);
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.0\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::ok);
  EXPECT_TRUE(c.WaitForClose());
}

TEST_F(HttpServerTest, OversizedBodyByContentLengthIs413) {
  Start();
  TestConnection c(port_);
  // Announce more than allowed, send only part of it: the answer must not
  // wait for the rest.
  ASSERT_TRUE(
      c.Send("POST /octo/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Octo-Capabilities: octo/pricing\r\nContent-Length: 100000\r\n\r\n" +
             std::string(500, 'a')));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::payload_too_large);
  EXPECT_EQ(ErrorCode(*r), "BAD_REQUEST");
  EXPECT_FALSE(r->keep_alive());
  EXPECT_EQ((*r)["Octo-Capabilities"], "octo/pricing");
  EXPECT_TRUE(c.WaitForClose());
  ExpectAlive();
}

TEST_F(HttpServerTest, OversizedChunkedBodyIs413) {
  Start();
  TestConnection c(port_);
  std::string request =
      "POST /octo/webhooks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) request += "200\r\n" + std::string(512, 'a') + "\r\n";
  ASSERT_TRUE(c.Send(request));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::payload_too_large);
  EXPECT_TRUE(c.WaitForClose());
  ExpectAlive();
}

TEST_F(HttpServerTest, BodyAtTheLimitIsRead) {
  Start();
  TestConnection c(port_);
  TestRequest request(http::verb::post, "/healthz", 11);
  request.body() = std::string(1024, 'a');
  auto r = c.RoundTrip(request);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::method_not_allowed);
  EXPECT_TRUE(r->keep_alive());
}

TEST_F(HttpServerTest, HugeHeaderIs431) {
  Start();
  TestConnection c(port_);
  ASSERT_TRUE(
      c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'b') + "\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::request_header_fields_too_large);
  EXPECT_EQ(ErrorCode(*r), "BAD_REQUEST");
  EXPECT_TRUE(c.WaitForClose());
  ExpectAlive();
}

TEST_F(HttpServerTest, GarbageIs400AndTheServerSurvives) {
  Start();
  {
    TestConnection c(port_);
    ASSERT_TRUE(
        c.Send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 22)));
    auto r = c.Read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->result(), http::status::bad_request);
    EXPECT_EQ(ErrorCode(*r), "BAD_REQUEST");
    EXPECT_TRUE(c.WaitForClose());
  }
  for (const char* bad :
       {"GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST /octo/webhooks HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST /octo/webhooks HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST /octo/webhooks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    TestConnection c(port_);
    ASSERT_TRUE(c.Send(bad));
    auto r = c.Read();
    ASSERT_TRUE(r.has_value()) << bad;
    EXPECT_EQ(r->result(), http::status::bad_request) << bad;
  }
  std::mt19937 random(42);
  for (int i = 0; i < 50; ++i) {
    std::string noise(1 + random() % 3000, '\0');
    for (char& ch : noise) ch = static_cast<char>(random());
    TestConnection c(port_);
    c.Send(noise);
    c.WaitForClose(std::chrono::milliseconds(200));
  }
  ExpectAlive();
}

TEST_F(HttpServerTest, HalfRequestsAndAbruptClosesAreHarmless) {
  Start();
  for (const char* partial : {"GET /heal", "GET /healthz HTTP/1.1\r\nHost: x\r\n",
                              "POST /octo/webhooks HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"u"}) {
    TestConnection c(port_);
    ASSERT_TRUE(c.Send(partial));
    c.Close();
  }
  // Close while the backend call is in flight.
  {
    TestConnection c(port_);
    ASSERT_TRUE(c.Send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"));
    c.Close();
  }
  ExpectAlive();
}

// A client trickling a byte every 200 ms is closed at the deadline, however
// long it would go on: trickled to twice the deadline, it must be closed by
// the deadline plus `kSlack` (below the trickling's end, so an idle timer,
// which trickling keeps resetting, fails this).
constexpr auto kTrickleInterval = std::chrono::milliseconds(200);
constexpr auto kSlack = std::chrono::milliseconds(700);

TEST_F(HttpServerTest, SlowClientsAreCutOffAtTheHeaderTimeout) {
  constexpr auto kDeadline = std::chrono::milliseconds(1000);
  options_.header_timeout = kDeadline;
  Start();
  const int slow = testing::ConnectFrom("127.0.0.1", port_);
  ASSERT_GE(slow, 0);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(send(slow, "GET /healthz HTTP/1.1\r\n", 23, MSG_NOSIGNAL), 23);
  const auto closed =
      testing::TrickleUntil({slow}, "X-A: 1\r\n", kTrickleInterval, start + 2 * kDeadline);
  close(slow);
  ASSERT_TRUE(closed[0].has_value()) << "still open at twice the header deadline";
  EXPECT_GE(*closed[0] - start, kDeadline - std::chrono::milliseconds(50));
  EXPECT_LE(*closed[0] - start, kDeadline + kSlack);

  // An idle keep-alive connection is closed after the same time.
  TestConnection idle(port_);
  ASSERT_TRUE(idle.RoundTrip(TestRequest(http::verb::get, "/healthz", 11)).has_value());
  EXPECT_TRUE(idle.WaitForClose(std::chrono::seconds(3)));
  ExpectAlive();
}

TEST_F(HttpServerTest, SlowBodiesAreCutOffAtTheReadTimeout) {
  constexpr auto kDeadline = std::chrono::milliseconds(1000);
  options_.read_timeout = kDeadline;
  Start();
  const int slow = testing::ConnectFrom("127.0.0.1", port_);
  ASSERT_GE(slow, 0);
  const std::string header =
      "POST /octo/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 1000\r\n\r\n";
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(send(slow, header.data(), header.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(header.size()));
  // 1 byte per 200 ms: the 1,000 bytes would take 200 s.
  const auto closed = testing::TrickleUntil({slow}, " ", kTrickleInterval, start + 2 * kDeadline);
  close(slow);
  ASSERT_TRUE(closed[0].has_value()) << "still open at twice the body deadline";
  EXPECT_GE(*closed[0] - start, kDeadline - std::chrono::milliseconds(50));
  EXPECT_LE(*closed[0] - start, kDeadline + kSlack);
  ExpectAlive();
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimAnswer) {
  Start();
  TestConnection c(port_);
  ASSERT_TRUE(c.Send(
      "POST /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  auto interim = c.Read();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->result(), http::status::continue_);
  ASSERT_TRUE(c.Send("{}"));
  auto r = c.Read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::method_not_allowed);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreClosed) {
  options_.max_connections = 2;
  Start();
  TestConnection a(port_);
  TestConnection b(port_);
  ASSERT_TRUE(a.RoundTrip(TestRequest(http::verb::get, "/healthz", 11)).has_value());
  ASSERT_TRUE(b.RoundTrip(TestRequest(http::verb::get, "/healthz", 11)).has_value());
  TestConnection c(port_);
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(2)));
  a.Close();
  // The freed slot is usable again (closing is asynchronous: retry briefly).
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    TestConnection d(port_);
    served = d.RoundTrip(TestRequest(http::verb::get, "/healthz", 11)).has_value();
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsPromptly) {
  Start();
  TestConnection c(port_);
  ASSERT_TRUE(c.RoundTrip(TestRequest(http::verb::get, "/healthz", 11)).has_value());
  const auto start = std::chrono::steady_clock::now();
  server_->Stop(std::chrono::seconds(5));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(1)));
  TestConnection after(port_);
  EXPECT_FALSE(after.connected() &&
               after.RoundTrip(TestRequest(http::verb::get, "/healthz", 11)).has_value());
}

TEST_F(HttpServerTest, PortInUseFailsToStart) {
  Start();
  HttpServer::Options options = options_;
  options.port = port_;
  HttpServer second(options, handler_.get());
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

TEST_F(HttpServerTest, ManyConcurrentClients) {
  Start();
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      TestConnection c(port_);
      for (int i = 0; i < 25; ++i) {
        auto r = c.RoundTrip(TestRequest(http::verb::get, "/healthz", 11));
        if (r && r->result() == http::status::ok) ++ok;
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(ok.load(), 200);
}

}  // namespace
}  // namespace octo::gateway
