#include "services/delivery/payload/render.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "services/delivery/payload/json_diff.h"
#include "tests/payload/test_util.h"

namespace octo::payload {
namespace {

using testing::Compact;
using testing::Json;

SupplierProfile Supplier() {
  return {"sup-1",
          "Merlin Entertainments",
          "https://api.example.com/octo",
          {"", "support@example.com", "", "Marble Arch, London"}};
}

TEST(RenderDeliveryBodyTest, BookingWithoutPricingMaskedUrlAndHeaders) {
  DeliveryPayloadInput in;
  in.webhook = {"wh_1",
                "booking_update",
                "https://user:s3cret@hooks.example.com/in?x=1",
                true,
                false,
                {{"X-Api-Key", "k1"}, {"Authorization", "Bearer t"}},
                {"octo/content"}};
  in.kind = ResourceKind::kBooking;
  in.resource = Json(R"({"uuid":"b-1","status":"CONFIRMED","pricing":{"retail":100},"meetingPoint":"Zürich HB",)"
                     R"("unitItems":[{"uuid":"u1","pricing":{"retail":50}}],"contact":{"locales":["de-CH"]}})");
  in.diff = Json(R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"},)"
                 R"({"op":"replace","path":"/pricing/retail","was":90,"value":100}])")
                .as_array();
  in.supplier = Supplier();
  EXPECT_EQ(
      RenderDeliveryBody(in),
      R"({"webhook":{"id":"wh_1","event":"booking_update","url":"https://user:***@hooks.example.com/in?x=1",)"
      R"("retryOnError":true,"useContactLanguage":false,"headers":{"Authorization":"***","X-Api-Key":"***"},)"
      R"("capabilities":["octo/content"]},)"
      R"("booking":{"uuid":"b-1","status":"CONFIRMED","meetingPoint":"Zürich HB","unitItems":[{"uuid":"u1"}],)"
      R"("contact":{"locales":["de-CH"]}},)"
      R"("diff":[{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}],)"
      R"("supplier":{"id":"sup-1","name":"Merlin Entertainments","endpoint":"https://api.example.com/octo",)"
      R"("contact":{"website":null,"email":"support@example.com","telephone":null,"address":"Marble Arch, London"}}})");
}

TEST(RenderDeliveryBodyTest, OrderWithPricingAndSeed003Diff) {
  DeliveryPayloadInput in;
  in.webhook = {"wh_2", "order_update", "https://example.com/orders", false, true, {}, {"octo/pricing"}};
  in.kind = ResourceKind::kOrder;
  const auto before = Json(R"({"id":"o-1","status":"CONFIRMED","pricing":{"retail":200},)"
                           R"("bookings":[{"uuid":"b-1","status":"CANCELLED"},{"uuid":"b-2","status":"CONFIRMED"}]})");
  in.resource = Json(R"({"id":"o-1","status":"CONFIRMED","pricing":{"retail":100},)"
                     R"("bookings":[{"uuid":"b-2","status":"CONFIRMED"}]})");
  in.diff = ComputeDiff(before, in.resource);
  in.supplier = Supplier();
  in.supplier.contact = {"https://merlin.example", "", "+442071234567", ""};
  EXPECT_EQ(
      RenderDeliveryBody(in),
      R"({"webhook":{"id":"wh_2","event":"order_update","url":"https://example.com/orders",)"
      R"("retryOnError":false,"useContactLanguage":true,"headers":{},"capabilities":["octo/pricing"]},)"
      R"("order":{"id":"o-1","status":"CONFIRMED","pricing":{"retail":100},)"
      R"("bookings":[{"uuid":"b-2","status":"CONFIRMED"}]},)"
      R"("diff":[{"op":"replace","path":"/pricing/retail","was":200,"value":100},)"
      R"({"op":"replace","path":"/bookings/0/uuid","was":"b-1","value":"b-2"},)"
      R"({"op":"replace","path":"/bookings/0/status","was":"CANCELLED","value":"CONFIRMED"},)"
      R"({"op":"remove","path":"/bookings/1","was":{"uuid":"b-2","status":"CONFIRMED"}}],)"
      R"("supplier":{"id":"sup-1","name":"Merlin Entertainments","endpoint":"https://api.example.com/octo",)"
      R"("contact":{"website":"https://merlin.example","email":null,"telephone":"+442071234567","address":null}}})");
}

TEST(RenderDeliveryBodyTest, AvailabilityCarriesProductIdAndOptionIdBesideIt) {
  DeliveryPayloadInput in;
  in.webhook = {"wh_3", "availability_update", "https://token@example.com/a", true, true, {}, {"octo/pickups"}};
  in.kind = ResourceKind::kAvailability;
  in.resource = Json(R"({"id":"2024-05-01T09:00:00+02:00","status":"AVAILABLE","vacancies":5,"capacity":10.0,)"
                     R"("pricing":{"retail":1},"unitPricing":[],"pickupAvailable":true,"latitude":51.5074})");
  in.product_id = "prod-1";
  in.option_id = "DEFAULT";
  in.supplier = Supplier();
  EXPECT_EQ(
      RenderDeliveryBody(in),
      R"({"webhook":{"id":"wh_3","event":"availability_update","url":"https://***@example.com/a",)"
      R"("retryOnError":true,"useContactLanguage":true,"headers":{},"capabilities":["octo/pickups"]},)"
      R"("availability":{"id":"2024-05-01T09:00:00+02:00","status":"AVAILABLE","vacancies":5,"capacity":10.0,)"
      R"("pickupAvailable":true,"latitude":51.5074},)"
      R"("productId":"prod-1","optionId":"DEFAULT",)"
      R"("supplier":{"id":"sup-1","name":"Merlin Entertainments","endpoint":"https://api.example.com/octo",)"
      R"("contact":{"website":null,"email":"support@example.com","telephone":null,"address":"Marble Arch, London"}}})");
}

TEST(RenderDeliveryBodyTest, ProductWithoutCapabilities) {
  DeliveryPayloadInput in;
  in.webhook = {"wh_4", "product_update", "https://example.com/p", true, true, {{"X-Tenant", "acme"}}, {}};
  in.kind = ResourceKind::kProduct;
  in.resource =
      Json(R"({"id":"p-1","internalName":"Tour \"A\"","defaultCurrency":"EUR",)"
           R"("options":[{"id":"DEFAULT","title":"Morning","units":[{"id":"adult","pricingFrom":[{"retail":50}]}]}]})");
  in.diff = Json(R"([{"op":"replace","path":"/options/0/title","was":"AM","value":"Morning"},)"
                 R"({"op":"replace","path":"/internalName","was":"Tour","value":"Tour \"A\""}])")
                .as_array();
  in.supplier = Supplier();
  EXPECT_EQ(
      RenderDeliveryBody(in),
      R"({"webhook":{"id":"wh_4","event":"product_update","url":"https://example.com/p",)"
      R"("retryOnError":true,"useContactLanguage":true,"headers":{"X-Tenant":"***"},"capabilities":[]},)"
      R"("product":{"id":"p-1","internalName":"Tour \"A\"","options":[{"id":"DEFAULT","units":[{"id":"adult"}]}]},)"
      R"("diff":[{"op":"replace","path":"/internalName","was":"Tour","value":"Tour \"A\""}],)"
      R"("supplier":{"id":"sup-1","name":"Merlin Entertainments","endpoint":"https://api.example.com/octo",)"
      R"("contact":{"website":null,"email":"support@example.com","telephone":null,"address":"Marble Arch, London"}}})");
}

// The example bodies of Ventrata's document, kept as test data
// (tests/payload/testdata).
boost::json::value ReadExample(const std::string& name) {
  const std::string dir = OCTO_PAYLOAD_TESTDATA_DIR;
  std::ifstream file(dir + "/" + name);
  EXPECT_TRUE(file) << "cannot read " << dir << "/" << name;
  std::stringstream text;
  text << file.rdbuf();
  return Json(text.str());
}

DeliveryPayloadInput InputFromExample(const boost::json::object& example, ResourceKind kind) {
  DeliveryPayloadInput in;
  const auto& webhook = example.at("webhook").as_object();
  in.webhook.id = webhook.at("id").as_string();
  in.webhook.event = webhook.at("event").as_string();
  in.webhook.url = webhook.at("url").as_string();
  in.webhook.retry_on_error = webhook.at("retryOnError").as_bool();
  in.webhook.use_contact_language = webhook.at("useContactLanguage").as_bool();
  for (const auto& cap : webhook.at("capabilities").as_array()) in.webhook.capabilities.emplace_back(cap.as_string());
  in.kind = kind;
  in.resource = example.at(ResourceKindName(kind));
  if (const auto* diff = example.if_contains("diff")) in.diff = diff->as_array();
  const auto& supplier = example.at("supplier").as_object();
  const auto& contact = supplier.at("contact").as_object();
  auto str = [](const boost::json::value& v) { return v.is_null() ? std::string() : std::string(v.as_string()); };
  in.supplier = {
      str(supplier.at("id")),
      str(supplier.at("name")),
      str(supplier.at("endpoint")),
      {str(contact.at("website")), str(contact.at("email")), str(contact.at("telephone")), str(contact.at("address"))}};
  return in;
}

TEST(RenderDeliveryBodyTest, MatchesVentrataAvailabilityUpdateExample) {
  auto example = ReadExample("availability-update-example.json").as_object();
  DeliveryPayloadInput in = InputFromExample(example, ResourceKind::kAvailability);
  in.product_id = example.at("productId").as_string();
  in.option_id = example.at("optionId").as_string();
  // Exactly the schema's members in its order (no diff); ours leaves out
  // supplier.destinations (not a required Supplier field; no profile data).
  boost::json::object expected = example;
  expected.at("supplier").as_object().erase("destinations");
  EXPECT_EQ(RenderDeliveryBody(in), Compact(expected));
}

TEST(RenderDeliveryBodyTest, VentrataBookingUpdateExampleKeepsOrderAndLosesOnlyUngrantedFields) {
  auto example = ReadExample("booking-update-example.json").as_object();
  DeliveryPayloadInput in = InputFromExample(example, ResourceKind::kBooking);
  const auto rendered = Json(RenderDeliveryBody(in)).as_object();
  std::vector<std::string> keys;
  for (const auto& member : rendered) keys.emplace_back(member.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"webhook", "booking", "diff", "supplier"}));
  EXPECT_EQ(rendered.at("webhook"), example.at("webhook"));
  EXPECT_EQ(rendered.at("diff"), example.at("diff"));  // "/title" is not a capability field of a booking
  // With every capability the booking is exactly the example's, key order included.
  in.webhook.capabilities = {"octo/pricing",
                             "octo/offers",
                             "octo/content",
                             "octo/pickups",
                             "octo/extras",
                             "octo/questions",
                             "octo/cart",
                             "octo/packages",
                             "octo/identities",
                             "octo/rentals",
                             "octo/memberships",
                             "octo/gifts",
                             "octo/checkin",
                             "octo/cardPayments",
                             "octo/adjustments",
                             "octo/resources",
                             "octo/redemption",
                             "octo/google",
                             "ventrata/checkout/content"};
  const std::string all = RenderDeliveryBody(in);
  const std::string booking_text = Compact(example.at("booking"));
  EXPECT_NE(all.find("\"booking\":" + booking_text + ",\"diff\""), std::string::npos);
}

}  // namespace
}  // namespace octo::payload
