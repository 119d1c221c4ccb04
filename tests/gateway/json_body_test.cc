// The gateway's JSON in and out: repeated members refused in every body,
// numbers written as people write them.
#include "gateway/json_body.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/operations_json.h"
#include "gateway/request_parsing.h"
#include "gateway/webhook_json.h"

namespace octo::gateway {
namespace {

using ::testing::HasSubstr;

TEST(FindRepeatedMember, FindsItAtAnyDepthAndOnlyWithinOneObject) {
  EXPECT_FALSE(FindRepeatedMember(R"({"a":1,"b":2})").found);
  EXPECT_FALSE(FindRepeatedMember(R"([{"a":1},{"a":2}])").found);
  EXPECT_FALSE(FindRepeatedMember(R"({"a":{"a":{"a":1}}})").found);
  EXPECT_FALSE(FindRepeatedMember(R"({"a":"a","b":["a","a"]})").found);
  EXPECT_EQ(FindRepeatedMember(R"({"a":1,"a":2})").name, "a");
  EXPECT_EQ(FindRepeatedMember(R"({"x":[{"k":1,"j":{},"k":2}]})").name, "k");
  EXPECT_EQ(FindRepeatedMember(R"({"h":{"X":"1","b":"\"x\"","X":"2"}})").name, "X");
  // Escapes are decoded before comparing: "\u0061" is "a".
  EXPECT_EQ(FindRepeatedMember(R"({"a":1,"\u0061":2})").name, "a");
  EXPECT_FALSE(FindRepeatedMember(R"({"a\"":1,"a":2})").found);
}

TEST(ParseJsonBody, RefusesRepeatedMembersAndInvalidJson) {
  EXPECT_TRUE(ParseJsonBody(R"({"a":[1,2],"b":{"c":null}})").ok());
  const absl::Status repeated = ParseJsonBody(R"({"url":"https://a.test","url":"https://b.test"})").status();
  EXPECT_EQ(repeated.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(repeated.message()), HasSubstr("'url' is given twice"));
  EXPECT_EQ(ParseJsonBody("{").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseJsonBody, EveryBodyTheGatewayParsesRefusesThem) {
  EXPECT_THAT(std::string(ParseCreateWebhookBody(
                              R"({"url":"https://x.test/h","event":"booking_update","event":"order_update"})")
                              .status()
                              .message()),
              HasSubstr("'event' is given twice"));
  EXPECT_FALSE(ParseUpdateWebhookBody(R"({"headers":{"X-A":"1","X-A":"2"}})").ok());
  EXPECT_THAT(std::string(ParseReplayBody(R"({"since":"2026-01-01T00:00:00Z","since":"x"})").status().message()),
              HasSubstr("given twice"));
}

// Known from the fuzz targets (they skipped it until ParseJsonText):
// Boost 1.81 reads a zero with an exponent above 308 as NaN. A body reads it
// as the zero it is, so it survives JsonText and reaches the service as 0.
TEST(ParseJsonBody, AZeroWithAHugeExponentIsZeroNotNaN) {
  const absl::StatusOr<boost::json::value> body = ParseJsonBody(R"({"a":[0e400,-0E+999]})");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(JsonText(*body), R"({"a":[0.0,0.0]})");
  const auto create = ParseCreateWebhookBody(
      R"({"url":"https://x.test/h","event":"booking_update","rateLimitPerSecond":0e400})");
  ASSERT_TRUE(create.ok()) << create.status();
  ASSERT_TRUE(create->has_rate_limit_per_second());
  EXPECT_EQ(create->rate_limit_per_second(), 0.0);
}

TEST(JsonText, NumbersAsPeopleWriteThem) {
  boost::json::object o;
  o["rate"] = 2.5;
  o["tenth"] = 0.1;
  o["whole"] = 100.0;
  o["count"] = 3;
  EXPECT_EQ(JsonText(o), R"({"rate":2.5,"tenth":0.1,"whole":100.0,"count":3})");
  octo::webhooks::v1::Webhook webhook;
  webhook.set_rate_limit_per_second(2.5);
  EXPECT_THAT(JsonText(WebhookToJson(webhook)), HasSubstr(R"("rateLimitPerSecond":2.5)"));
}

}  // namespace
}  // namespace octo::gateway
