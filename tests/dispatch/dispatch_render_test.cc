// A claimed delivery -> its HTTP request: headers, URL, body, signature.
#include "services/delivery/dispatch_render.h"

#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "services/delivery/payload/render.h"
#include "services/delivery/payload/signing.h"

namespace octo::delivery {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kDeliveryId[] = "6F1C2A3B-4D5E-4F60-8172-93A4B5C6D7E8";

ClaimedEvent BookingEvent() {
  ClaimedEvent e;
  e.id = "00000000-0000-4000-8000-000000000001";
  e.event = "booking_update";
  e.resource_kind = "booking";
  e.resource_json =
      R"({"uuid":"b-1","status":"CONFIRMED","contact":{"fullName":"Ana","locales":["de-AT","en"]},)"
      R"("pricing":{"retail":1000}})";
  e.localized_json = R"({"de":{"uuid":"b-1","status":"BESTÄTIGT","pricing":{"retail":1000}}})";
  e.diff_json = R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}])";
  return e;
}

ClaimedDelivery Delivery() {
  ClaimedDelivery d;
  d.id = kDeliveryId;
  d.attempt_count = 0;
  d.lease_us = 1;
  d.event_id = "00000000-0000-4000-8000-000000000001";
  d.webhook_id = "11111111-2222-4333-8444-555555555555";
  d.webhook_event = "booking_update";
  d.url = "https://hooks.example.com/octo?x=1";
  d.retry_on_error = true;
  d.use_contact_language = false;
  d.headers_json = R"({"X-Api-Key":"k-123","X-Empty":""})";
  d.capabilities_json = "[]";
  d.secret = kSecret;
  d.supplier_id = "sup-1";
  d.supplier_name = "Tours Ltd";
  d.supplier_endpoint = "https://api.tours.example/octo";
  d.supplier_contact_json = R"({"email":"ops@tours.example"})";
  return d;
}

OutgoingRequest Render(const ClaimedDelivery& d, const ClaimedEvent& e, int64_t ts = 1614265330) {
  absl::StatusOr<ParsedEvent> parsed = ParseClaimedEvent(e);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<OutgoingRequest> r = RenderRequest(d, *parsed, ts);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : OutgoingRequest{};
}

TEST(WebhookMessageId, UuidWithoutDashesLowerCase) {
  EXPECT_EQ(WebhookMessageId(kDeliveryId), "msg_6f1c2a3b4d5e4f60817293a4b5c6d7e8");
}

TEST(RenderRequest, HeadersInOrder) {
  const OutgoingRequest r = Render(Delivery(), BookingEvent());
  EXPECT_EQ(r.url, "https://hooks.example.com/octo?x=1");
  ASSERT_EQ(r.headers.size(), 7u);
  EXPECT_EQ(r.headers[0], "Content-Type: application/json");
  EXPECT_EQ(r.headers[1], std::string("User-Agent: octo-webhooks/") + OCTO_WEBHOOKS_VERSION);
  EXPECT_EQ(r.headers[2], "X-Api-Key: k-123");
  EXPECT_EQ(r.headers[3], "X-Empty;");  // libcurl's syntax for an empty value
  EXPECT_EQ(r.headers[4], "webhook-id: msg_6f1c2a3b4d5e4f60817293a4b5c6d7e8");
  EXPECT_EQ(r.headers[5], "webhook-timestamp: 1614265330");
  ASSERT_THAT(r.headers[6], HasSubstr("webhook-signature: v1,"));
  const std::string signature = r.headers[6].substr(std::string("webhook-signature: ").size());
  EXPECT_TRUE(payload::VerifySignatureHeader(signature, "msg_6f1c2a3b4d5e4f60817293a4b5c6d7e8", 1614265330,
                                             r.body, kSecret));
  EXPECT_FALSE(payload::VerifySignatureHeader(signature, "msg_6f1c2a3b4d5e4f60817293a4b5c6d7e8", 1614265331,
                                              r.body, kSecret));
}

// Secret rotation's grace period: the new secret's signature first, then
// the previous one's, each verifying with its own secret only.
TEST(RenderRequest, APreviousSecretAddsASecondSignature) {
  constexpr char kPrevious[] = "whsec_c2Vjb25kLXNlY3JldC1vZi10aGUtd2ViaG9vaw==";
  ClaimedDelivery d = Delivery();
  d.previous_secret = kPrevious;
  const OutgoingRequest r = Render(d, BookingEvent());
  ASSERT_EQ(r.headers.size(), 7u);
  const std::string header = r.headers[6].substr(std::string("webhook-signature: ").size());
  const std::vector<std::string> parts = absl::StrSplit(header, ' ');
  ASSERT_EQ(parts.size(), 2u) << header;
  const std::string id = "msg_6f1c2a3b4d5e4f60817293a4b5c6d7e8";
  EXPECT_TRUE(payload::VerifySignatureHeader(parts[0], id, 1614265330, r.body, kSecret));
  EXPECT_FALSE(payload::VerifySignatureHeader(parts[0], id, 1614265330, r.body, kPrevious));
  EXPECT_TRUE(payload::VerifySignatureHeader(parts[1], id, 1614265330, r.body, kPrevious));
  EXPECT_FALSE(payload::VerifySignatureHeader(parts[1], id, 1614265330, r.body, kSecret));
  // Without a previous secret (none, or its grace period over): one signature.
  const OutgoingRequest single = Render(Delivery(), BookingEvent());
  EXPECT_EQ(single.headers[6].find(' ', std::string("webhook-signature: ").size()), std::string::npos);
}

TEST(RenderRequest, BodyIsTheRenderedPayload) {
  const OutgoingRequest r = Render(Delivery(), BookingEvent());
  EXPECT_EQ(r.body,
            R"({"webhook":{"id":"11111111-2222-4333-8444-555555555555","event":"booking_update",)"
            R"("url":"https://hooks.example.com/octo?x=1","retryOnError":true,"useContactLanguage":false,)"
            R"("headers":{"X-Api-Key":"***","X-Empty":"***"},"capabilities":[]},)"
            R"("booking":{"uuid":"b-1","status":"CONFIRMED","contact":{"fullName":"Ana","locales":["de-AT","en"]}},)"
            R"("diff":[{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}],)"
            R"("supplier":{"id":"sup-1","name":"Tours Ltd","endpoint":"https://api.tours.example/octo",)"
            R"("contact":{"website":null,"email":"ops@tours.example","telephone":null,"address":null}}})");
}

TEST(RenderRequest, CapabilitiesKeepTheirFields) {
  ClaimedDelivery d = Delivery();
  d.capabilities_json = R"(["octo/pricing"])";
  const OutgoingRequest r = Render(d, BookingEvent());
  EXPECT_THAT(r.body, HasSubstr(R"("pricing":{"retail":1000})"));
  EXPECT_THAT(r.body, HasSubstr(R"("capabilities":["octo/pricing"])"));
}

TEST(RenderRequest, UrlCredentialsBecomeBasicAuthAndLeaveTheUrl) {
  ClaimedDelivery d = Delivery();
  d.url = "https://us%40er:p%3Ass@hooks.example.com/octo";
  d.headers_json = R"({"Authorization":"Bearer custom"})";
  const OutgoingRequest r = Render(d, BookingEvent());
  EXPECT_EQ(r.url, "https://hooks.example.com/octo");
  // base64("us@er:p:ss"); the webhook's own Authorization gives way.
  EXPECT_THAT(r.headers, testing::Contains("Authorization: Basic dXNAZXI6cDpzcw=="));
  EXPECT_THAT(r.headers, Not(testing::Contains("Authorization: Bearer custom")));
  EXPECT_THAT(r.body, HasSubstr(R"("url":"https://us%40er:***@hooks.example.com/octo")"));
  EXPECT_THAT(r.body, Not(HasSubstr("p%3Ass")));
}

TEST(RenderRequest, CustomAuthorizationWithoutUrlCredentials) {
  ClaimedDelivery d = Delivery();
  d.headers_json = R"({"Authorization":"Bearer custom"})";
  const OutgoingRequest r = Render(d, BookingEvent());
  EXPECT_THAT(r.headers, testing::Contains("Authorization: Bearer custom"));
}

TEST(RenderRequest, AStoredJsonContentTypeIsSentOnce) {
  ClaimedDelivery d = Delivery();
  d.headers_json = R"({"content-type":"Application/JSON; charset=utf-8"})";
  const OutgoingRequest r = Render(d, BookingEvent());
  int content_types = 0;
  for (const std::string& h : r.headers) content_types += absl::StartsWithIgnoreCase(h, "content-type:") ? 1 : 0;
  EXPECT_EQ(content_types, 1);
  EXPECT_EQ(r.headers[0], "Content-Type: application/json");
}

TEST(RenderRequest, TheWebhooksUserAgentWins) {
  ClaimedDelivery d = Delivery();
  d.headers_json = R"({"User-Agent":"partner-ua/1"})";
  const OutgoingRequest r = Render(d, BookingEvent());
  EXPECT_THAT(r.headers, ElementsAre("Content-Type: application/json", "User-Agent: partner-ua/1",
                                     HasSubstr("webhook-id: "), HasSubstr("webhook-timestamp: "),
                                     HasSubstr("webhook-signature: ")));
}

TEST(RenderRequest, ContactLanguageVariantWithContentLanguage) {
  ClaimedDelivery d = Delivery();
  d.use_contact_language = true;
  const OutgoingRequest r = Render(d, BookingEvent());
  EXPECT_THAT(r.headers, testing::Contains("Content-Language: de"));
  EXPECT_THAT(r.body, HasSubstr(R"("booking":{"uuid":"b-1","status":"BESTÄTIGT"})"));
  EXPECT_THAT(r.body, HasSubstr(R"("useContactLanguage":true)"));
}

TEST(RenderRequest, NoVariantForTheGuestMeansTheDefault) {
  ClaimedDelivery d = Delivery();
  d.use_contact_language = true;
  ClaimedEvent e = BookingEvent();
  e.localized_json = R"({"fr":{"uuid":"b-1","status":"CONFIRMÉ"}})";
  const OutgoingRequest r = Render(d, e);
  for (const std::string& h : r.headers) EXPECT_THAT(h, Not(HasSubstr("Content-Language")));
  EXPECT_THAT(r.body, HasSubstr(R"("status":"CONFIRMED")"));
}

TEST(RenderRequest, AvailabilityCarriesProductAndOption) {
  ClaimedEvent e;
  e.id = "00000000-0000-4000-8000-000000000001";
  e.event = "availability_update";
  e.resource_kind = "availability";
  e.resource_json = R"({"id":"2024-05-01T10:00:00+02:00","status":"AVAILABLE"})";
  e.localized_json = "{}";
  e.diff_json = "[]";
  e.product_id = "p-1";
  e.option_id = "DEFAULT";
  ClaimedDelivery d = Delivery();
  d.webhook_event = "availability_update";
  const OutgoingRequest r = Render(d, e);
  EXPECT_THAT(r.body, HasSubstr(R"("availability":{"id":"2024-05-01T10:00:00+02:00","status":"AVAILABLE"},)"
                                R"("productId":"p-1","optionId":"DEFAULT")"));
}

TEST(RenderRequest, UnsafeStoredHeadersAreNeverSent) {
  ClaimedDelivery d = Delivery();
  d.headers_json = R"({"X-Ok":"1","X-Bad":"a\r\nInjected: 1","Bad Name":"x"})";
  const OutgoingRequest r = Render(d, BookingEvent());
  EXPECT_THAT(r.headers, testing::Contains("X-Ok: 1"));
  for (const std::string& h : r.headers) {
    EXPECT_THAT(h, Not(HasSubstr("Injected")));
    EXPECT_THAT(h, Not(HasSubstr("Bad Name")));
  }
}

TEST(RenderRequest, MalformedStoredDataIsAnError) {
  ClaimedDelivery d = Delivery();
  d.secret = "whsec_!!!";
  absl::StatusOr<ParsedEvent> parsed = ParseClaimedEvent(BookingEvent());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(RenderRequest(d, *parsed, 1).status().code(), absl::StatusCode::kInvalidArgument);
  d = Delivery();
  d.headers_json = "[";
  EXPECT_EQ(RenderRequest(d, *parsed, 1).status().code(), absl::StatusCode::kInvalidArgument);
  ClaimedEvent e = BookingEvent();
  e.resource_kind = "ticket";
  EXPECT_EQ(ParseClaimedEvent(e).status().code(), absl::StatusCode::kInvalidArgument);
  e = BookingEvent();
  e.diff_json = "{}";
  EXPECT_EQ(ParseClaimedEvent(e).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace octo::delivery
