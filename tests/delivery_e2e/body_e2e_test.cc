// What a partner receives, byte for byte: the body of each event type with
// and without capabilities, supplied and computed diffs, language variants,
// URL credentials, custom headers, and the Standard Webhooks signature
// (checked in C++ and by the public npm package `standardwebhooks`).
//
// Expected bodies are literal strings written from the contract
// (docs/delivery.md, payload/render.h) and the capability table, not
// produced by the code under test.
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/delivery/payload/signing.h"
#include "tests/delivery_e2e/delivery_fixture.h"

namespace octo::delivery_e2e {
namespace {

// ---------------------------------------------------------- the resources --
// As the platform renders them, with every capability. {uuid} is replaced
// per test.

constexpr const char* kBooking =
    R"({"id":"bk-1001","uuid":"{uuid}","testMode":false,"resellerReference":"RES-1001","supplierReference":"TT-1001","status":"CONFIRMED","utcCreatedAt":"2024-05-25T10:34:22Z","utcConfirmedAt":"2024-05-25T10:35:00Z","productId":"prod-eye","product":{"id":"prod-eye","internalName":"Eye GA","title":"The Eye: General Admission","defaultCurrency":"GBP","availableCurrencies":["GBP","EUR"],"pricingPer":"UNIT","includeTax":true},"optionId":"DEFAULT","meetingPoint":"Gate 3","duration":"30 minutes","unitItems":[{"uuid":"ui-1","unitId":"adult","unit":{"id":"adult","internalName":"Adult","title":"Adult","restrictions":{"minAge":18,"maxHeight":200,"heightUnit":"cm"},"pricingFrom":[{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}]},"status":"CONFIRMED","pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}}],"contact":{"fullName":"Zoë Brontë","emailAddress":"zoe@example.com","locales":["en-GB"]},"notes":"Window seat \"please\" / thanks","latitude":51.5033,"pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP","currencyPrecision":2}})";
// No capabilities: octo/pricing, ventrata/content and octo/content fields gone.
constexpr const char* kBookingNoCaps =
    R"({"id":"bk-1001","uuid":"{uuid}","testMode":false,"resellerReference":"RES-1001","supplierReference":"TT-1001","status":"CONFIRMED","utcCreatedAt":"2024-05-25T10:34:22Z","utcConfirmedAt":"2024-05-25T10:35:00Z","productId":"prod-eye","product":{"id":"prod-eye","internalName":"Eye GA"},"optionId":"DEFAULT","unitItems":[{"uuid":"ui-1","unitId":"adult","unit":{"id":"adult","internalName":"Adult","restrictions":{"minAge":18}},"status":"CONFIRMED"}],"contact":{"fullName":"Zoë Brontë","emailAddress":"zoe@example.com","locales":["en-GB"]},"notes":"Window seat \"please\" / thanks","latitude":51.5033})";
// octo/pricing: pricing, unitItems[].pricing, unit.pricingFrom and the
// product's currency fields and includeTax (ProductPricing) stay.
constexpr const char* kBookingPricing =
    R"({"id":"bk-1001","uuid":"{uuid}","testMode":false,"resellerReference":"RES-1001","supplierReference":"TT-1001","status":"CONFIRMED","utcCreatedAt":"2024-05-25T10:34:22Z","utcConfirmedAt":"2024-05-25T10:35:00Z","productId":"prod-eye","product":{"id":"prod-eye","internalName":"Eye GA","defaultCurrency":"GBP","availableCurrencies":["GBP","EUR"],"pricingPer":"UNIT","includeTax":true},"optionId":"DEFAULT","unitItems":[{"uuid":"ui-1","unitId":"adult","unit":{"id":"adult","internalName":"Adult","restrictions":{"minAge":18},"pricingFrom":[{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}]},"status":"CONFIRMED","pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}}],"contact":{"fullName":"Zoë Brontë","emailAddress":"zoe@example.com","locales":["en-GB"]},"notes":"Window seat \"please\" / thanks","latitude":51.5033,"pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP","currencyPrecision":2}})";
// octo/content: its own fields (unit height restrictions) and, through the
// alias, the ventrata/content fields (titles, meetingPoint, duration) stay;
// includeTax is octo/pricing's alone (OCTO's ProductPricing).
constexpr const char* kBookingContent =
    R"({"id":"bk-1001","uuid":"{uuid}","testMode":false,"resellerReference":"RES-1001","supplierReference":"TT-1001","status":"CONFIRMED","utcCreatedAt":"2024-05-25T10:34:22Z","utcConfirmedAt":"2024-05-25T10:35:00Z","productId":"prod-eye","product":{"id":"prod-eye","internalName":"Eye GA","title":"The Eye: General Admission"},"optionId":"DEFAULT","meetingPoint":"Gate 3","duration":"30 minutes","unitItems":[{"uuid":"ui-1","unitId":"adult","unit":{"id":"adult","internalName":"Adult","title":"Adult","restrictions":{"minAge":18,"maxHeight":200,"heightUnit":"cm"}},"status":"CONFIRMED"}],"contact":{"fullName":"Zoë Brontë","emailAddress":"zoe@example.com","locales":["en-GB"]},"notes":"Window seat \"please\" / thanks","latitude":51.5033})";

constexpr const char* kOrder =
    R"({"id":"ord-3001","testMode":false,"supplierReference":"TT-O-3001","settlementMethod":"DEFERRED","status":"CONFIRMED","utcExpiresAt":null,"utcConfirmedAt":"2024-05-25T10:35:00Z","cancellable":true,"bookings":[{"id":"bk-3001","uuid":"b-3001","status":"CONFIRMED","productId":"prod-eye","optionId":"DEFAULT","meetingPoint":"Gate 3","unitItems":[{"uuid":"ui-31","unitId":"adult","pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}}],"pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}}],"contact":{"fullName":"Ravi Patel","emailAddress":"ravi@example.com","locales":["en"]},"termsAccepted":true,"pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}})";
constexpr const char* kOrderNoCaps =
    R"({"id":"ord-3001","testMode":false,"supplierReference":"TT-O-3001","settlementMethod":"DEFERRED","status":"CONFIRMED","utcExpiresAt":null,"utcConfirmedAt":"2024-05-25T10:35:00Z","cancellable":true,"bookings":[{"id":"bk-3001","uuid":"b-3001","status":"CONFIRMED","productId":"prod-eye","optionId":"DEFAULT","unitItems":[{"uuid":"ui-31","unitId":"adult"}]}],"contact":{"fullName":"Ravi Patel","emailAddress":"ravi@example.com","locales":["en"]}})";
constexpr const char* kOrderPricing =
    R"({"id":"ord-3001","testMode":false,"supplierReference":"TT-O-3001","settlementMethod":"DEFERRED","status":"CONFIRMED","utcExpiresAt":null,"utcConfirmedAt":"2024-05-25T10:35:00Z","cancellable":true,"bookings":[{"id":"bk-3001","uuid":"b-3001","status":"CONFIRMED","productId":"prod-eye","optionId":"DEFAULT","unitItems":[{"uuid":"ui-31","unitId":"adult","pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}}],"pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}}],"contact":{"fullName":"Ravi Patel","emailAddress":"ravi@example.com","locales":["en"]},"pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}})";

constexpr const char* kAvailability =
    R"({"id":"2024-06-01T10:00:00+01:00","localDateTimeStart":"2024-06-01T10:00:00+01:00","localDateTimeEnd":"2024-06-01T11:00:00+01:00","allDay":false,"available":true,"status":"LIMITED","vacancies":4,"capacity":40,"maxUnits":null,"utcCutoffAt":"2024-06-01T08:00:00Z","openingHours":[{"from":"10:00","to":"11:00","frequency":"15 minutes"}],"meetingPoint":"Gate 3","pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"},"unitPricing":[{"unitId":"adult","original":3000,"retail":3000,"net":2400,"currency":"GBP"}]})";
constexpr const char* kAvailabilityNoCaps =
    R"({"id":"2024-06-01T10:00:00+01:00","localDateTimeStart":"2024-06-01T10:00:00+01:00","localDateTimeEnd":"2024-06-01T11:00:00+01:00","allDay":false,"available":true,"status":"LIMITED","vacancies":4,"capacity":40,"maxUnits":null,"utcCutoffAt":"2024-06-01T08:00:00Z","openingHours":[{"from":"10:00","to":"11:00"}]})";
constexpr const char* kAvailabilityPricing =
    R"({"id":"2024-06-01T10:00:00+01:00","localDateTimeStart":"2024-06-01T10:00:00+01:00","localDateTimeEnd":"2024-06-01T11:00:00+01:00","allDay":false,"available":true,"status":"LIMITED","vacancies":4,"capacity":40,"maxUnits":null,"utcCutoffAt":"2024-06-01T08:00:00Z","openingHours":[{"from":"10:00","to":"11:00"}],"pricing":{"original":3000,"retail":3000,"net":2400,"currency":"GBP"},"unitPricing":[{"unitId":"adult","original":3000,"retail":3000,"net":2400,"currency":"GBP"}]})";

constexpr const char* kProduct =
    R"({"id":"prod-eye","internalName":"Eye GA","reference":"EYE-GA","locale":"en-GB","timeZone":"Europe/London","title":"The Eye","description":"<p>Views & more</p>","defaultCurrency":"GBP","availableCurrencies":["GBP"],"pricingPer":"UNIT","includeTax":true,"isRental":false,"options":[{"id":"DEFAULT","default":true,"internalName":"DEFAULT","units":[{"id":"adult","internalName":"Adult","restrictions":{"minAge":18,"maxWeight":120,"weightUnit":"kg"},"pricingFrom":[{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}]}],"pricingFrom":[{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}]}]})";
constexpr const char* kProductNoCaps =
    R"({"id":"prod-eye","internalName":"Eye GA","reference":"EYE-GA","locale":"en-GB","timeZone":"Europe/London","options":[{"id":"DEFAULT","default":true,"internalName":"DEFAULT","units":[{"id":"adult","internalName":"Adult","restrictions":{"minAge":18}}]}]})";
// octo/pricing + octo/content: only isRental (octo/rentals) goes.
constexpr const char* kProductPricingContent =
    R"({"id":"prod-eye","internalName":"Eye GA","reference":"EYE-GA","locale":"en-GB","timeZone":"Europe/London","title":"The Eye","description":"<p>Views & more</p>","defaultCurrency":"GBP","availableCurrencies":["GBP"],"pricingPer":"UNIT","includeTax":true,"options":[{"id":"DEFAULT","default":true,"internalName":"DEFAULT","units":[{"id":"adult","internalName":"Adult","restrictions":{"minAge":18,"maxWeight":120,"weightUnit":"kg"},"pricingFrom":[{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}]}],"pricingFrom":[{"original":3000,"retail":3000,"net":2400,"currency":"GBP"}]}]})";

class BodyE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() { StartStack({}); }
  static void TearDownTestSuite() { StopStack(); }

  std::string Supplier() const { return SupplierObject(tenant_, stack_->profile()); }
};

TEST_F(BodyE2eTest, BookingBodyWithAndWithoutCapabilities) {
  const CreatedWebhook none = Hook("booking_update", receiver_->Url("/none"));
  const CreatedWebhook pricing = Hook("booking_update", receiver_->Url("/pricing"), "", "octo/pricing");
  const CreatedWebhook content = Hook("booking_update", receiver_->Url("/content"), "", "octo/content");
  // Another event type of the same connection receives nothing.
  Hook("order_update", receiver_->Url("/order-hook"));
  const std::string uuid = NewUuid();
  const auto published =
      MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", uuid}}), NewKey("booking")));
  EXPECT_EQ(published.delivery_count(), 3);
  EXPECT_FALSE(published.duplicate());

  const ReceivedRequest got_none = OnlyRequest("/none");
  EXPECT_EQ(got_none.target, "/none");
  EXPECT_EQ(got_none.body, Body(WebhookObject(none, "booking_update", none.url, true, true), "booking",
                                Fill(kBookingNoCaps, {{"{uuid}", uuid}}), "[]", Supplier()));
  EXPECT_TRUE(HasDeliveryHeaders(got_none, none));

  const ReceivedRequest got_pricing = OnlyRequest("/pricing");
  EXPECT_EQ(got_pricing.body, Body(WebhookObject(pricing, "booking_update", pricing.url, true, true, "{}",
                                                 {"octo/pricing"}),
                                   "booking", Fill(kBookingPricing, {{"{uuid}", uuid}}), "[]", Supplier()));
  EXPECT_TRUE(HasDeliveryHeaders(got_pricing, pricing));

  const ReceivedRequest got_content = OnlyRequest("/content");
  EXPECT_EQ(got_content.body, Body(WebhookObject(content, "booking_update", content.url, true, true, "{}",
                                                 {"octo/content"}),
                                   "booking", Fill(kBookingContent, {{"{uuid}", uuid}}), "[]", Supplier()));
  EXPECT_TRUE(HasDeliveryHeaders(got_content, content));

  // webhook-id is msg_ + the delivery's id without dashes, one per webhook.
  const std::string delivery_id = db().Scalar(absl::StrCat(
      "SELECT replace(id::text, '-', '') FROM deliveries WHERE webhook_id = ", SqlQuote(none.id)));
  EXPECT_EQ(WebhookId(got_none), "msg_" + delivery_id);
  EXPECT_NE(WebhookId(got_none), WebhookId(got_pricing));
  EXPECT_NE(WebhookId(got_pricing), WebhookId(got_content));

  EXPECT_EQ(receiver_->Count("/order-hook"), 0u);
}

TEST_F(BodyE2eTest, OrderBodyWithAndWithoutCapabilities) {
  const CreatedWebhook none = Hook("order_update", receiver_->Url("/none"), R"("useContactLanguage":false)");
  const CreatedWebhook pricing = Hook("order_update", receiver_->Url("/pricing"), "", "octo/pricing");
  const auto published = MustPublish(Event(tenant_, "order_update", kOrder, NewKey("order")));
  EXPECT_EQ(published.delivery_count(), 2);

  const ReceivedRequest got_none = OnlyRequest("/none");
  EXPECT_EQ(got_none.body,
            Body(WebhookObject(none, "order_update", none.url, true, false), "order", kOrderNoCaps, "[]", Supplier()));
  EXPECT_TRUE(HasDeliveryHeaders(got_none, none));
  const ReceivedRequest got_pricing = OnlyRequest("/pricing");
  EXPECT_EQ(got_pricing.body,
            Body(WebhookObject(pricing, "order_update", pricing.url, true, true, "{}", {"octo/pricing"}), "order",
                 kOrderPricing, "[]", Supplier()));
  EXPECT_TRUE(HasDeliveryHeaders(got_pricing, pricing));
}

TEST_F(BodyE2eTest, AvailabilityBodyCarriesProductAndOptionIds) {
  const CreatedWebhook none = Hook("availability_update", receiver_->Url("/none"));
  const CreatedWebhook pricing = Hook("availability_update", receiver_->Url("/pricing"), "", "octo/pricing");
  auto request = Event(tenant_, "availability_update", kAvailability, NewKey("availability"));
  request.set_product_id("prod-eye");
  request.set_option_id("DEFAULT");
  const auto published = MustPublish(request);
  EXPECT_EQ(published.delivery_count(), 2);

  const std::pair<std::string, std::string> ids = {"prod-eye", "DEFAULT"};
  const ReceivedRequest got_none = OnlyRequest("/none");
  EXPECT_EQ(got_none.body, Body(WebhookObject(none, "availability_update", none.url, true, true), "availability",
                                kAvailabilityNoCaps, "[]", Supplier(), ids));
  EXPECT_TRUE(HasDeliveryHeaders(got_none, none));
  const ReceivedRequest got_pricing = OnlyRequest("/pricing");
  EXPECT_EQ(got_pricing.body,
            Body(WebhookObject(pricing, "availability_update", pricing.url, true, true, "{}", {"octo/pricing"}),
                 "availability", kAvailabilityPricing, "[]", Supplier(), ids));
  EXPECT_TRUE(HasDeliveryHeaders(got_pricing, pricing));
}

TEST_F(BodyE2eTest, ProductBodyWithAndWithoutCapabilities) {
  const CreatedWebhook none = Hook("product_update", receiver_->Url("/none"), R"("retryOnError":false)");
  const CreatedWebhook both =
      Hook("product_update", receiver_->Url("/both"), "", "octo/pricing, octo/content");
  const auto published = MustPublish(Event(tenant_, "product_update", kProduct, NewKey("product")));
  EXPECT_EQ(published.delivery_count(), 2);

  const ReceivedRequest got_none = OnlyRequest("/none");
  EXPECT_EQ(got_none.body, Body(WebhookObject(none, "product_update", none.url, false, true), "product",
                                kProductNoCaps, "[]", Supplier()));
  EXPECT_TRUE(HasDeliveryHeaders(got_none, none));
  const ReceivedRequest got_both = OnlyRequest("/both");
  EXPECT_EQ(got_both.body, Body(WebhookObject(both, "product_update", both.url, true, true, "{}",
                                              {"octo/pricing", "octo/content"}),
                                "product", kProductPricingContent, "[]", Supplier()));
  EXPECT_TRUE(HasDeliveryHeaders(got_both, both));
}

// ------------------------------------------------------------------ diffs --

constexpr const char* kBookingV1 =
    R"({"id":"bk-d","uuid":"{uuid}","status":"ON_HOLD","notes":null,"unitItems":[{"uuid":"ui-1","unitId":"adult","pricing":{"retail":3000,"currency":"GBP"}}],"voucher":{"deliveryOptions":[{"deliveryFormat":"PDF_URL","deliveryValue":"https://v.example/1.pdf"}]},"utcExpiresAt":"2024-05-25T11:04:22Z","pricing":{"retail":3000,"currency":"GBP"}})";
constexpr const char* kBookingV1NoCaps =
    R"({"id":"bk-d","uuid":"{uuid}","status":"ON_HOLD","notes":null,"unitItems":[{"uuid":"ui-1","unitId":"adult"}],"voucher":{"deliveryOptions":[{"deliveryFormat":"PDF_URL","deliveryValue":"https://v.example/1.pdf"}]},"utcExpiresAt":"2024-05-25T11:04:22Z"})";
constexpr const char* kBookingV2 =
    R"({"id":"bk-d","uuid":"{uuid}","status":"CONFIRMED","notes":"Gate 3","unitItems":[{"uuid":"ui-1","unitId":"adult","pricing":{"retail":3000,"currency":"GBP"}},{"uuid":"ui-2","unitId":"child","pricing":{"retail":1500,"currency":"GBP"}}],"voucher":{"deliveryOptions":[{"deliveryFormat":"PDF_URL","deliveryValue":"https://v.example/1.pdf"},{"deliveryFormat":"QRCODE","deliveryValue":"QR-1"}]},"pricing":{"retail":4500,"currency":"GBP"},"utcConfirmedAt":"2024-05-25T10:40:00Z","a/b~c":1})";
constexpr const char* kBookingV2NoCaps =
    R"({"id":"bk-d","uuid":"{uuid}","status":"CONFIRMED","notes":"Gate 3","unitItems":[{"uuid":"ui-1","unitId":"adult"},{"uuid":"ui-2","unitId":"child"}],"voucher":{"deliveryOptions":[{"deliveryFormat":"PDF_URL","deliveryValue":"https://v.example/1.pdf"},{"deliveryFormat":"QRCODE","deliveryValue":"QR-1"}]},"utcConfirmedAt":"2024-05-25T10:40:00Z","a/b~c":1})";
// V1 -> V2: keys of V2 in order, then the keys V1 had and V2 lacks; arrays
// by index; "/" and "~" escaped in the pointer.
constexpr const char* kDiffV1V2 =
    R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"},{"op":"replace","path":"/notes","was":null,"value":"Gate 3"},{"op":"add","path":"/unitItems/1","value":{"uuid":"ui-2","unitId":"child","pricing":{"retail":1500,"currency":"GBP"}}},{"op":"add","path":"/voucher/deliveryOptions/1","value":{"deliveryFormat":"QRCODE","deliveryValue":"QR-1"}},{"op":"replace","path":"/pricing/retail","was":3000,"value":4500},{"op":"add","path":"/utcConfirmedAt","value":"2024-05-25T10:40:00Z"},{"op":"add","path":"/a~1b~0c","value":1},{"op":"remove","path":"/utcExpiresAt","was":"2024-05-25T11:04:22Z"}])";
// The same without octo/pricing: the /pricing op is gone, the added unit
// item loses its pricing.
constexpr const char* kDiffV1V2NoCaps =
    R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"},{"op":"replace","path":"/notes","was":null,"value":"Gate 3"},{"op":"add","path":"/unitItems/1","value":{"uuid":"ui-2","unitId":"child"}},{"op":"add","path":"/voucher/deliveryOptions/1","value":{"deliveryFormat":"QRCODE","deliveryValue":"QR-1"}},{"op":"add","path":"/utcConfirmedAt","value":"2024-05-25T10:40:00Z"},{"op":"add","path":"/a~1b~0c","value":1},{"op":"remove","path":"/utcExpiresAt","was":"2024-05-25T11:04:22Z"}])";

TEST_F(BodyE2eTest, ComputedDiffAgainstThePreviousEventOfTheSameBooking) {
  const CreatedWebhook none = Hook("booking_update", receiver_->Url("/none"));
  const CreatedWebhook pricing = Hook("booking_update", receiver_->Url("/pricing"), "", "octo/pricing");
  const std::string uuid = NewUuid();
  MustPublish(Event(tenant_, "booking_update", Fill(kBookingV1, {{"{uuid}", uuid}}), NewKey("v1"), 1717228800));
  ASSERT_TRUE(receiver_->WaitFor(2, 15s));
  MustPublish(Event(tenant_, "booking_update", Fill(kBookingV2, {{"{uuid}", uuid}}), NewKey("v2"), 1717228860));
  ASSERT_TRUE(receiver_->WaitFor(4, 15s)) << stack_->LogTails();

  const auto got_none = receiver_->Requests("/none");
  ASSERT_EQ(got_none.size(), 2u);
  const std::string hook_none = WebhookObject(none, "booking_update", none.url, true, true);
  EXPECT_EQ(got_none[0].body, Body(hook_none, "booking", Fill(kBookingV1NoCaps, {{"{uuid}", uuid}}), "[]", Supplier()));
  EXPECT_EQ(got_none[1].body,
            Body(hook_none, "booking", Fill(kBookingV2NoCaps, {{"{uuid}", uuid}}), kDiffV1V2NoCaps, Supplier()));
  EXPECT_NE(WebhookId(got_none[0]), WebhookId(got_none[1]));

  const auto got_pricing = receiver_->Requests("/pricing");
  ASSERT_EQ(got_pricing.size(), 2u);
  const std::string hook_pricing =
      WebhookObject(pricing, "booking_update", pricing.url, true, true, "{}", {"octo/pricing"});
  EXPECT_EQ(got_pricing[0].body, Body(hook_pricing, "booking", Fill(kBookingV1, {{"{uuid}", uuid}}), "[]", Supplier()));
  EXPECT_EQ(got_pricing[1].body,
            Body(hook_pricing, "booking", Fill(kBookingV2, {{"{uuid}", uuid}}), kDiffV1V2, Supplier()));
  for (const auto& r : got_pricing) EXPECT_TRUE(HasDeliveryHeaders(r, pricing));

  // Another booking (another uuid) of the same tenant starts from [] again.
  receiver_->SetPlan("/none", {});
  const std::string other = NewUuid();
  MustPublish(Event(tenant_, "booking_update", Fill(kBookingV2, {{"{uuid}", other}}), NewKey("other"), 1717228900));
  ASSERT_TRUE(receiver_->WaitFor("/none", 3, 15s));
  EXPECT_EQ(receiver_->Requests("/none")[2].body,
            Body(hook_none, "booking", Fill(kBookingV2NoCaps, {{"{uuid}", other}}), "[]", Supplier()));
}

TEST_F(BodyE2eTest, SuppliedDiffIsSentProjectedPerWebhook) {
  const CreatedWebhook none = Hook("booking_update", receiver_->Url("/none"));
  const CreatedWebhook pricing = Hook("booking_update", receiver_->Url("/pricing"), "", "octo/pricing");
  const std::string uuid = NewUuid();
  // Supplied on the very first event of the booking: it wins over [].
  constexpr const char* kSupplied =
      R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"},{"op":"replace","path":"/pricing/retail","was":3000,"value":4500},{"op":"add","path":"/unitItems/1","value":{"uuid":"ui-2","unitId":"child","pricing":{"retail":1500,"currency":"GBP"}}}])";
  constexpr const char* kSuppliedNoCaps =
      R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"},{"op":"add","path":"/unitItems/1","value":{"uuid":"ui-2","unitId":"child"}}])";
  auto request = Event(tenant_, "booking_update", Fill(kBookingV2, {{"{uuid}", uuid}}), NewKey("supplied"));
  request.set_diff_json(kSupplied);
  MustPublish(request);

  const ReceivedRequest got_none = OnlyRequest("/none");
  EXPECT_EQ(got_none.body, Body(WebhookObject(none, "booking_update", none.url, true, true), "booking",
                                Fill(kBookingV2NoCaps, {{"{uuid}", uuid}}), kSuppliedNoCaps, Supplier()));
  const ReceivedRequest got_pricing = OnlyRequest("/pricing");
  EXPECT_EQ(got_pricing.body,
            Body(WebhookObject(pricing, "booking_update", pricing.url, true, true, "{}", {"octo/pricing"}),
                 "booking", Fill(kBookingV2, {{"{uuid}", uuid}}), kSupplied, Supplier()));
}

// -------------------------------------------------------------- languages --

constexpr const char* kBookingLang =
    R"({"id":"bk-l","uuid":"{uuid}","status":"CONFIRMED","product":{"id":"prod-eye","internalName":"Eye GA","title":"The Eye"},"contact":{"fullName":"Jörg Weiß","locales":{locales}},"notes":"Thanks"})";
constexpr const char* kBookingLangDe =
    R"({"id":"bk-l","uuid":"{uuid}","status":"CONFIRMED","product":{"id":"prod-eye","internalName":"Eye GA","title":"Das Auge"},"contact":{"fullName":"Jörg Weiß","locales":{locales}},"notes":"Danke"})";
constexpr const char* kBookingLangFr =
    R"({"id":"bk-l","uuid":"{uuid}","status":"CONFIRMED","product":{"id":"prod-eye","internalName":"Eye GA","title":"L'Œil"},"contact":{"fullName":"Jörg Weiß","locales":{locales}},"notes":"Merci"})";

TEST_F(BodyE2eTest, LanguageVariantFollowsContactLocales) {
  // octo/content keeps product.title, which the variants translate.
  const CreatedWebhook lang = Hook("booking_update", receiver_->Url("/lang"), "", "octo/content");
  const CreatedWebhook fixed =
      Hook("booking_update", receiver_->Url("/fixed"), R"("useContactLanguage":false)", "octo/content");
  const std::string hook_lang = WebhookObject(lang, "booking_update", lang.url, true, true, "{}", {"octo/content"});
  const std::string hook_fixed =
      WebhookObject(fixed, "booking_update", fixed.url, true, false, "{}", {"octo/content"});

  struct Case {
    std::string locales;                   // contact.locales
    std::vector<std::string> variants;     // tags supplied: "de" / "fr" / "de-DE"
    std::optional<std::string> expected;   // tag chosen (Content-Language), nullopt: default
  };
  const std::vector<Case> cases = {
      // Primary language of the first preference ("de-AT" -> "de").
      {R"(["de-AT","en-GB"])", {"fr", "de"}, "de"},
      // No variant in any preferred language: the default, no header.
      {R"(["es-ES"])", {"fr", "de"}, std::nullopt},
      // Same primary language, other region: the variant as spelled.
      {R"(["de-CH","fr"])", {"fr", "de-DE"}, "de-DE"},
      // An exact tag wins over the bare language.
      {R"(["de-AT"])", {"de", "de-AT"}, "de-AT"},
      // A later preference is used when the first has no variant.
      {R"(["it","fr-CA"])", {"de", "fr"}, "fr"},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.locales);
    const std::string uuid = NewUuid();
    const std::vector<std::pair<std::string, std::string>> fill = {{"{uuid}", uuid}, {"{locales}", c.locales}};
    auto request = Event(tenant_, "booking_update", Fill(kBookingLang, fill), NewKey("lang"));
    for (const std::string& tag : c.variants) {
      const char* text = tag.rfind("de", 0) == 0 ? kBookingLangDe : kBookingLangFr;
      (*request.mutable_localized_resource_json())[tag] = Fill(text, fill);
    }
    MustPublish(request);
    ++n;
    ASSERT_TRUE(receiver_->WaitFor("/lang", n, 15s)) << stack_->LogTails();
    ASSERT_TRUE(receiver_->WaitFor("/fixed", n, 15s)) << stack_->LogTails();
    const ReceivedRequest got_lang = receiver_->Requests("/lang").back();
    const ReceivedRequest got_fixed = receiver_->Requests("/fixed").back();

    std::string chosen = Fill(kBookingLang, fill);
    if (c.expected) chosen = Fill(c.expected->rfind("de", 0) == 0 ? kBookingLangDe : kBookingLangFr, fill);
    EXPECT_EQ(got_lang.body, Body(hook_lang, "booking", chosen, "[]", Supplier()));
    EXPECT_TRUE(HasDeliveryHeaders(got_lang, lang, c.expected));
    // useContactLanguage false: always the default rendering.
    EXPECT_EQ(got_fixed.body, Body(hook_fixed, "booking", Fill(kBookingLang, fill), "[]", Supplier()));
    EXPECT_TRUE(HasDeliveryHeaders(got_fixed, fixed));
  }
}

// ------------------------------------------------- credentials and headers --

TEST_F(BodyE2eTest, UrlCredentialsBecomeBasicAuthAndCustomHeadersAreSent) {
  const std::string url = receiver_->Url("/creds?tenant=t1", "partner:s3cr%40t");
  const CreatedWebhook creds =
      Hook("booking_update", url, R"("headers":{"X-Correlation":"corr-9","X-Api-Key":"key-123"})");
  // A user name alone (often a token) is sent as user with empty password.
  const CreatedWebhook token = Hook("booking_update", receiver_->Url("/token", "only-token"));
  const std::string uuid = NewUuid();
  MustPublish(Event(tenant_, "booking_update", Fill(kBookingV1, {{"{uuid}", uuid}}), NewKey("creds")));

  const ReceivedRequest got = OnlyRequest("/creds");
  // Credentials stripped from the request line, the query kept.
  EXPECT_EQ(got.target, "/creds?tenant=t1");
  EXPECT_TRUE(HasDeliveryHeaders(got, creds, std::nullopt, "Basic cGFydG5lcjpzM2NyQHQ="));  // partner:s3cr@t
  EXPECT_EQ(got.Headers("X-Api-Key"), std::vector<std::string>{"key-123"});
  EXPECT_EQ(got.Headers("X-Correlation"), std::vector<std::string>{"corr-9"});
  // In the body: the password masked, header values masked, names sorted.
  const std::string masked = absl::StrCat("http://partner:***@127.0.0.1:", receiver_->port(), "/creds?tenant=t1");
  EXPECT_EQ(got.body, Body(WebhookObject(creds, "booking_update", masked, true, true,
                                         R"({"X-Api-Key":"***","X-Correlation":"***"})"),
                           "booking", Fill(kBookingV1NoCaps, {{"{uuid}", uuid}}), "[]", Supplier()));
  EXPECT_EQ(got.body.find("s3cr"), std::string::npos);
  EXPECT_EQ(got.body.find("key-123"), std::string::npos);
  EXPECT_EQ(got.body.find("corr-9"), std::string::npos);

  const ReceivedRequest got_token = OnlyRequest("/token");
  EXPECT_EQ(got_token.target, "/token");
  EXPECT_TRUE(HasDeliveryHeaders(got_token, token, std::nullopt, "Basic b25seS10b2tlbjo="));  // only-token:
  EXPECT_EQ(got_token.body,
            Body(WebhookObject(token, "booking_update",
                               absl::StrCat("http://***@127.0.0.1:", receiver_->port(), "/token"), true, true),
                 "booking", Fill(kBookingV1NoCaps, {{"{uuid}", uuid}}), "[]", Supplier()));
}

// ------------------------------------------------------------- signatures --

TEST_F(BodyE2eTest, DeliveredRequestVerifiesWithThePublicNpmPackage) {
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/signed"), "", "octo/pricing");
  MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("signed")));
  const ReceivedRequest got = OnlyRequest("/signed");
  ASSERT_TRUE(SignatureVerifies(got, hook.secret));

  auto verified = VerifyWithNode(got, hook.secret);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->exit_code, 0) << verified->output;
  EXPECT_NE(verified->output.find("verified"), std::string::npos) << verified->output;

  // The verifier is not a rubber stamp: one changed byte, or another
  // webhook's secret, fails.
  std::string tampered = got.body;
  tampered[tampered.find("CONFIRMED")] = 'c';
  auto rejected = VerifyWithNode(got, hook.secret, tampered);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->exit_code, 1) << rejected->output;
  const CreatedWebhook other = Hook("order_update", receiver_->Url("/other"));
  auto wrong_secret = VerifyWithNode(got, other.secret);
  ASSERT_TRUE(wrong_secret.ok()) << wrong_secret.status();
  EXPECT_EQ(wrong_secret->exit_code, 1) << wrong_secret->output;
}

// The Standard Webhooks test vector, through the same C++ verifier the
// tests above use (and the signer the dispatcher uses).
TEST_F(BodyE2eTest, StandardWebhooksTestVector) {
  constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  constexpr const char* kId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  constexpr int64_t kTimestamp = 1614265330;
  constexpr const char* kBody = R"({"test": 2432232314})";
  constexpr const char* kSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  EXPECT_TRUE(payload::VerifySignatureHeader(kSignature, kId, kTimestamp, kBody, kSecret));
  auto signed_header = payload::SignatureHeader(kId, kTimestamp, kBody, {kSecret});
  ASSERT_TRUE(signed_header.ok()) << signed_header.status();
  EXPECT_EQ(*signed_header, kSignature);
  EXPECT_FALSE(payload::VerifySignatureHeader(kSignature, kId, kTimestamp + 1, kBody, kSecret));
  EXPECT_FALSE(payload::VerifySignatureHeader(kSignature, kId, kTimestamp, R"({"test": 2432232315})", kSecret));
}

}  // namespace
}  // namespace octo::delivery_e2e
