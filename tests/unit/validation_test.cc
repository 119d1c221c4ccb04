#include "services/common/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace octo {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ValidateWebhookUrl, AcceptsAbsoluteHttpAndHttps) {
  EXPECT_TRUE(ValidateWebhookUrl("https://example.com/webhooks").ok());
  EXPECT_TRUE(ValidateWebhookUrl("http://example.com").ok());
  EXPECT_TRUE(ValidateWebhookUrl("HTTPS://Example.COM:8443/a?b=c#frag").ok());
  EXPECT_TRUE(ValidateWebhookUrl("https://user:pass@example.com/webook").ok());
  EXPECT_TRUE(ValidateWebhookUrl("https://[2001:db8::1]:443/x").ok());
  EXPECT_TRUE(ValidateWebhookUrl("https://example.com./x").ok());
  EXPECT_TRUE(ValidateWebhookUrl("https://a%40b:p%3A@example.com/").ok());
}

TEST(ValidateWebhookUrl, RejectsEverythingElseNamingTheField) {
  for (const char* bad :
       {"", "/relative/path", "example.com/x", "ftp://example.com/", "javascript:alert(1)", "https://",
        "https:///path", "https://exa mple.com/", "https://example.com/a b", "https://example.com:0/",
        "https://example.com:65536/", "https://example.com:/", "https://example.com:80x/", "https://-bad-.com/",
        "https://[::1/", "https://exa\nmple.com/", "https://ex\xc3\xa4mple.com/", "https://user@/"}) {
    const absl::Status status = ValidateWebhookUrl(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), testing::StartsWith("url: ")) << bad;
  }
}

TEST(ValidateWebhookUrl, LengthLimitIs2048Bytes) {
  const std::string prefix = "https://example.com/";
  EXPECT_TRUE(ValidateWebhookUrl(prefix + std::string(kMaxUrlBytes - prefix.size(), 'a')).ok());
  EXPECT_FALSE(ValidateWebhookUrl(prefix + std::string(kMaxUrlBytes - prefix.size() + 1, 'a')).ok());
}

TEST(ValidateWebhookEvent, OnlyTheFourOctoEvents) {
  for (const auto& event : WebhookEvents()) EXPECT_TRUE(ValidateWebhookEvent(event).ok()) << event;
  EXPECT_EQ(WebhookEvents().size(), 4u);
  for (const char* bad : {"", "BOOKING_UPDATE", "booking_updated", "webhook_test", " booking_update"}) {
    EXPECT_THAT(std::string(ValidateWebhookEvent(bad).message()), HasSubstr("event: ")) << bad;
  }
}

TEST(ValidateWebhookHeaders, AcceptsOrdinaryHeaders) {
  EXPECT_TRUE(ValidateWebhookHeaders({}).ok());
  EXPECT_TRUE(ValidateWebhookHeaders({{"Authorization", "Bearer abc"}, {"X-Api-Key", "k\tv"}, {"X-Empty", ""}}).ok());
}

TEST(ValidateWebhookHeaders, RejectsReservedNames) {
  for (const char* name : {"Host", "content-length", "Transfer-Encoding", "CONNECTION",
                           "webhook-id", "Webhook-Signature", "webhook-timestamp", "Upgrade", "TE"}) {
    const absl::Status status = ValidateWebhookHeaders({{name, "x"}});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(status.message()), HasSubstr("reserved")) << name;
  }
}

TEST(ValidateWebhookHeaders, ContentTypeOnlyAsTheJsonThatIsSentAnyway) {
  for (const char* value : {"application/json", "Application/JSON", " application/json ",
                            "application/json; charset=utf-8", "application/json;charset=\"UTF-8\""}) {
    EXPECT_TRUE(ValidateWebhookHeaders({{"Content-Type", value}}).ok()) << value;
    EXPECT_TRUE(ValidateWebhookHeaders({{"content-type", value}}).ok()) << value;
  }
  for (const char* value : {"text/plain", "application/xml", "application/json; charset=latin1",
                            "application/json; boundary=x", "application/json; charset=utf-8; x=y",
                            "application/jsonx", ""}) {
    const absl::Status status = ValidateWebhookHeaders({{"Content-Type", value}});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << value;
    EXPECT_THAT(std::string(status.message()), HasSubstr("can only be application/json")) << value;
    EXPECT_THAT(std::string(status.message()), HasSubstr("every delivery is a JSON body")) << value;
  }
}

TEST(ValidateWebhookHeaders, RejectsBadNamesAndValuesWithoutEchoingValues) {
  EXPECT_FALSE(ValidateWebhookHeaders({{"Bad Name", "x"}}).ok());
  EXPECT_FALSE(ValidateWebhookHeaders({{"Bad:Name", "x"}}).ok());
  EXPECT_FALSE(ValidateWebhookHeaders({{"", "x"}}).ok());
  EXPECT_FALSE(ValidateWebhookHeaders({{"X-A", "x"}, {"x-a", "y"}}).ok());
  for (const std::string& value : {std::string("a\rb"), std::string("a\nb"), std::string("a\0b", 3),
                                  std::string("a\x01secret")}) {
    const absl::Status status = ValidateWebhookHeaders({{"X-Token", value}});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), testing::Not(HasSubstr("secret")));
  }
}

TEST(ValidateWebhookHeaders, BoundsCountAndSize) {
  std::map<std::string, std::string> many;
  for (std::size_t i = 0; i <= kMaxHeaderCount; ++i) many[absl::StrCat("X-H", i)] = "v";
  EXPECT_FALSE(ValidateWebhookHeaders(many).ok());
  EXPECT_FALSE(ValidateWebhookHeaders({{"X-Big", std::string(kMaxHeaderValueBytes + 1, 'v')}}).ok());
  EXPECT_FALSE(ValidateWebhookHeaders({{std::string(kMaxHeaderNameBytes + 1, 'n'), "v"}}).ok());
  std::map<std::string, std::string> large;
  for (int i = 0; i < 5; ++i) large[absl::StrCat("X-L", i)] = std::string(kMaxHeaderValueBytes - 10, 'v');
  EXPECT_FALSE(ValidateWebhookHeaders(large).ok());
}

TEST(ParseCapabilitiesHeader, SplitsTrimsAndDeduplicates) {
  auto parsed = ParseCapabilitiesHeader(" octo/pricing,octo/content , ,octo/pricing,ventrata/checkin");
  ASSERT_TRUE(parsed.ok());
  EXPECT_THAT(*parsed, ElementsAre("octo/pricing", "octo/content", "ventrata/checkin"));
  EXPECT_TRUE(ParseCapabilitiesHeader("")->empty());
}

TEST(ParseCapabilitiesHeader, RejectsMalformedIds) {
  for (const char* bad : {"pricing", "/pricing", "octo/", "octo/pri cing", "octo/pricing;q=1", "octo/\xc3\xa4"}) {
    EXPECT_EQ(ParseCapabilitiesHeader(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  std::string many;
  for (std::size_t i = 0; i <= kMaxCapabilities; ++i) absl::StrAppend(&many, "v/c", i, ",");
  EXPECT_FALSE(ParseCapabilitiesHeader(many).ok());
}

TEST(ValidateCapabilities, RejectsDuplicatesAndMalformed) {
  EXPECT_TRUE(ValidateCapabilities({"octo/pricing", "octo/content"}).ok());
  EXPECT_FALSE(ValidateCapabilities({"octo/pricing", "octo/pricing"}).ok());
  EXPECT_FALSE(ValidateCapabilities({"nope"}).ok());
}

TEST(IsUuid, CanonicalFormOnly) {
  EXPECT_TRUE(IsUuid("89fe0192-ddcd-430a-b285-e1396a4725d2"));
  EXPECT_TRUE(IsUuid("89FE0192-DDCD-430A-B285-E1396A4725D2"));
  EXPECT_FALSE(IsUuid("89fe0192ddcd430ab285e1396a4725d2"));
  EXPECT_FALSE(IsUuid("89fe0192-ddcd-430a-b285-e1396a4725dz"));
  EXPECT_FALSE(IsUuid("octohook_123"));
  EXPECT_FALSE(IsUuid(""));
}

TEST(IsHttpToken, Rfc9110) {
  EXPECT_TRUE(IsHttpToken("X-Custom_Header.1~"));
  EXPECT_FALSE(IsHttpToken("X Custom"));
  EXPECT_FALSE(IsHttpToken("X(Custom)"));
  EXPECT_FALSE(IsHttpToken(""));
}

TEST(MaskUrlCredentials, MasksPasswordKeepsUser) {
  EXPECT_EQ(MaskUrlCredentials("https://user:pass@example.com/webook"), "https://user:***@example.com/webook");
  EXPECT_EQ(MaskUrlCredentials("https://user:p%40ss@example.com:8443/a?x=@y"),
            "https://user:***@example.com:8443/a?x=@y");
}

TEST(MaskUrlCredentials, MasksALoneUserPartWhole) {
  EXPECT_EQ(MaskUrlCredentials("https://tokenonly@example.com/"), "https://***@example.com/");
}

TEST(MaskUrlCredentials, LeavesUrlsWithoutCredentialsAlone) {
  EXPECT_EQ(MaskUrlCredentials("https://example.com/a@b"), "https://example.com/a@b");
  EXPECT_EQ(MaskUrlCredentials("https://example.com?q=a@b"), "https://example.com?q=a@b");
  EXPECT_EQ(MaskUrlCredentials("not a url"), "not a url");
}

}  // namespace
}  // namespace octo

namespace octo {
namespace {

TEST(ValidateWebhookDestination, RefusesEveryNonPublicLiteralSpelling) {
  const DestinationPolicy production;
  for (const char* url : {"http://127.0.0.1/", "https://127.0.0.1:8443/hook", "http://[::1]/", "http://[::1]:80/x",
                          "http://10.255.255.1/", "http://169.254.169.254/latest/meta-data/",
                          "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[64:ff9b::7f00:1]/",
                          "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://0x7f000001/",
                          "http://127.1/", "http://127.0.0.1./", "http://user:pw@192.168.1.1:8080/a?b#c",
                          "http://0/", "http://[fd00:ec2::254]/", "http://100.64.0.1/", "http://localhost/",
                          "http://LOCALHOST.:8080/", "http://api.localhost/", "http://224.0.0.1/",
                          "http://255.255.255.255/", "http://198.18.0.1/", "http://203.0.113.9/"}) {
    const absl::Status s = ValidateWebhookDestination(url, production);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_TRUE(absl::StartsWith(s.message(), "url: must not point at a non-public address")) << url << ": " << s;
  }
  EXPECT_EQ(ValidateWebhookDestination("http://2130706433/", production).message(),
            "url: must not point at a non-public address: 127.0.0.1 is a loopback address (127.0.0.0/8); "
            "webhooks are delivered over the internet only");
}

TEST(ValidateWebhookDestination, AcceptsPublicAddressesAndHostNames) {
  const DestinationPolicy production;
  for (const char* url : {"https://hooks.example.com/x", "http://8.8.8.8/", "http://[2606:4700:4700::1111]/",
                          "https://134744072/", "https://user:pw@example.com:8443/", "http://localhost.example.com/"}) {
    EXPECT_TRUE(ValidateWebhookDestination(url, production).ok()) << url;
  }
}

TEST(ValidateWebhookDestination, RefusesMalformedNumericHosts) {
  const DestinationPolicy production;
  for (const char* url : {"http://1.2.3.256/", "http://1.2.3.4.5/", "http://08.0.0.1/", "http://example.123/"}) {
    const absl::Status s = ValidateWebhookDestination(url, production);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_TRUE(absl::StartsWith(s.message(), "url: has an invalid IPv4 address")) << url << ": " << s;
  }
}

TEST(ValidateWebhookDestination, TheAllowListOpensItsRanges) {
  const absl::StatusOr<DestinationPolicy> loopback = DestinationPolicy::Parse("127.0.0.0/8,::1/128");
  ASSERT_TRUE(loopback.ok());
  for (const char* url : {"http://127.0.0.1:8080/", "http://[::1]/", "http://localhost:9/", "http://127.1/",
                          "http://[::ffff:127.0.0.1]/"}) {
    EXPECT_TRUE(ValidateWebhookDestination(url, *loopback).ok()) << url;
  }
  EXPECT_FALSE(ValidateWebhookDestination("http://10.0.0.1/", *loopback).ok());
  // localhost means both loopback addresses: both must be allowed.
  const absl::StatusOr<DestinationPolicy> v4_only = DestinationPolicy::Parse("127.0.0.0/8");
  ASSERT_TRUE(v4_only.ok());
  EXPECT_FALSE(ValidateWebhookDestination("http://localhost/", *v4_only).ok());
}

}  // namespace
}  // namespace octo
