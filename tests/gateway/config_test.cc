#include "gateway/config.h"

#include <gtest/gtest.h>

namespace octo::gateway {
namespace {

TEST(MakeGatewayConfig, Defaults) {
  absl::StatusOr<GatewayConfig> config = MakeGatewayConfig(GatewayFlags{});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->http.host, "127.0.0.1");
  EXPECT_EQ(config->http.port, 8080);
  EXPECT_EQ(config->http.threads, 2);
  EXPECT_EQ(config->http.max_body_bytes, 65536u);
  EXPECT_EQ(config->api.base_path, "/octo");
  EXPECT_EQ(config->api.request_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(config->api.readiness_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(config->subscription_target, "127.0.0.1:50051");
  EXPECT_TRUE(config->port_file.empty());
  // Unknown keys have their own, smaller cap: a client inventing keys cannot
  // make the gateway remember as many of them as it does valid keys.
  EXPECT_EQ(config->auth_cache.max_keys, 100000u);
  EXPECT_EQ(config->auth_cache.max_unknown_keys, 10000u);
  EXPECT_EQ(config->list_cache.max_total_bytes, std::size_t{64} << 20);
}

TEST(MakeGatewayConfig, RefusesNonLoopbackUnlessAllowed) {
  GatewayFlags flags;
  flags.listen = "0.0.0.0:8080";
  absl::StatusOr<GatewayConfig> config = MakeGatewayConfig(flags);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("allow_non_loopback"), absl::string_view::npos);
  flags.allow_non_loopback = true;
  EXPECT_TRUE(MakeGatewayConfig(flags).ok());
}

TEST(MakeGatewayConfig, AcceptsLoopbackForms) {
  GatewayFlags flags;
  for (const char* listen : {"127.0.0.1:0", "localhost:9000", "[::1]:8080", "127.1.2.3:1"}) {
    flags.listen = listen;
    EXPECT_TRUE(MakeGatewayConfig(flags).ok()) << listen;
  }
}

TEST(MakeGatewayConfig, RejectsBadValues) {
  const auto bad = [](auto mutate) {
    GatewayFlags flags;
    mutate(flags);
    return !MakeGatewayConfig(flags).ok();
  };
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.listen = "127.0.0.1"; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.listen = "127.0.0.1:70000"; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.subscription_target = ""; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.base_path = "octo"; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.request_timeout_ms = 0; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.max_body_bytes = 0; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.threads = 0; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.max_header_bytes = 10; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.auth_cache_max_unknown_keys = 0; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.list_cache_max_mb = 0; }));
  EXPECT_TRUE(bad([](GatewayFlags& f) { f.key_rate_limit = -0.5; }));
  GatewayFlags slow;
  slow.key_rate_limit = 1.0 / 60;
  absl::StatusOr<GatewayConfig> config = MakeGatewayConfig(slow);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_DOUBLE_EQ(config->key_rate.per_second, 1.0 / 60);
}

TEST(MakeGatewayConfig, ShortReadinessTimeoutFollowsTheRequestTimeout) {
  GatewayFlags flags;
  flags.request_timeout_ms = 300;
  flags.base_path = "/";
  absl::StatusOr<GatewayConfig> config = MakeGatewayConfig(flags);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->api.readiness_timeout, std::chrono::milliseconds(300));
  EXPECT_EQ(config->api.base_path, "");
}

}  // namespace
}  // namespace octo::gateway
