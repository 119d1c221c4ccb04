// The gateway's caches and limits without sockets: AuthCache, ListCache,
// RateLimiter, and CachingBackend + ApiHandler over the in-memory fake
// (which counts the calls that reach "the service").
#include <functional>
#include <optional>
#include <vector>
#include <string>
#include <thread>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "gateway/api_handler.h"
#include "gateway/auth_cache.h"
#include "gateway/caching_backend.h"
#include "gateway/client_guard.h"
#include "gateway/list_cache.h"
#include "gateway/rate_limiter.h"
#include "services/common/metrics.h"
#include "tests/gateway/fake_subscription_backend.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::FakeSubscriptionBackend;

constexpr const char* kKey = "octo_key_a";
constexpr const char* kConnection = "c0000000-0000-4000-8000-00000000000a";
constexpr const char* kBody = R"({"url":"https://example.com/h","event":"booking_update"})";

TEST(AuthCacheTest, KnownKeysLiveTheirTtlFromTheLookupStart) {
  AuthCache cache({.ttl = 1000ms, .negative_ttl = 500ms, .max_keys = 10, .max_unknown_keys = 10});
  const Clock::time_point t0 = Clock::now();
  EXPECT_EQ(cache.Find("k", t0).outcome, AuthCache::Outcome::kMiss);
  cache.StoreKnown("k", "conn", t0);
  AuthCache::Result hit = cache.Find("k", t0 + 999ms);
  EXPECT_EQ(hit.outcome, AuthCache::Outcome::kKnown);
  EXPECT_EQ(hit.connection_id, "conn");
  // Revocation bound: at lookup start + ttl the service is asked again.
  EXPECT_EQ(cache.Find("k", t0 + 1000ms).outcome, AuthCache::Outcome::kMiss);

  cache.StoreUnknown("bad", t0);
  EXPECT_EQ(cache.Find("bad", t0 + 499ms).outcome, AuthCache::Outcome::kUnknown);
  EXPECT_EQ(cache.Find("bad", t0 + 500ms).outcome, AuthCache::Outcome::kMiss);
}

TEST(AuthCacheTest, StaysWithinItsBoundAndZeroTtlCachesNothing) {
  AuthCache cache({.ttl = 60000ms, .negative_ttl = 60000ms, .max_keys = 3, .max_unknown_keys = 3});
  const Clock::time_point now = Clock::now();
  for (int i = 0; i < 10; ++i) cache.StoreUnknown("bad" + std::to_string(i), now);
  int remembered = 0;
  for (int i = 0; i < 10; ++i)
    remembered += cache.Find("bad" + std::to_string(i), now).outcome == AuthCache::Outcome::kUnknown;
  EXPECT_LE(remembered, 3);
  EXPECT_GE(remembered, 1);

  AuthCache off({.ttl = 0ms, .negative_ttl = 0ms});
  off.StoreKnown("k", "conn", now);
  off.StoreUnknown("bad", now);
  EXPECT_EQ(off.Find("k", now).outcome, AuthCache::Outcome::kMiss);
  EXPECT_EQ(off.Find("bad", now).outcome, AuthCache::Outcome::kMiss);
}

TEST(ListCacheTest, AFillThatBeganBeforeAChangeIsNotStored) {
  ListCache cache({.ttl = 1000ms});
  const Clock::time_point before_change = Clock::now();
  cache.Invalidate("c");
  cache.Store("c", before_change, "[old]");
  EXPECT_EQ(cache.Find("c", Clock::now()), nullptr);

  const Clock::time_point after_change = Clock::now() + 1ns;
  cache.Store("c", after_change, "[new]");
  auto body = cache.Find("c", after_change + 10ms);
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(*body, "[new]");
  EXPECT_EQ(cache.Find("c", after_change + 1000ms), nullptr) << "expired";
  cache.Invalidate("c");
  EXPECT_EQ(cache.Find("c", after_change + 10ms), nullptr) << "dropped by the change";
}

TEST(ListCacheTest, EvictionRefusesOlderFillsAndLargeBodiesAreNotKept) {
  ListCache cache({.ttl = 1000ms, .max_entries = 2, .max_body_bytes = 8});
  const Clock::time_point started = Clock::now();
  cache.Invalidate("a");
  cache.Invalidate("b");
  cache.Invalidate("c");  // full: "a"'s change is forgotten ...
  cache.Store("a", started, "[]");
  EXPECT_EQ(cache.Find("a", Clock::now()), nullptr) << "... so a fill begun before it is refused";
  const Clock::time_point later = Clock::now() + 1ns;
  cache.Store("d", later, "[0123456789]");
  EXPECT_EQ(cache.Find("d", later), nullptr) << "over max_body_bytes";
}

TEST(ListCacheTest, BodiesStayWithinTheByteBudget) {
  ListCache cache({.ttl = 1000ms, .max_body_bytes = 10, .max_total_bytes = 20});
  const Clock::time_point started = Clock::now();
  cache.Store("a", started, "[01234567]");
  cache.Store("b", started, "[01234567]");
  cache.Store("c", started, "[01234567]");
  EXPECT_NE(cache.Find("a", started), nullptr);
  EXPECT_NE(cache.Find("b", started), nullptr);
  EXPECT_EQ(cache.Find("c", started), nullptr) << "over the budget: not kept";
  EXPECT_EQ(cache.body_bytes(), 20u);
  cache.Invalidate("a");
  EXPECT_EQ(cache.body_bytes(), 10u);
  cache.Store("c", Clock::now() + 1ns, "[01234567]");
  EXPECT_NE(cache.Find("c", Clock::now() + 1ns), nullptr) << "room again";
  EXPECT_EQ(cache.body_bytes(), 20u);
}

TEST(ListCacheTest, StoreSweepsExpiredBodiesBeforeTheCacheIsFull) {
  ListCache cache({.ttl = 100ms});
  // Fetches that began almost a TTL ago: expired within 10 ms.
  const Clock::time_point long_ago = Clock::now() - 90ms;
  for (const char* connection : {"a", "b", "c"}) cache.Store(connection, long_ago, "[0123456789]");
  EXPECT_EQ(cache.body_bytes(), 36u);
  std::this_thread::sleep_for(150ms);  // past their expiry and the next sweep
  cache.Store("d", Clock::now(), "[]");
  EXPECT_EQ(cache.body_bytes(), 2u) << "the expired bodies were dropped, far from max_entries";
}

TEST(RateLimiterTest, BurstThenRetryAfterThenRefill) {
  RateLimiter limiter({.per_second = 2, .burst = 3, .max_keys = 100});
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Acquire("k", t0), 0) << i;
  EXPECT_EQ(limiter.Acquire("k", t0), 1);      // half a second to the next token: 1 s
  EXPECT_EQ(limiter.Acquire("other", t0), 0);  // keys are independent
  EXPECT_EQ(limiter.Acquire("k", t0 + 500ms), 0);
  EXPECT_GE(limiter.Acquire("k", t0 + 500ms), 1);

  RateLimiter slow({.per_second = 0.1, .burst = 1});
  EXPECT_EQ(slow.Acquire("k", t0), 0);
  EXPECT_EQ(slow.Acquire("k", t0), 10);
  EXPECT_EQ(RateLimiter({.per_second = 0}).Acquire("k", t0), 0) << "0: no limit";
}

TEST(ClientAddressKeyTest, IPv6CountsByItsSlash64AndMappedIPv4AsIPv4) {
  const auto key = [](const char* text) {
    return ClientAddressKey(boost::asio::ip::make_address(text));
  };
  EXPECT_EQ(key("127.0.0.2"), "127.0.0.2");
  EXPECT_EQ(key("::ffff:127.0.0.2"), "127.0.0.2");
  EXPECT_EQ(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(key("2001:db8:1:2::9"), "2001:db8:1:2::/64");
  EXPECT_EQ(key("2001:db8:1:3::9"), "2001:db8:1:3::/64");

  // One /64 is one client: hopping addresses inside it meets the same cap.
  ClientGuard guard({.max_connections_per_address = 1,
                     .address_rate = {.per_second = 1.0 / 60, .burst = 1}},
                    nullptr);
  EXPECT_TRUE(guard.AdmitConnection(key("2001:db8:1:2::1")));
  EXPECT_FALSE(guard.AdmitConnection(key("2001:db8:1:2::2")));
  EXPECT_TRUE(guard.AdmitConnection(key("2001:db8:1:3::1")));
  EXPECT_EQ(guard.AcquireRequest(key("127.0.0.3")), 0);
  EXPECT_GT(guard.AcquireRequest(key("::ffff:127.0.0.3")), 0);
}

// Holds Authenticate calls until released, as a slow service would.
class DeferredAuthBackend : public FakeSubscriptionBackend {
 public:
  void Authenticate(const octo::webhooks::v1::AuthenticateRequest& request, Deadline deadline,
                    Callback<octo::webhooks::v1::AuthenticateResponse> done) override {
    held_.push_back([this, request, deadline, done = std::move(done)]() mutable {
      FakeSubscriptionBackend::Authenticate(request, deadline, std::move(done));
    });
  }
  std::size_t held() const { return held_.size(); }
  void ReleaseAll() {
    std::vector<std::function<void()>> held = std::move(held_);
    held_.clear();
    for (auto& call : held) call();
  }

 private:
  std::vector<std::function<void()>> held_;
};

TEST(CachingBackendTest, ConcurrentMissesOfOneKeyShareOneCall) {
  for (const auto ttl : {1000ms, 0ms}) {
    DeferredAuthBackend backend;
    backend.AddKey(kKey, kConnection);
    AuthCache auth({.ttl = ttl, .negative_ttl = ttl});
    ListCache lists({});
    CachingBackend caching(&backend, &auth, &lists, nullptr);
    octo::webhooks::v1::AuthenticateRequest request;
    request.set_api_key(kKey);
    int answered = 0;
    for (int i = 0; i < 5; ++i) {
      caching.Authenticate(request, std::chrono::system_clock::now() + 5s,
                           [&](absl::StatusOr<octo::webhooks::v1::AuthenticateResponse> r) {
                             ASSERT_TRUE(r.ok()) << r.status();
                             EXPECT_EQ(r->connection_id(), kConnection);
                             ++answered;
                           });
    }
    // With a cache, one call; without (TTL 0, nothing may be reused), five.
    EXPECT_EQ(backend.held(), ttl.count() > 0 ? 1u : 5u);
    EXPECT_EQ(answered, 0);
    backend.ReleaseAll();
    EXPECT_EQ(answered, 5);
  }
}

// CachingBackend + ApiHandler over the fake: what reaches the service.
class CachedHandlerTest : public ::testing::Test {
 protected:
  CachedHandlerTest()
      : guard_metrics_(registry_),
        auth_({.ttl = 1000ms, .negative_ttl = 1000ms}),
        lists_({.ttl = 1000ms}),
        // One token a minute: no refill during a test, however slow the machine.
        key_limiter_({.per_second = 1.0 / 60, .burst = 10}),
        caching_(&backend_, &auth_, &lists_, &guard_metrics_),
        handler_(Options(), &caching_) {
    backend_.AddKey(kKey, kConnection);
  }

  ApiHandler::Options Options() {
    ApiHandler::Options options;
    options.list_cache = &lists_;
    options.key_limiter = &key_limiter_;
    options.guard_metrics = &guard_metrics_;
    return options;
  }

  HandlerResult Call(http::verb method, const std::string& target, const std::string& key = kKey,
                     const std::string& body = "") {
    HttpRequest request(method, target, 11);
    request.set(http::field::authorization, "Bearer " + key);
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    std::optional<HandlerResult> result;
    handler_.Handle(std::move(request), [&](HandlerResult r) { result = std::move(r); });
    EXPECT_TRUE(result.has_value());
    return result.value_or(HandlerResult{});
  }

  double Counter(const std::string& name, const std::string& label, const std::string& value) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        for (const auto& l : metric.label) {
          if (l.name == label && l.value == value) return metric.counter.value;
        }
      }
    }
    return -1;
  }

  prometheus::Registry registry_;
  metrics::GatewayGuardMetrics guard_metrics_;
  FakeSubscriptionBackend backend_;
  AuthCache auth_;
  ListCache lists_;
  RateLimiter key_limiter_;
  CachingBackend caching_;
  ApiHandler handler_;
};

TEST_F(CachedHandlerTest, ListsAndKeysAreServedFromMemoryAndChangesShowAtOnce) {
  ASSERT_EQ(Call(http::verb::post, "/octo/webhooks", kKey, kBody).response.result_int(), 200);
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks").response.body().find("example.com") !=
                std::string::npos,
            true);
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks").response.result_int(), 200);
  EXPECT_EQ(backend_.calls("Authenticate"), 1);
  EXPECT_EQ(backend_.calls("ListWebhooks"), 1) << "the second list came from the cache";
  EXPECT_EQ(Counter("octo_gateway_list_cache_lookups_total", "result", "hit"), 1);

  // Read-your-writes: a delete through this gateway shows in the next list.
  const json::value list = json::parse(Call(http::verb::get, "/octo/webhooks").response.body());
  const std::string id(list.as_array().at(0).at("id").as_string());
  ASSERT_EQ(Call(http::verb::delete_, "/octo/webhooks/" + id).response.result_int(), 200);
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks").response.body(), "[]");
  EXPECT_EQ(backend_.calls("ListWebhooks"), 2);
}

// Every change a partner makes through this gateway drops the connection's
// cached list before it is answered: the next list asks the service.
struct ListChange {
  const char* name;
  http::verb method;
  const char* path;  // "{id}": a webhook's id
  const char* body;  // "" for none
};

class ListChangeTest : public CachedHandlerTest,
                       public ::testing::WithParamInterface<ListChange> {};

TEST_P(ListChangeTest, ShowsAtOnce) {
  const ListChange& change = GetParam();
  const HandlerResult webhook = Call(http::verb::post, "/octo/webhooks", kKey, kBody);
  ASSERT_EQ(webhook.response.result_int(), 200);
  const std::string webhook_id(json::parse(webhook.response.body()).at("id").as_string());
  ASSERT_EQ(Call(http::verb::get, "/octo/webhooks").response.result_int(), 200);
  ASSERT_EQ(Call(http::verb::get, "/octo/webhooks").response.result_int(), 200);
  const int fetched = backend_.calls("ListWebhooks");

  std::string path = change.path;
  if (const auto at = path.find("{id}"); at != std::string::npos) path.replace(at, 4, webhook_id);
  const HandlerResult changed = Call(change.method, path, kKey, change.body);
  ASSERT_LT(changed.response.result_int(), 300) << changed.response.body();

  const HandlerResult listed = Call(http::verb::get, "/octo/webhooks");
  EXPECT_EQ(listed.response.result_int(), 200);
  EXPECT_EQ(backend_.calls("ListWebhooks"), fetched + 1) << "the cached list was dropped";
  if (change.method == http::verb::patch && path.starts_with("/octo/webhooks/")) {
    EXPECT_NE(listed.response.body().find("example.com/changed"), std::string::npos)
        << listed.response.body();
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryChange, ListChangeTest,
    ::testing::Values(
        ListChange{"create", http::verb::post, "/octo/webhooks", kBody},
        ListChange{"update", http::verb::patch, "/octo/webhooks/{id}",
                   R"({"url":"https://example.com/changed"})"},
        ListChange{"delete", http::verb::delete_, "/octo/webhooks/{id}", ""},
        ListChange{"rotate_secret", http::verb::post, "/octo/ext/webhooks/{id}/rotate-secret", ""},
        ListChange{"enable", http::verb::post, "/octo/ext/webhooks/{id}/enable", ""}),
    [](const ::testing::TestParamInfo<ListChange>& info) { return std::string(info.param.name); });

TEST_F(CachedHandlerTest, UnknownKeysHitTheNegativeCache) {
  for (int i = 0; i < 3; ++i) {
    const HandlerResult r = Call(http::verb::get, "/octo/webhooks", "octo_unknown");
    EXPECT_EQ(r.response.result_int(), 401);
    EXPECT_NE(r.response.body().find("UNAUTHORIZED"), std::string::npos) << r.response.body();
  }
  EXPECT_EQ(backend_.calls("Authenticate"), 1);
  EXPECT_EQ(Counter("octo_gateway_auth_cache_lookups_total", "result", "negative_hit"), 2);
  EXPECT_EQ(Counter("octo_gateway_auth_cache_lookups_total", "result", "miss"), 1);
}

TEST_F(CachedHandlerTest, AKeyOverItsRateIs429WithRetryAfterInTheOctoShape) {
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(Call(http::verb::get, "/octo/webhooks").response.result_int(), 200) << i;
  const HandlerResult r = Call(http::verb::get, "/octo/webhooks");
  EXPECT_EQ(r.response.result_int(), 429);
  // A token a minute: the wait is about a minute (less the test's own time).
  EXPECT_GE(std::stoi(std::string(r.response[http::field::retry_after])), 50);
  EXPECT_EQ(r.response[http::field::content_type], "application/json");
  const json::object body = json::parse(r.response.body()).as_object();
  EXPECT_EQ(body.size(), 2u) << r.response.body();
  EXPECT_EQ(body.at("error"), "BAD_REQUEST");
  EXPECT_NE(std::string(body.at("errorMessage").as_string()).find("; retry after "),
            std::string::npos);
  EXPECT_EQ(Counter("octo_gateway_rejected_total", "reason", "key_rate"), 1);
  // An unknown key is refused before its rate is counted.
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks", "octo_unknown").response.result_int(), 401);
}

TEST_F(CachedHandlerTest, TheNotificationsRoutesSpendTheSameKeyRate) {
  const std::string subscriptions = "/octo/notifications/subscriptions";
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(Call(http::verb::get, "/octo/webhooks").response.result_int(), 200) << i;
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(Call(http::verb::get, subscriptions).response.result_int(), 200) << i;
  const HandlerResult r = Call(http::verb::get, subscriptions);
  EXPECT_EQ(r.response.result_int(), 429) << r.response.body();
  EXPECT_GE(std::stoi(std::string(r.response[http::field::retry_after])), 50);
  EXPECT_EQ(Call(http::verb::post, subscriptions, kKey, kBody).response.result_int(), 429);
  EXPECT_EQ(Call(http::verb::get, "/octo/webhooks").response.result_int(), 429);
  EXPECT_EQ(Counter("octo_gateway_rejected_total", "reason", "key_rate"), 3);
  EXPECT_EQ(backend_.calls("ListWebhooks"), 1 + 5) << "refused requests reach no service";
}

}  // namespace
}  // namespace octo::gateway
