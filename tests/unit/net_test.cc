#include "services/common/net.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace octo {
namespace {

TEST(ParseHostPort, Ipv4HostnameAndIpv6) {
  auto a = ParseHostPort("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = ParseHostPort("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  EXPECT_TRUE(ParseHostPort("localhost:50051").ok());
}

TEST(ParseHostPort, RejectsMalformed) {
  for (const char* bad : {"", "127.0.0.1", ":80", "127.0.0.1:", "127.0.0.1:70000", "::1:80", "[::1]", "[::1]80",
                          "host:-1", "host:8o"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  }
}

TEST(IsLoopbackHost, OnlyLoopback) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.255.0.9"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  for (const char* other : {"0.0.0.0", "::", "10.0.0.1", "192.168.1.1", "example.com", "128.0.0.1", ""}) {
    EXPECT_FALSE(IsLoopbackHost(other)) << other;
  }
}

TEST(EnvOr, PrefersNonEmptyEnvironment) {
  ::setenv("OCTO_TEST_ENV_OR", "from-env", 1);
  EXPECT_EQ(EnvOr("OCTO_TEST_ENV_OR", "fallback"), "from-env");
  ::setenv("OCTO_TEST_ENV_OR", "", 1);
  EXPECT_EQ(EnvOr("OCTO_TEST_ENV_OR", "fallback"), "fallback");
  ::setenv("OCTO_TEST_ENV_OR", "42", 1);
  EXPECT_EQ(EnvOrInt("OCTO_TEST_ENV_OR", 7), 42);
  ::setenv("OCTO_TEST_ENV_OR", "x", 1);
  EXPECT_EQ(EnvOrInt("OCTO_TEST_ENV_OR", 7), 7);
  ::unsetenv("OCTO_TEST_ENV_OR");
}

}  // namespace
}  // namespace octo
