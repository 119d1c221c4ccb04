// SplitWebhookUrl, and the urls where our reading and libcurl's differed
// (found by tests/fuzz/fuzz_webhook_url): each is now refused, since a url
// that libcurl reads differently, or not at all, must not be accepted.
#include <gtest/gtest.h>

#include "services/common/validation.h"

namespace octo {
namespace {

TEST(SplitWebhookUrl, SchemeLowerCaseHostAndPortAsWritten) {
  absl::StatusOr<WebhookUrlParts> parts = SplitWebhookUrl("HTTPS://user:pw@Example.COM:0443/a?b#c");
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->scheme, "https");
  EXPECT_EQ(parts->host, "Example.COM");
  EXPECT_EQ(parts->port, "0443");
  EXPECT_TRUE(parts->port_given);
}

TEST(SplitWebhookUrl, Ipv6HostKeepsItsBrackets) {
  absl::StatusOr<WebhookUrlParts> parts = SplitWebhookUrl("http://[2001:db8::1]:8080/");
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->host, "[2001:db8::1]");
  EXPECT_EQ(parts->port, "8080");
}

TEST(SplitWebhookUrl, NoPort) {
  absl::StatusOr<WebhookUrlParts> parts = SplitWebhookUrl("http://example.com?x=1:2");
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->host, "example.com");
  EXPECT_EQ(parts->port, "");
  EXPECT_FALSE(parts->port_given);
}

TEST(SplitWebhookUrl, RefusesWhatHasNoOneReading) {
  for (const char* bad : {"example.com", "http://[::1", "http://[::1]x/", "http://a@b@example.com/"}) {
    const absl::StatusOr<WebhookUrlParts> parts = SplitWebhookUrl(bad);
    EXPECT_EQ(parts.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// libcurl refuses a second '@' in the authority; WHATWG parsers take the
// last one as the end of the user information. We took the last one too.
TEST(WebhookUrlFuzzFindings, AnAtSignInTheUserInformationIsRefused) {
  const absl::Status status = ValidateWebhookUrl("http://u@evil.test@good.test/");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "url: has an '@' in its user information (percent-encode it as %40)");
  EXPECT_TRUE(ValidateWebhookUrl("http://u%40evil.test@good.test/").ok());
}

// Bracketed hosts were checked for hex digits, ':' and '.' only; libcurl
// (inet_pton) refuses these, so every delivery would have failed.
TEST(WebhookUrlFuzzFindings, ABracketedHostMustBeAnIpv6Address) {
  for (const char* bad : {"http://[1:2]/", "http://[1.2.3.4]/", "http://[:::]/", "http://[::1::]/"}) {
    const absl::Status status = ValidateWebhookUrl(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(status.message(), "url: has an invalid host") << bad;
  }
  for (const char* good : {"http://[::1]/", "http://[::ffff:127.0.0.1]:8080/", "http://[0:0:0:0:0:0:0:1]/"}) {
    EXPECT_TRUE(ValidateWebhookUrl(good).ok()) << good;
  }
}

}  // namespace
}  // namespace octo
