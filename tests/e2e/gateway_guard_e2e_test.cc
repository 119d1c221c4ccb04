// End to end, the gateway's caches and limits against the real services:
// a revoked key is refused within 1 s, unknown keys are answered from the
// negative cache (seen on the gateway's metrics listener), a key over its
// rate gets 429 + Retry-After in the OCTO shape, and a list larger than
// gRPC's default 4 MiB message still answers 200.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_test_util.h"

namespace octo::e2e {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The sum of the samples of `name` with `label="value"` in a text exposition.
double Sample(const std::string& text, const std::string& name, const std::string& label) {
  double sum = 0;
  std::size_t at = 0;
  const std::string prefix = name + "{";
  while ((at = text.find(prefix, at)) != std::string::npos) {
    const std::size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    at = end;
    if (line.find(label) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

std::string ScrapeGateway(E2eStack* stack) {
  testing::HttpClient http(stack->gateway_metrics_port());
  auto r = http.Send({.method = "GET", .target = "/metrics", .headers = {}, .body = std::nullopt});
  if (!r.ok()) {
    ADD_FAILURE() << "scraping the gateway: " << r.status();
    return "";
  }
  EXPECT_EQ(r->status, 200);
  return r->body;
}

class GatewayCacheE2eTest : public E2eTest {};

TEST_F(GatewayCacheE2eTest, ARevokedKeyIsRefusedWithinOneSecond) {
  // The key is known and cached.
  ASSERT_EQ(api_->List().status, 200);
  ASSERT_EQ(api_->List().status, 200);
  ASSERT_TRUE(stack_->RevokeKey(tenant_.api_key_id).ok());
  const Clock::time_point revoked = Clock::now();

  // Every request sent 1 s or more after the revocation was confirmed is
  // refused; before that the cache may still accept the key.
  int refused_after_bound = 0;
  int accepted_after_bound = 0;
  while (Clock::now() - revoked < 1500ms) {
    const Clock::time_point sent = Clock::now();
    const testing::HttpResponse r = api_->List();
    if (sent - revoked >= 1000ms) {
      if (r.status == 401) {
        ++refused_after_bound;
        EXPECT_TRUE(IsOctoError(r, 401, "UNAUTHORIZED"));
      } else {
        ++accepted_after_bound;
        ADD_FAILURE() << "answered " << r.status << " "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(sent - revoked).count()
                      << " ms after the revocation";
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GT(refused_after_bound, 0);
  EXPECT_EQ(accepted_after_bound, 0);
}

TEST_F(GatewayCacheE2eTest, UnknownKeysAreAnsweredFromTheNegativeCache) {
  // A stack of its own whose negative TTL (60 s) no slow machine outlasts.
  StackOptions options;
  options.gateway_args.push_back("--auth_negative_ttl_ms=60000");
  E2eStack stack(options);
  ASSERT_TRUE(stack.StartAll().ok()) << stack.LogTails();
  const std::string before = ScrapeGateway(&stack);
  RestApi stranger(stack.gateway_port(), "octo_unknown_key_for_the_negative_cache");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(IsOctoError(stranger.List(), 401, "UNAUTHORIZED"));
  const std::string after = ScrapeGateway(&stack);
  const auto delta = [&](const std::string& result) {
    const std::string label = "result=\"" + result + "\"";
    return Sample(after, "octo_gateway_auth_cache_lookups_total", label) -
           Sample(before, "octo_gateway_auth_cache_lookups_total", label);
  };
  // One lookup asked the service; the others were refused from memory.
  EXPECT_EQ(delta("miss"), 1);
  EXPECT_EQ(delta("negative_hit"), 2);
  EXPECT_TRUE(stack.StopGateway().Clean());
  EXPECT_TRUE(stack.StopSubscription().Clean());
}

TEST_F(GatewayCacheE2eTest, AListOverGrpcsDefaultMessageSizeAnswers200) {
  // A stack of its own whose gateway waits as long as the client below: this
  // checks the message size, not the speed, and ~12 MiB took the instrumented
  // build (scripts/test.sh --sanitize-ci) past the default 5 s on a loaded
  // machine (503).
  StackOptions options;
  options.gateway_args.push_back("--request_timeout_ms=60000");
  E2eStack stack(options);
  ASSERT_TRUE(stack.StartAll().ok()) << stack.LogTails();
  constexpr int kWebhooks = 1000;
  absl::StatusOr<Tenant> created = stack.CreateTenant(kWebhooks);
  ASSERT_TRUE(created.ok()) << created.status();
  const Tenant tenant = *created;
  auto big = std::make_unique<RestApi>(stack.gateway_port(), tenant.api_key, stack.options().base_path);
  // Each at its validation limits: ~12 KiB as a protobuf message, so a page
  // of 1,000 is ~12 MiB, three times gRPC's default 4 MiB limit.
  json::object headers;
  for (int h = 0; h < 20; ++h)
    headers[absl::StrCat("X-Pad-", h < 10 ? "0" : "", h, "-", std::string(247, 'h'))] = "v";
  std::string capabilities;
  for (int c = 0; c < 50; ++c)
    absl::StrAppend(&capabilities, c ? "," : "", "pad/", c < 10 ? "0" : "", c, "-", std::string(93, 'c'));
  const std::string url = "https://hooks.partner.example/" + std::string(2048 - 30, 'u');
  ASSERT_EQ(url.size(), 2048u);

  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      RestApi api(stack.gateway_port(), tenant.api_key, stack.options().base_path);
      for (int i = t; i < kWebhooks && failures.load() < 5; i += kThreads) {
        json::object body{{"event", "booking_update"}, {"url", url}, {"headers", headers}};
        const testing::HttpResponse r =
            api.Create(json::serialize(body), {{"Octo-Capabilities", capabilities}});
        if (r.status != 200) {
          if (++failures <= 3) ADD_FAILURE() << "create " << i << ": " << r.status << " " << r.body;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  // A generous timeout: ~12 MiB of JSON on a loaded machine.
  testing::HttpClient http(stack.gateway_port(), 60s);
  absl::StatusOr<testing::HttpResponse> listed =
      http.Send({.method = "GET",
                 .target = big->WebhooksPath(),
                 .headers = {{"Authorization", "Bearer " + tenant.api_key}},
                 .body = std::nullopt});
  ASSERT_TRUE(listed.ok()) << listed.status();
  const testing::HttpResponse& list = *listed;
  ASSERT_EQ(list.status, 200) << list.body.substr(0, 500);
  EXPECT_GT(list.body.size(), std::size_t{4} << 20);
  EXPECT_EQ(WebhooksOfList(list).size(), static_cast<std::size_t>(kWebhooks));
  EXPECT_TRUE(stack.StopGateway().Clean()) << stack.LogTails();
  EXPECT_TRUE(stack.StopSubscription().Clean()) << stack.LogTails();
}

// A stack of its own with a small per-key limit: a burst of 3, then one
// request a minute, so no token comes back during the test however slow the
// machine (the refill itself: RateLimiterTest in tests/gateway/guard_test.cc).
class KeyRateLimitE2eTest : public ::testing::Test {};

TEST_F(KeyRateLimitE2eTest, AKeyOverItsRateIs429WithRetryAfter) {
  StackOptions options;
  options.gateway_args = {"--key_rate_limit=0.0166", "--key_rate_burst=3",
                          "--address_rate_limit=0"};
  E2eStack stack(options);
  ASSERT_TRUE(stack.StartAll().ok()) << stack.LogTails();
  absl::StatusOr<Tenant> tenant = stack.CreateTenant();
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  RestApi api(stack.gateway_port(), tenant->api_key);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(api.List().status, 200) << i;
  const testing::HttpResponse limited = api.List();
  EXPECT_TRUE(IsOctoError(limited, 429, "BAD_REQUEST")) << limited.body;
  const std::optional<std::string> retry_after = limited.Header("Retry-After");
  ASSERT_TRUE(retry_after.has_value());
  EXPECT_GE(std::stoi(*retry_after), 50) << "about a minute to the next token";
  // Another key has its own bucket.
  absl::StatusOr<Tenant> other = stack.CreateTenant();
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(RestApi(stack.gateway_port(), other->api_key).List().status, 200);
  // The notifications routes spend the same bucket.
  testing::HttpClient http(stack.gateway_port());
  absl::StatusOr<testing::HttpResponse> subscriptions =
      http.Send({.method = "GET",
                 .target = "/octo/notifications/subscriptions",
                 .headers = {{"Authorization", "Bearer " + tenant->api_key}},
                 .body = std::nullopt});
  ASSERT_TRUE(subscriptions.ok()) << subscriptions.status();
  EXPECT_TRUE(IsOctoError(*subscriptions, 429, "BAD_REQUEST")) << subscriptions->body;
  EXPECT_TRUE(stack.StopGateway().Clean());
  EXPECT_TRUE(stack.StopSubscription().Clean());
}

}  // namespace
}  // namespace octo::e2e
