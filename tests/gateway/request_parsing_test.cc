#include "gateway/request_parsing.h"

#include <boost/beast/http/fields.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "gateway/http_types.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace v1 = octo::webhooks::v1;

// The status message of a parse that must fail.
template <typename T>
std::string ErrorOf(const absl::StatusOr<T>& result) {
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(result.status().message());
}

TEST(ParseCreateWebhookBody, AcceptsAllFields) {
  absl::StatusOr<v1::CreateWebhookRequest> r = ParseCreateWebhookBody(R"({
    "url": "https://user:pass@example.com/hook", "event": "booking_update",
    "retryOnError": false, "useContactLanguage": true,
    "headers": {"X-Token": "abc", "X-Other": ""}, "capabilities": ["octo/pricing"]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->url(), "https://user:pass@example.com/hook");
  EXPECT_EQ(r->event(), "booking_update");
  ASSERT_TRUE(r->has_retry_on_error());
  EXPECT_FALSE(r->retry_on_error());
  ASSERT_TRUE(r->has_use_contact_language());
  EXPECT_TRUE(r->use_contact_language());
  EXPECT_EQ(r->headers().size(), 2u);
  EXPECT_EQ(r->headers().at("X-Token"), "abc");
  // Body capabilities are checked, then ignored: the header decides.
  EXPECT_TRUE(r->capabilities().empty());
  EXPECT_TRUE(r->connection_id().empty());
}

TEST(ParseCreateWebhookBody, LeavesAbsentFlagsUnset) {
  absl::StatusOr<v1::CreateWebhookRequest> r =
      ParseCreateWebhookBody(R"({"url":"https://example.com","event":"order_update"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_retry_on_error());
  EXPECT_FALSE(r->has_use_contact_language());
  EXPECT_TRUE(r->headers().empty());
}

TEST(ParseCreateWebhookBody, RequiresUrlAndEvent) {
  EXPECT_EQ(ErrorOf(ParseCreateWebhookBody(R"({"event":"booking_update"})")), "url: is required");
  EXPECT_EQ(ErrorOf(ParseCreateWebhookBody(R"({"url":"https://example.com"})")),
            "event: is required");
}

TEST(ParseCreateWebhookBody, RejectsMalformedJson) {
  EXPECT_NE(ErrorOf(ParseCreateWebhookBody("")).find("not valid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseCreateWebhookBody("{\"url\":")).find("not valid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseCreateWebhookBody("{} trailing")).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ParseCreateWebhookBody("{'url':1}")).find("not valid JSON"), std::string::npos);
  // Invalid UTF-8 inside a string.
  EXPECT_NE(ErrorOf(ParseCreateWebhookBody("{\"url\":\"\xff\"}")).find("not valid JSON"),
            std::string::npos);
  // Nesting beyond Boost.JSON's depth limit is an error, not a crash.
  EXPECT_NE(ErrorOf(ParseCreateWebhookBody(std::string(10000, '['))).find("not valid JSON"),
            std::string::npos);
}

TEST(ParseCreateWebhookBody, RejectsNonObjects) {
  for (const char* body : {"[]", "\"x\"", "1", "null", "true"}) {
    EXPECT_EQ(ErrorOf(ParseCreateWebhookBody(body)), "The request body must be a JSON object")
        << body;
  }
}

TEST(ParseCreateWebhookBody, NamesTheFieldOfAWrongType) {
  const std::string base = R"("url":"https://example.com","event":"booking_update")";
  const auto parse = [&](const std::string& extra) {
    return ParseCreateWebhookBody(absl::StrCat("{", base, ",", extra, "}"));
  };
  EXPECT_EQ(ErrorOf(ParseCreateWebhookBody(R"({"url":1,"event":"booking_update"})")),
            "url: must be a string");
  EXPECT_EQ(ErrorOf(ParseCreateWebhookBody(R"({"url":"u","event":null})")),
            "event: must be a string");
  EXPECT_EQ(ErrorOf(parse(R"("retryOnError":"yes")")), "retryOnError: must be a boolean");
  EXPECT_EQ(ErrorOf(parse(R"("useContactLanguage":1)")), "useContactLanguage: must be a boolean");
  EXPECT_EQ(ErrorOf(parse(R"("headers":[])")), "headers: must be an object of strings");
  EXPECT_EQ(ErrorOf(parse(R"("headers":{"X-A":1})")), "headers.X-A: must be a string");
  EXPECT_EQ(ErrorOf(parse(R"("capabilities":"octo/pricing")")),
            "capabilities: must be an array of strings");
  EXPECT_EQ(ErrorOf(parse(R"("capabilities":[1])")), "capabilities: must be an array of strings");
}

TEST(ParseCreateWebhookBody, RejectsUnknownFieldsByName) {
  const std::string message =
      ErrorOf(ParseCreateWebhookBody(R"({"url":"u","event":"e","secret":"whsec_x"})"));
  EXPECT_NE(message.find("Unknown field 'secret'"), std::string::npos) << message;
  // snake_case is not the OCTO shape.
  EXPECT_NE(ErrorOf(ParseCreateWebhookBody(R"({"url":"u","event":"e","retry_on_error":true})"))
                .find("'retry_on_error'"),
            std::string::npos);
}

TEST(ParseCreateWebhookBody, TruncatesAnEchoedFieldNameOnACharacterBoundary) {
  std::string name = "a";
  for (int i = 0; i < 60; ++i) name += "\xc3\xa9";  // "é", 2 bytes each
  const std::string message = ErrorOf(ParseCreateWebhookBody(absl::StrCat("{\"", name, "\":1}")));
  // Byte 100 would split an "é": the echo stops before it.
  EXPECT_NE(message.find(absl::StrCat("'", name.substr(0, 99), "'")), std::string::npos) << message;
}

TEST(ParseUpdateWebhookBody, SetsOnlyPresentFields) {
  absl::StatusOr<v1::UpdateWebhookRequest> r =
      ParseUpdateWebhookBody(R"({"event":"order_update"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->has_event());
  EXPECT_FALSE(r->has_url());
  EXPECT_FALSE(r->has_retry_on_error());
  EXPECT_FALSE(r->has_use_contact_language());
  EXPECT_FALSE(r->has_headers());
}

TEST(ParseUpdateWebhookBody, EmptyHeadersReplaceAll) {
  absl::StatusOr<v1::UpdateWebhookRequest> r = ParseUpdateWebhookBody(R"({"headers":{}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->has_headers());
  EXPECT_TRUE(r->headers().values().empty());
}

TEST(ParseUpdateWebhookBody, AcceptsAnEmptyObjectAndChecksTypes) {
  EXPECT_TRUE(ParseUpdateWebhookBody("{}").ok());
  EXPECT_EQ(ErrorOf(ParseUpdateWebhookBody(R"({"retryOnError":null})")),
            "retryOnError: must be a boolean");
  EXPECT_NE(ErrorOf(ParseUpdateWebhookBody(R"({"id":"x"})")).find("Unknown field 'id'"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(ParseUpdateWebhookBody("[]")), "The request body must be a JSON object");
}

TEST(ParseWebhookBody, TakesTheLimitExtensions) {
  absl::StatusOr<v1::CreateWebhookRequest> c = ParseCreateWebhookBody(
      R"({"url":"https://x.test/h","event":"booking_update","rateLimitPerSecond":2.5,"maxConcurrency":4})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rate_limit_per_second(), 2.5);
  EXPECT_EQ(c->max_concurrency(), 4);
  absl::StatusOr<v1::UpdateWebhookRequest> u = ParseUpdateWebhookBody(R"({"rateLimitPerSecond":10})");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->has_rate_limit_per_second());
  EXPECT_EQ(u->rate_limit_per_second(), 10);
  EXPECT_FALSE(u->has_max_concurrency());
  EXPECT_FALSE(ParseUpdateWebhookBody("{}")->has_rate_limit_per_second());
  EXPECT_EQ(ErrorOf(ParseUpdateWebhookBody(R"({"rateLimitPerSecond":"1"})")),
            "rateLimitPerSecond: must be a number");
  for (const char* body : {R"({"maxConcurrency":1.5})", R"({"maxConcurrency":-1})",
                           R"({"maxConcurrency":4294967297})", R"({"maxConcurrency":null})"}) {
    EXPECT_EQ(ErrorOf(ParseUpdateWebhookBody(body)), "maxConcurrency: must be an integer between 0 and 10000")
        << body;
  }
}

TEST(ParseWebhookBody, TakesOrderedAsABooleanOnly) {
  absl::StatusOr<v1::CreateWebhookRequest> c =
      ParseCreateWebhookBody(R"({"url":"https://x.test/h","event":"booking_update","ordered":true})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->has_ordered());
  EXPECT_TRUE(c->ordered());
  EXPECT_FALSE(ParseCreateWebhookBody(R"({"url":"https://x.test/h","event":"booking_update"})")->has_ordered());
  absl::StatusOr<v1::UpdateWebhookRequest> u = ParseUpdateWebhookBody(R"({"ordered":false})");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->has_ordered());
  EXPECT_FALSE(u->ordered());
  EXPECT_FALSE(ParseUpdateWebhookBody("{}")->has_ordered());
  for (const char* body : {R"({"ordered":"true"})", R"({"ordered":1})", R"({"ordered":null})",
                           R"({"ordered":[true]})"}) {
    EXPECT_EQ(ErrorOf(ParseUpdateWebhookBody(body)), "ordered: must be a boolean") << body;
    EXPECT_EQ(ErrorOf(ParseCreateWebhookBody(
                  absl::StrCat(R"({"url":"https://x.test/h","event":"booking_update",)", std::string(body).substr(1)))),
              "ordered: must be a boolean")
        << body;
  }
}

TEST(IsJsonContentType, AcceptsJsonWithUtf8Charset) {
  EXPECT_TRUE(IsJsonContentType("application/json"));
  EXPECT_TRUE(IsJsonContentType("Application/JSON"));
  EXPECT_TRUE(IsJsonContentType("application/json; charset=utf-8"));
  EXPECT_TRUE(IsJsonContentType("application/json;charset=\"UTF-8\""));
  EXPECT_TRUE(IsJsonContentType(" application/json ; "));
}

TEST(IsJsonContentType, RejectsOtherTypesAndCharsets) {
  EXPECT_FALSE(IsJsonContentType(""));
  // A missing header: Beast answers fields[] with a null view.
  EXPECT_FALSE(IsJsonContentType(std::string_view()));
  HttpRequest without_type(http::verb::post, "/dashboard/api/login", 11);
  const auto type = without_type[http::field::content_type];
  EXPECT_FALSE(IsJsonContentType(std::string_view(type.data(), type.size())));
  EXPECT_FALSE(IsJsonContentType("text/plain"));
  EXPECT_FALSE(IsJsonContentType("application/x-www-form-urlencoded"));
  EXPECT_FALSE(IsJsonContentType("application/jsonx"));
  EXPECT_FALSE(IsJsonContentType("application/json; charset=latin1"));
  EXPECT_FALSE(IsJsonContentType("application/json; garbage"));
}

TEST(ParseBearerKey, ExtractsTheKey) {
  EXPECT_EQ(ParseBearerKey("Bearer octo_abc-_1").value(), "octo_abc-_1");
  EXPECT_EQ(ParseBearerKey("bearer   key").value(), "key");
  EXPECT_EQ(ParseBearerKey("BEARER key ").value(), "key");
}

TEST(ParseBearerKey, RejectsMalformedValues) {
  for (const char* value : {"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearerkey",
                            "Bearer a b", "Bearer a\x01", "Token abc"}) {
    EXPECT_FALSE(ParseBearerKey(value).ok()) << value;
  }
  EXPECT_FALSE(ParseBearerKey("Bearer " + std::string(513, 'k')).ok());
  EXPECT_TRUE(ParseBearerKey("Bearer " + std::string(512, 'k')).ok());
}

TEST(Capabilities, JoinsAndEchoesTheHeader) {
  EXPECT_EQ(JoinCapabilities({}), "");
  EXPECT_EQ(JoinCapabilities({"octo/pricing", "octo/content"}), "octo/pricing, octo/content");

  boost::beast::http::fields fields;
  EXPECT_EQ(CapabilitiesEcho(fields), "");
  fields.insert("Octo-Capabilities", " octo/pricing ,octo/content,octo/pricing");
  EXPECT_EQ(CapabilitiesEcho(fields), "octo/pricing, octo/content");
  // Repeated header fields form one list.
  fields.insert("Octo-Capabilities", "octo/offers");
  EXPECT_EQ(CapabilitiesEcho(fields), "octo/pricing, octo/content, octo/offers");
  ASSERT_TRUE(RequestCapabilities(fields).ok());
  EXPECT_EQ(RequestCapabilities(fields)->size(), 3u);
}

TEST(Capabilities, InvalidHeaderIsAnErrorAndEchoesNothing) {
  boost::beast::http::fields fields;
  fields.insert("Octo-Capabilities", "not a capability!");
  EXPECT_FALSE(RequestCapabilities(fields).ok());
  EXPECT_EQ(CapabilitiesEcho(fields), "");
}

}  // namespace
}  // namespace octo::gateway
