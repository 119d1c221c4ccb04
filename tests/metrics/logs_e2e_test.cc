// Logs of the real stack: every line each process
// writes is one JSON object with time, level, component and msg; and a
// webhook's URL credentials, header value and signing secret, the API keys
// (right and wrong) and the Basic authorization derived from the URL appear
// in no process's output, although all of them went through the system.
#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/delivery_e2e/delivery_fixture.h"
#include "tests/support/http_client.h"
#include "tests/support/test_callers.h"

namespace octo::delivery_e2e {
namespace {

constexpr const char* kBooking = R"({"id":"bk-l","uuid":"{uuid}","status":"CONFIRMED"})";
constexpr const char* kUserInfo = "logsuser:Url-Pass-5e9c1";
constexpr const char* kPatchedUserInfo = "patchuser:Patched-Pass-77ab";
constexpr const char* kHeaderValue = "Header-Value-3f1d8e";
constexpr const char* kWrongKey = "octo_WrongKeyValue-c0ffee-0123456789abcdef";
// An internal caller token nobody holds (services/common/grpc_auth.h).
constexpr const char* kWrongInternalToken = "WrongInternalToken-0123456789abcdef-c0ffee";

class LogsE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() {
    DeliveryFlags flags;
    flags.retry_schedule = "200ms";
    flags.extra_args = {"--metrics_listen=127.0.0.1:0"};
    setenv("OCTO_SUBSCRIPTION_METRICS_LISTEN", "127.0.0.1:0", 1);  // inherited by the child
    StartStack(flags);
  }
  static void TearDownTestSuite() { StopStack(); }

  // Every process log of the stack: path -> content.
  static std::vector<std::pair<std::string, std::string>> Logs() {
    std::vector<std::pair<std::string, std::string>> out;
    const std::string& dir = stack_->base().dir();
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return out;
    while (const dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (!absl::EndsWith(name, ".log")) continue;
      std::ifstream in(dir + "/" + name);
      out.emplace_back(name, std::string(std::istreambuf_iterator<char>(in), {}));
    }
    closedir(d);
    return out;
  }
};

TEST_F(LogsE2eTest, EveryLineIsAJsonObjectAndNoSecretIsLogged) {
  // A webhook with URL credentials and a custom header, answered 500 then
  // 200 (a retry), and one answered 410 (disabled: a warning is logged).
  receiver_->SetPlan("/logs", {testing::Reply(500)}, testing::Reply(200));
  receiver_->SetPlan("/gone", {}, testing::Reply(410));
  const CreatedWebhook hook =
      Hook("booking_update", receiver_->Url("/logs", kUserInfo),
           absl::StrCat(R"("headers":{"X-Partner-Token":")", kHeaderValue, R"("})"));
  ASSERT_FALSE(hook.secret.empty());
  const CreatedWebhook gone = Hook("booking_update", receiver_->Url("/gone", kUserInfo));

  // Reads and an update through the gateway, and a request with a wrong key.
  testing::HttpClient http(stack_->gateway_port());
  const testing::HttpHeaders auth = {{"Authorization", "Bearer " + tenant_.api_key}};
  auto got = http.Send({.method = "GET", .target = "/octo/webhooks/" + hook.id, .headers = auth, .body = std::nullopt});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status, 200);
  testing::HttpHeaders patch_headers = auth;
  patch_headers.emplace_back("Content-Type", "application/json");
  auto patched = http.Send({.method = "PATCH",
                            .target = "/octo/webhooks/" + gone.id,
                            .headers = patch_headers,
                            .body = absl::StrCat(R"({"url":")", receiver_->Url("/gone", kPatchedUserInfo), R"("})")});
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ(patched->status, 200) << patched->body;
  auto wrong = http.Send({.method = "GET",
                          .target = "/octo/webhooks",
                          .headers = {{"Authorization", absl::StrCat("Bearer ", kWrongKey)}},
                          .body = std::nullopt});
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  EXPECT_EQ(wrong->status, 401);

  // A gRPC call with a wrong internal token: refused, and logged without it.
  {
    auto events = webhooks::v1::EventService::NewStub(testing::ChannelWithToken(
        absl::StrCat("127.0.0.1:", stack_->base().subscription_port()), kWrongInternalToken));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    webhooks::v1::PublishEventRequest request;
    webhooks::v1::PublishEventResponse response;
    EXPECT_EQ(events->PublishEvent(&context, request, &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }

  MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("logs")));
  ASSERT_TRUE(receiver_->WaitFor("/logs", 2, 15s));
  ASSERT_TRUE(receiver_->WaitFor("/gone", 1, 15s));
  const ReceivedRequest delivered = receiver_->Requests("/logs").back();
  // The secrets did travel: the Basic credentials and the header were sent.
  const std::string basic = absl::StrCat("Basic ", absl::Base64Escape(kUserInfo));
  ASSERT_EQ(delivered.Header("Authorization").value_or(""), basic);
  ASSERT_EQ(delivered.Header("X-Partner-Token").value_or(""), kHeaderValue);
  // Let the results be written (and anything about them logged).
  ASSERT_TRUE(Eventually(
      [&] {
        return db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE state = 'pending' AND webhook_id IN (",
                                        SqlQuote(hook.id), ",", SqlQuote(gone.id), ")")) == "0";
      },
      10s));

  const std::string secret_body = hook.secret.substr(hook.secret.find('_') + 1);  // base64 after whsec_
  std::vector<std::string> forbidden = {
      "Url-Pass-5e9c1", "Patched-Pass-77ab", kUserInfo, kPatchedUserInfo,   kHeaderValue,
      hook.secret,      gone.secret,         secret_body, tenant_.api_key, kWrongKey,
      absl::Base64Escape(kUserInfo), kWrongInternalToken,
  };
  // The internal callers' tokens, which every call between the processes carries.
  for (const char* identity : {"gateway", "admin", "publisher", "subscription"}) {
    forbidden.push_back(stack_->base().callers().Token(identity));
  }
  const auto logs = Logs();
  std::set<std::string> components;
  int lines = 0;
  ASSERT_GE(logs.size(), 3u) << "expected the logs of octo-delivery, octo-subscription and octo-gateway";
  for (const auto& [name, content] : logs) {
    SCOPED_TRACE(name);
    for (const std::string& secret : forbidden) {
      ASSERT_FALSE(secret.empty());
      EXPECT_EQ(content.find(secret), std::string::npos) << "a secret is logged: " << secret;
    }
    std::size_t start = 0;
    while (start < content.size()) {
      std::size_t end = content.find('\n', start);
      if (end == std::string::npos) end = content.size();
      const std::string line = content.substr(start, end - start);
      start = end + 1;
      ++lines;
      boost::system::error_code ec;
      const boost::json::value v = boost::json::parse(line, ec);
      ASSERT_FALSE(ec) << "not JSON: " << line;
      ASSERT_TRUE(v.is_object()) << "not a JSON object: " << line;
      const boost::json::object& o = v.as_object();
      for (const char* key : {"time", "level", "component", "msg"}) {
        ASSERT_TRUE(o.contains(key) && o.at(key).is_string()) << key << " missing: " << line;
      }
      const std::string level(o.at("level").as_string());
      EXPECT_TRUE(level == "debug" || level == "info" || level == "warn" || level == "error") << line;
      components.insert(std::string(o.at("component").as_string()));
      // Gateway access lines carry a request id, route template and status.
      if (o.at("component") == "gateway" && o.at("msg") == "request") {
        EXPECT_TRUE(o.contains("request_id") && o.contains("route") && o.contains("status")) << line;
      }
    }
  }
  EXPECT_GT(lines, 10);
  EXPECT_EQ(components, (std::set<std::string>{"delivery", "gateway", "subscription"}));
  // The 410 was logged with the ids that identify it, not its URL.
  bool disabled_logged = false;
  for (const auto& [name, content] : logs) {
    if (content.find("410 Gone") != std::string::npos && content.find(gone.id) != std::string::npos) {
      disabled_logged = true;
    }
  }
  EXPECT_TRUE(disabled_logged);
}

}  // namespace
}  // namespace octo::delivery_e2e
