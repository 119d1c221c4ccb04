// End to end, the processes themselves: probes, hostile bytes on the socket,
// a restart of both services on the same database, and readiness while the
// subscription service is down.
#include <chrono>
#include <random>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/e2e/e2e_test_util.h"

namespace octo::e2e {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

testing::HttpResponse Probe(int port, const std::string& path) {
  testing::HttpClient http(port, 10s);
  auto r = http.Send({.method = "GET", .target = path, .headers = {}, .body = {}});
  if (!r.ok()) {
    ADD_FAILURE() << "GET " << path << ": " << r.status();
    return {};
  }
  return *std::move(r);
}

class LifecycleE2eTest : public E2eTest {};

TEST_F(LifecycleE2eTest, HealthzAndReadyzWhenUp) {
  testing::HttpResponse health = Probe(stack_->gateway_port(), "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(ParseObject(health.body)["status"], "ok");
  testing::HttpResponse ready = Probe(stack_->gateway_port(), "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ParseObject(ready.body)["status"], "ready") << ready.body;
}

// Nothing a client writes on the socket takes the gateway down; each bad
// request is answered 400/413/431 or the connection is closed, and the next
// client is served normally.
TEST_F(LifecycleE2eTest, GarbageAndTruncatedRequestsDoNotKillTheGateway) {
  std::mt19937 rng(42);
  std::string random_bytes(4096, '\0');
  for (char& c : random_bytes) c = static_cast<char>(rng() & 0xff);
  const std::string auth = "Authorization: Bearer " + api_->api_key() + "\r\n";
  const std::string path = api_->WebhooksPath();

  constexpr int kClosedSilently = -1;  // a truncated request: no answer, connection closed
  struct Case {
    std::string name;
    std::string bytes;
    bool half_close;
    int expect_status;  // or kClosedSilently
  };
  const std::vector<Case> cases = {
      {"random binary", random_bytes, false, 400},
      {"random binary, half-closed", random_bytes, true, 400},
      {"NULs", std::string(1000, '\0'), true, 400},
      {"only CRLFs", "\r\n\r\n\r\n\r\n", true, 400},
      {"not HTTP", "HELLO WORLD\r\n\r\n", false, 400},
      {"bad version", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", false, 400},
      {"bare LF line ends", "GET /healthz HTTP/1.1\nHost: x\n\n", false, 400},
      {"header without colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", false, 400},
      {"bad Content-Length",
       "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: abc\r\n\r\n{}", false, 400},
      {"two Content-Lengths",
       "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
       false, 400},
      {"bad chunk",
       "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + auth +
           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
       false, 400},
      {"huge header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n",
       false, 431},
      {"huge target", "GET /" + std::string(64 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", false, 431},
      {"chunked body over the limit",
       "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + auth +
           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n20000\r\n" +
           std::string(0x20000, ' ') + "\r\n0\r\n\r\n",
       false, 413},
      {"truncated request line", "GET /octo/webh", true, kClosedSilently},
      {"truncated headers", "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor", true, kClosedSilently},
      {"truncated body",
       "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + auth +
           "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"event\":",
       true, kClosedSilently},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<testing::RawResult> raw =
        api_->http().SendRaw(c.bytes, {.half_close = c.half_close, .read_timeout = 3s});
    ASSERT_TRUE(raw.ok()) << raw.status();
    EXPECT_TRUE(raw->peer_closed) << "the gateway should close a connection it cannot use";
    if (c.expect_status == kClosedSilently) {
      EXPECT_EQ(raw->bytes, "");
    } else {
      absl::StatusOr<testing::HttpResponse> r = testing::HttpClient::ParseResponse(raw->bytes);
      ASSERT_TRUE(r.ok()) << r.status() << ": " << raw->bytes.substr(0, 500);
      EXPECT_TRUE(IsOctoError(*r, c.expect_status, "BAD_REQUEST"));
    }
    ASSERT_TRUE(stack_->gateway()->IsRunning()) << stack_->LogTails();
    EXPECT_EQ(Probe(stack_->gateway_port(), "/healthz").status, 200);
  }
  // Still fully working, and nothing was stored.
  EXPECT_EQ(api_->List().body, list_snapshot_);
  EXPECT_EQ(api_->Create(kMinimalBody).status, 200);
}

// A client that connects and goes away at any point is no problem.
TEST_F(LifecycleE2eTest, AbandonedConnectionsDoNotKillTheGateway) {
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<testing::RawResult> raw =
        api_->http().SendRaw(i % 2 == 0 ? "" : "GET /healthz HTTP/1.1\r\n", {.half_close = false, .read_timeout = 1ms});
    ASSERT_TRUE(raw.ok()) << raw.status();
  }
  ASSERT_TRUE(stack_->gateway()->IsRunning()) << stack_->LogTails();
  EXPECT_EQ(api_->List().status, 200);
}

// Pipelined requests on one connection are answered in order.
TEST_F(LifecycleE2eTest, PipelinedRequestsAreAnsweredInOrder) {
  const std::string get = "GET " + api_->WebhooksPath() + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          api_->api_key() + "\r\n\r\n";
  const std::string last = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  absl::StatusOr<testing::RawResult> raw = api_->http().SendRaw(get + get + last, {.half_close = false, .read_timeout = 5s});
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_TRUE(raw->peer_closed);
  std::string_view rest = raw->bytes;
  std::vector<int> statuses;
  std::vector<std::string> bodies;
  for (int i = 0; i < 3; ++i) {
    const auto next = rest.find("HTTP/1.1 ", 1);
    absl::StatusOr<testing::HttpResponse> r =
        testing::HttpClient::ParseResponse(rest.substr(0, next == std::string_view::npos ? rest.size() : next));
    ASSERT_TRUE(r.ok()) << r.status() << ": " << raw->bytes;
    statuses.push_back(r->status);
    bodies.push_back(r->body);
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
  }
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 200}));
  EXPECT_EQ(bodies[0], "[]");
  EXPECT_EQ(bodies[1], "[]");
  EXPECT_EQ(ParseObject(bodies[2])["status"], "ok");
}

// ------------------------------------------- tests with their own system --

// Both services stop on SIGTERM with exit code 0 and start again on the same
// database: every webhook is there byte for byte, and the key still works.
TEST(RestartE2eTest, DataAndKeysSurviveARestartOfBothServices) {
  E2eStack stack;
  absl::Status started = stack.StartAll();
  ASSERT_TRUE(started.ok()) << started;
  absl::StatusOr<Tenant> tenant = stack.CreateTenant(/*max_webhooks=*/3);
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  std::vector<std::string> ids;
  {
    RestApi api(stack.gateway_port(), tenant->api_key);
    for (const std::string body :
         {R"({"event":"booking_update","url":"https://u:p@h.example/a","headers":{"X-A":"1"},"retryOnError":false})",
          R"({"event":"availability_update","url":"https://h.example/b","useContactLanguage":false})"}) {
      testing::HttpResponse r = api.Create(body, {{"Octo-Capabilities", "octo/pricing"}});
      ASSERT_EQ(r.status, 200) << r.body;
      ids.push_back(std::string(ParseObject(r.body)["id"].as_string()));
    }
  }
  RestApi before_api(stack.gateway_port(), tenant->api_key);
  const std::string list_before = before_api.List().body;
  const std::string get_before = before_api.Get(ids[0]).body;
  ASSERT_EQ(WebhooksOfList(before_api.List()).size(), 2u);

  const testing::ExitInfo gateway_exit = stack.StopGateway();
  const testing::ExitInfo subscription_exit = stack.StopSubscription();
  EXPECT_TRUE(gateway_exit.Clean()) << gateway_exit.ToString() << "\n" << stack.LogTails();
  EXPECT_TRUE(subscription_exit.Clean()) << subscription_exit.ToString() << "\n" << stack.LogTails();

  absl::Status restarted = stack.StartAll();  // migrations again: a no-op
  ASSERT_TRUE(restarted.ok()) << restarted;
  RestApi api(stack.gateway_port(), tenant->api_key);
  EXPECT_EQ(api.List().body, list_before);
  EXPECT_EQ(api.Get(ids[0]).body, get_before);
  // Still fully usable: the cap still counts the old webhooks.
  EXPECT_EQ(api.Create(R"({"event":"order_update","url":"https://h.example/c"})").status, 200);
  EXPECT_TRUE(IsOctoError(api.Create(R"({"event":"order_update","url":"https://h.example/d"})"), 422,
                          "UNPROCESSABLE_ENTITY"));
  EXPECT_EQ(api.Delete(ids[1]).status, 200);
  EXPECT_EQ(WebhooksOfList(api.List()).size(), 2u);

  EXPECT_TRUE(stack.StopGateway().Clean()) << stack.LogTails();
  EXPECT_TRUE(stack.StopSubscription().Clean()) << stack.LogTails();
}

// /readyz follows the subscription service: 200 while it serves, 503 once it
// is gone (while /healthz, the process probe, stays 200), and 200 again when
// it is back on the same address.
TEST(ReadinessE2eTest, ReadyzFollowsTheSubscriptionService) {
  E2eStack stack;
  absl::Status started = stack.StartAll();
  ASSERT_TRUE(started.ok()) << started;
  absl::StatusOr<Tenant> tenant = stack.CreateTenant();
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  RestApi api(stack.gateway_port(), tenant->api_key);
  ASSERT_EQ(api.Create(R"({"event":"booking_update","url":"https://h.example/a"})").status, 200);

  testing::HttpResponse ready = Probe(stack.gateway_port(), "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;

  const int subscription_port = stack.subscription_port();
  const testing::ExitInfo exit = stack.StopSubscription();
  EXPECT_TRUE(exit.Clean()) << exit.ToString() << "\n" << stack.LogTails();

  testing::HttpResponse unready = Probe(stack.gateway_port(), "/readyz");
  EXPECT_EQ(unready.status, 503) << unready.body;
  json::object body = ParseObject(unready.body);
  EXPECT_EQ(body["status"], "unready") << unready.body;
  EXPECT_EQ(body["error"], "INTERNAL_SERVER_ERROR") << unready.body;
  EXPECT_EQ(Probe(stack.gateway_port(), "/healthz").status, 200);

  // The API answers 503 (retryable) instead of hanging or failing otherwise.
  testing::HttpResponse list = api.List();
  EXPECT_TRUE(IsOctoError(list, 503, "INTERNAL_SERVER_ERROR"));
  EXPECT_TRUE(list.Header("Retry-After").has_value());
  ASSERT_TRUE(stack.gateway()->IsRunning()) << stack.LogTails();

  // Back on the same port: the gateway reconnects by itself.
  absl::Status back = stack.StartSubscription(subscription_port);
  ASSERT_TRUE(back.ok()) << back;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    status = Probe(stack.gateway_port(), "/readyz").status;
    if (status == 200) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 200) << stack.LogTails();
  EXPECT_EQ(WebhooksOfList(api.List()).size(), 1u);

  EXPECT_TRUE(stack.StopGateway().Clean()) << stack.LogTails();
  EXPECT_TRUE(stack.StopSubscription().Clean()) << stack.LogTails();
}

}  // namespace
}  // namespace octo::e2e
