// The derived capability table (capability_fields.json, as embedded) applies
// the same rule to a schema wherever it appears: OCTO's types decide the
// octo/* capabilities of a Product's, Option's, Booking's ... fields at the
// root and nested alike, and no field is left under two capabilities that
// do not grant each other.
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/delivery/payload/capabilities.h"
#include "tests/payload/test_util.h"

namespace octo::payload {
namespace {

using testing::Compact;
using testing::Json;
using Owners = std::map<std::string, std::set<std::string>>;  // path -> capabilities

Owners OwnersOf(ResourceKind kind) {
  Owners owners;
  for (const auto& [capability, paths] : CapabilityFields(kind)) {
    for (const auto& path : paths) owners[path].insert(capability);
  }
  return owners;
}

bool Grants(std::string_view has, std::string_view granted) {
  for (const auto& [from, to] : kCapabilityAliases) {
    if (from == has && to == granted) return true;
  }
  return false;
}

TEST(CapabilityTableTest, NoFieldUnderTwoCapabilitiesThatDoNotGrantEachOther) {
  for (const auto kind :
       {ResourceKind::kBooking, ResourceKind::kOrder, ResourceKind::kAvailability, ResourceKind::kProduct}) {
    for (const auto& [path, caps] : OwnersOf(kind)) {
      // The capabilities no other capability of the field grants.
      std::set<std::string> roots;
      for (const auto& cap : caps) {
        bool granted = false;
        for (const auto& other : caps) granted = granted || Grants(other, cap);
        if (!granted) roots.insert(cap);
      }
      EXPECT_EQ(roots.size(), 1u) << ResourceKindName(kind) << " " << path << ": " << ::testing::PrintToString(caps);
    }
  }
}

// Each top-level member of the product table has the same capabilities at
// every place a product is nested in a booking or an order.
void ExpectGatedLikeTheProductTable(ResourceKind kind, const std::string& prefix) {
  const Owners product = OwnersOf(ResourceKind::kProduct);
  const Owners nested = OwnersOf(kind);
  for (const auto& [path, caps] : product) {
    if (path.find_first_of(".[") != std::string::npos) continue;
    const auto it = nested.find(prefix + path);
    ASSERT_NE(it, nested.end()) << ResourceKindName(kind) << " " << prefix + path << " is under no capability";
    EXPECT_EQ(it->second, caps) << ResourceKindName(kind) << " " << prefix + path;
  }
}

TEST(CapabilityTableTest, ANestedProductIsGatedLikeTheProductResource) {
  for (const std::string prefix : {"product.", "packageInclude.product.", "offerComparisons[].product.",
                                   "option.packageIncludes[].includes[].product.", "packageBookings[].product."}) {
    ExpectGatedLikeTheProductTable(ResourceKind::kBooking, prefix);
  }
  for (const std::string prefix :
       {"bookings[].product.", "bookings[].packageInclude.product.", "gifts[].offerComparisons[].product.",
        "offerCombinations[].booking.packageInclude.product.", "offerCombinations[].booking.product."}) {
    ExpectGatedLikeTheProductTable(ResourceKind::kOrder, prefix);
  }
  // A product inside a product's package (one nesting of the resource in itself).
  ExpectGatedLikeTheProductTable(ResourceKind::kProduct, "options[].packageIncludes[].includes[].product.");
}

TEST(CapabilityTableTest, CapabilityFieldsOfNestedSchemasAreListed) {
  const Owners order = OwnersOf(ResourceKind::kOrder);
  EXPECT_EQ(order.at("gifts[].offerComparisons[].product.questions"), std::set<std::string>{"octo/questions"});
  EXPECT_EQ(order.at("gifts[].pricing"), std::set<std::string>{"octo/pricing"});  // GiftPricing
  EXPECT_EQ(order.at("bookings[].packageInclude.product.includeTax"), std::set<std::string>{"octo/pricing"});
  const Owners booking = OwnersOf(ResourceKind::kBooking);
  EXPECT_EQ(booking.at("packageBookings[].pricing"), std::set<std::string>{"octo/pricing"});
  EXPECT_EQ(booking.at("packageBookings[].unitItems[].pricing"), std::set<std::string>{"octo/pricing"});
  EXPECT_EQ(booking.at("packageInclude.option.title"), booking.at("option.title"));
}

TEST(CapabilityTableTest, NestedIncludeTaxAndQuestionsAreProjectedLikeTheProducts) {
  const auto booking = Json(
      R"({"uuid":"b1","packageInclude":{"id":"i1","product":{"id":"p2","includeTax":true,"questions":[]}}})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, booking, {"octo/packages", "ventrata/content"})),
            R"({"uuid":"b1","packageInclude":{"id":"i1","product":{"id":"p2"}}})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, booking, {"octo/packages", "octo/pricing"})),
            R"({"uuid":"b1","packageInclude":{"id":"i1","product":{"id":"p2","includeTax":true}}})");
  const auto order = Json(
      R"({"id":"o1","gifts":[{"id":"g1","offerComparisons":[{"product":{"id":"p1","questions":[{"id":"q"}],)"
      R"("includeTax":false}}]}]})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kOrder, order, {"octo/gifts", "octo/offers", "ventrata/content"})),
            R"({"id":"o1","gifts":[{"id":"g1","offerComparisons":[{"product":{"id":"p1"}}]}]})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kOrder, order, {"octo/gifts", "octo/offers", "octo/questions"})),
            R"({"id":"o1","gifts":[{"id":"g1","offerComparisons":[{"product":{"id":"p1","questions":[{"id":"q"}]}}]}]})");
  const auto packaged = Json(R"({"uuid":"b1","packageBookings":[{"uuid":"b2","pricing":{"retail":1}}]})");
  EXPECT_EQ(Compact(ProjectResource(ResourceKind::kBooking, packaged, {"octo/packages"})),
            R"({"uuid":"b1","packageBookings":[{"uuid":"b2"}]})");
}

}  // namespace
}  // namespace octo::payload
