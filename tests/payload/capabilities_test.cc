#include "services/delivery/payload/capabilities.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "tests/payload/test_util.h"

namespace octo::payload {
namespace {

using testing::Compact;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::Json;

const std::vector<std::string>* PathsOf(ResourceKind kind, std::string_view capability) {
  for (const auto& [cap, paths] : CapabilityFields(kind)) {
    if (cap == capability) return &paths;
  }
  return nullptr;
}

TEST(CapabilityFieldsTest, EmbeddedTableHasTheDocumentedPricingPaths) {
  const auto* booking = PathsOf(ResourceKind::kBooking, "octo/pricing");
  ASSERT_NE(booking, nullptr);
  EXPECT_THAT(*booking, Contains("pricing"));
  EXPECT_THAT(*booking, Contains("unitItems[].pricing"));
  EXPECT_THAT(*booking, Contains("product.defaultCurrency"));
  EXPECT_THAT(*booking, Contains("product.options[].units[].pricingFrom"));
  const auto* availability = PathsOf(ResourceKind::kAvailability, "octo/pricing");
  ASSERT_NE(availability, nullptr);
  EXPECT_THAT(*availability, ElementsAre("pricing", "unitPricing"));
  const auto* order = PathsOf(ResourceKind::kOrder, "octo/pricing");
  ASSERT_NE(order, nullptr);
  EXPECT_THAT(*order, Contains("bookings[].unitItems[].pricing"));
  EXPECT_THAT(*PathsOf(ResourceKind::kProduct, "ventrata/content"), Contains("options[].title"));
  // The embedded text is the committed file's.
  EXPECT_TRUE(boost::json::parse(boost::json::string_view(CapabilityFieldsJson().data(), CapabilityFieldsJson().size()))
                  .is_object());
}

constexpr std::string_view kBooking =
    R"({"uuid":"b1","status":"CONFIRMED","pricing":{"retail":100,"currency":"EUR"},)"
    R"("product":{"id":"p1","defaultCurrency":"EUR","internalName":"Tour",)"
    R"("options":[{"id":"DEFAULT","title":"Morning","units":[{"id":"adult","pricingFrom":[{"retail":50}]}]}]},)"
    R"("meetingPoint":"Gate 3","unitItems":[{"uuid":"u1","pricing":{"retail":50}},{"uuid":"u2","pricing":null}],)"
    R"("notes":null})";

TEST(ProjectResourceTest, BookingWithPricingKeepsEverything) {
  const auto full = Json(kBooking);
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, full, {"octo/pricing", "ventrata/content"})),
            Compact(full));
}

TEST(ProjectResourceTest, BookingWithoutPricingLosesPricingEverywhereKeyOrderKept) {
  const auto full = Json(kBooking);
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, full, {"ventrata/content"})),
            R"({"uuid":"b1","status":"CONFIRMED",)"
            R"("product":{"id":"p1","internalName":"Tour",)"
            R"("options":[{"id":"DEFAULT","title":"Morning","units":[{"id":"adult"}]}]},)"
            R"("meetingPoint":"Gate 3","unitItems":[{"uuid":"u1"},{"uuid":"u2"}],"notes":null})");
}

TEST(ProjectResourceTest, NoCapabilitiesLeavesCore) {
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, Json(kBooking), {})),
            R"({"uuid":"b1","status":"CONFIRMED",)"
            R"("product":{"id":"p1","internalName":"Tour","options":[{"id":"DEFAULT","units":[{"id":"adult"}]}]},)"
            R"("unitItems":[{"uuid":"u1"},{"uuid":"u2"}],"notes":null})");
}

TEST(ProjectResourceTest, OctoContentIsAnAliasForVentrataContent) {
  const auto full = Json(kBooking);
  const auto with_octo_content = ProjectResource(ResourceKind::kBooking, full, {"octo/content"});
  const auto with_ventrata_content = ProjectResource(ResourceKind::kBooking, full, {"ventrata/content"});
  EXPECT_EQ(Compact(with_octo_content), Compact(with_ventrata_content));
  EXPECT_EQ(with_octo_content.as_object().at("meetingPoint"), "Gate 3");
  EXPECT_EQ(with_octo_content.at_pointer("/product/options/0/title"), "Morning");
  EXPECT_FALSE(ProjectResource(ResourceKind::kBooking, full, {"octo/pickups"}).as_object().contains("meetingPoint"));
  EXPECT_THAT(EffectiveCapabilities({"octo/content", "octo/pricing", "octo/content"}),
              ElementsAre("octo/content", "ventrata/content", "octo/pricing"));
  // Only one way: ventrata/content does not grant the octo/content fields.
  const auto unit =
      Json(R"({"id":"p1","options":[{"units":[{"id":"u","restrictions":{"minHeight":120,"minAge":3}}]}]})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kProduct, unit, {"ventrata/content"})),
            R"({"id":"p1","options":[{"units":[{"id":"u","restrictions":{"minAge":3}}]}]})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kProduct, unit, {"octo/content"})), Compact(unit));
}

TEST(ProjectResourceTest, OctoTypesDecideTheOctoCapabilities) {
  // Ventrata's document files Product.includeTax under ventrata/content as
  // well as octo/pricing; OCTO's types (ProductPricing) say octo/pricing only.
  const auto product = Json(R"({"id":"p1","includeTax":true,"defaultCurrency":"EUR"})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kProduct, product, {"octo/pricing"})), Compact(product));
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kProduct, product, {"ventrata/content"})), R"({"id":"p1"})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kProduct, product, {"octo/content"})), R"({"id":"p1"})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kProduct, product, {})), R"({"id":"p1"})");
  // Product.questions (ProductQuestions) is octo/questions; Ventrata's
  // document has no such field.
  const auto asked = Json(R"({"id":"p1","questions":[{"id":"q1"}]})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kProduct, asked, {"octo/pricing"})), R"({"id":"p1"})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kProduct, asked, {"octo/questions"})), Compact(asked));
  const auto booking = Json(R"({"uuid":"b1","product":{"id":"p1","questions":[],"includeTax":false}})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, booking, {"ventrata/content"})),
            R"({"uuid":"b1","product":{"id":"p1"}})");
}

TEST(ProjectResourceTest, AvailabilityOrderAndProductTables) {
  const auto availability =
      Json(R"({"id":"a1","status":"AVAILABLE","pricing":{"retail":1},"unitPricing":[],"pickupAvailable":true,)"
           R"("openingHours":[{"from":"09:00","to":"17:00","frequency":"1 hour"}]})");
  EXPECT_EQ(
      Compact(ProjectResource("availability", availability, {"octo/pickups"})),
      R"({"id":"a1","status":"AVAILABLE","pickupAvailable":true,"openingHours":[{"from":"09:00","to":"17:00"}]})");
  const auto order =
      Json(R"({"id":"o1","pricing":{"retail":1},"bookings":[{"uuid":"b1","unitItems":[{"uuid":"u1","pricing":{}}]}]})");
  EXPECT_EQ(Compact(ProjectResource("order", order, {})),
            R"({"id":"o1","bookings":[{"uuid":"b1","unitItems":[{"uuid":"u1"}]}]})");
}

TEST(ProjectResourceTest, UnexpectedShapesAreCopiedAndUnknownKindsPassThrough) {
  const auto odd = Json(R"({"uuid":"b1","unitItems":"not an array","product":[1,2],"contact":null})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, odd, {})), Compact(odd));
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, Json("[1]"), {})), "[1]");
  EXPECT_EQ(Compact(ProjectResource("webhook_test", Json(kBooking), {})), Compact(Json(kBooking)));
}

TEST(ProjectDiffTest, DropsOpsUnderRemovedFieldsAndProjectsValues) {
  const auto diff = Json(R"([
    {"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"},
    {"op":"replace","path":"/pricing/retail","was":90,"value":100},
    {"op":"remove","path":"/pricing","was":{"retail":90}},
    {"op":"replace","path":"/unitItems/0/pricing/retail","was":40,"value":50},
    {"op":"add","path":"/unitItems/1","value":{"uuid":"u2","pricing":{"retail":50}}},
    {"op":"replace","path":"/product/defaultCurrency","was":"USD","value":"EUR"},
    {"op":"replace","path":"/product/options/0/units/0","was":{"id":"a","pricingFrom":[]},"value":{"id":"adult","pricingFrom":[]}},
    {"op":"replace","path":"/meetingPoint","was":"A","value":"B"},
    {"op":"replace","path":"/notes/deep/x~1y","was":1,"value":2},
    {"op":"replace","path":"","was":{"uuid":"b0","pricing":1},"value":{"uuid":"b1","pricing":2}},
    {"op":"copy","from":"/pricing","path":"/notes"},
    "not an op",
    {"op":"replace","path":"no pointer","value":1}
  ])")
                        .as_array();
  EXPECT_EQ(Compact(ProjectDiff(ResourceKind::kBooking, diff, {"octo/content"})),
            R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"},)"
            R"({"op":"add","path":"/unitItems/1","value":{"uuid":"u2"}},)"
            R"({"op":"replace","path":"/product/options/0/units/0","was":{"id":"a"},"value":{"id":"adult"}},)"
            R"({"op":"replace","path":"/meetingPoint","was":"A","value":"B"},)"
            R"({"op":"replace","path":"/notes/deep/x~1y","was":1,"value":2},)"
            R"({"op":"replace","path":"","was":{"uuid":"b0"},"value":{"uuid":"b1"}},)"
            R"("not an op",{"op":"replace","path":"no pointer","value":1}])");
  // With every capability nothing is touched.
  EXPECT_EQ(Compact(ProjectDiff(ResourceKind::kBooking, diff, {"octo/pricing", "octo/content"})), Compact(diff));
  // Without content, /meetingPoint goes too.
  const auto no_caps = ProjectDiff("booking", diff, {});
  EXPECT_EQ(no_caps.size(), 7u);
}

}  // namespace
}  // namespace octo::payload

namespace octo::payload {
namespace {

TEST(AppendProjectedResourceTest, SameTextAsProjectThenSerialize) {
  const auto booking = testing::Json(kBooking);
  const std::vector<std::vector<std::string>> cap_sets = {
      {}, {"octo/pricing"}, {"octo/content"}, {"ventrata/content", "octo/pricing"}, {"octo/unknown"}};
  for (const auto& caps : cap_sets) {
    std::string streamed = "prefix:";
    AppendProjectedResource(ResourceKind::kBooking, booking, caps, streamed);
    EXPECT_EQ(streamed, "prefix:" + testing::Compact(ProjectResource(ResourceKind::kBooking, booking, caps)));
  }
  std::string all;
  const auto odd = testing::Json(R"({"uuid":"b1","unitItems":"x","product":[1],"pricing":1.5})");
  AppendProjectedResource(ResourceKind::kBooking, odd, {}, all);
  EXPECT_EQ(all, R"({"uuid":"b1","unitItems":"x","product":[1]})");
}

}  // namespace
}  // namespace octo::payload

namespace octo::payload {
namespace {

// A product whose package includes a product, `depth` times over, each with
// includeTax (an octo/pricing field of Product wherever it is nested).
boost::json::value NestedProduct(int depth) {
  boost::json::object product{{"id", "p" + std::to_string(depth)}, {"includeTax", true}};
  if (depth > 0) {
    boost::json::object include{{"product", NestedProduct(depth - 1)}};
    boost::json::object package{{"includes", boost::json::array{include}}};
    boost::json::object option{{"id", "o"}, {"packageIncludes", boost::json::array{package}}};
    product["options"] = boost::json::array{option};
  }
  return product;
}

int CountKey(const boost::json::value& v, std::string_view key) {
  int n = 0;
  if (v.is_object()) {
    for (const auto& member : v.get_object()) n += (member.key() == key) + CountKey(member.value(), key);
  } else if (v.is_array()) {
    for (const auto& element : v.get_array()) n += CountKey(element, key);
  }
  return n;
}

TEST(ProjectResourceTest, ProductsNestedDeeperThanTheTableAreGatedLikeTheProduct) {
  // The table describes two levels of Product; the third, fourth and fifth
  // follow the second one's rules ("_recursion").
  const boost::json::value full = NestedProduct(4);
  ASSERT_EQ(CountKey(full, "includeTax"), 5);
  const boost::json::value projected = ProjectResource(ResourceKind::kProduct, full, {"octo/packages"});
  EXPECT_EQ(CountKey(projected, "includeTax"), 0) << Compact(projected);
  EXPECT_EQ(CountKey(projected, "id"), 5 + 4);  // products and options stay
  // Without octo/packages the package contents go altogether.
  EXPECT_EQ(CountKey(ProjectResource(ResourceKind::kProduct, full, {"octo/pricing"}), "includeTax"), 1);
  std::string rendered;
  AppendProjectedResource(ResourceKind::kProduct, full, {"octo/packages"}, rendered);
  EXPECT_EQ(rendered, Compact(projected));
  EXPECT_EQ(CountKey(ProjectResource(ResourceKind::kProduct, full, {"octo/packages", "octo/pricing"}), "includeTax"), 5);
  // The same under a booking: booking.product is a Product.
  const boost::json::value booking = Json(R"({"uuid":"b1","product":)" + Compact(full) + "}");
  EXPECT_EQ(CountKey(ProjectResource(ResourceKind::kBooking, booking, {"octo/packages"}), "includeTax"), 0);
  // A diff op at the deep field is dropped.
  const std::string deep = "/options/0/packageIncludes/0/includes/0/product";
  const boost::json::array diff =
      Json(R"([{"op":"replace","path":")" + deep + deep + deep + R"(/includeTax","value":false}])").as_array();
  EXPECT_EQ(Compact(ProjectDiff(ResourceKind::kProduct, diff, {"octo/packages"})), "[]");
}

}  // namespace
}  // namespace octo::payload
