#include "services/delivery/payload/resource_key.h"

#include <gtest/gtest.h>

#include "tests/payload/test_util.h"

namespace octo::payload {
namespace {

using testing::Json;

TEST(ResourceKeyTest, BookingOrderProduct) {
  EXPECT_EQ(*ResourceKey(ResourceKind::kBooking, Json(R"({"id":"x","uuid":"b-uuid"})")), "b-uuid");
  EXPECT_EQ(*ResourceKey(ResourceKind::kOrder, Json(R"({"id":"o-1"})")), "o-1");
  EXPECT_EQ(*ResourceKey(ResourceKind::kProduct, Json(R"({"id":"p-1"})")), "p-1");
  EXPECT_EQ(*ResourceKey("booking", Json(R"({"uuid":"b"})")), "b");
}

TEST(ResourceKeyTest, AvailabilityUsesProductAndOptionEscaped) {
  EXPECT_EQ(
      *ResourceKey(ResourceKind::kAvailability, Json(R"({"id":"2022-05-23T00:00:00+01:00"})"), "prod-1", "DEFAULT"),
      "prod-1/DEFAULT/2022-05-23T00:00:00+01:00");
  EXPECT_EQ(*ResourceKey(ResourceKind::kAvailability, Json(R"({"id":"c/d"})"), "a", "b"), "a/b/c~1d");
  EXPECT_NE(*ResourceKey(ResourceKind::kAvailability, Json(R"({"id":"c"})"), "a/b", "x"),
            *ResourceKey(ResourceKind::kAvailability, Json(R"({"id":"x/c"})"), "a", "b"));
}

TEST(ResourceKeyTest, MissingIdentityIsInvalidArgument) {
  const auto invalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(ResourceKey(ResourceKind::kBooking, Json(R"({"id":"only id"})")).status().code(), invalid);
  EXPECT_EQ(ResourceKey(ResourceKind::kBooking, Json(R"({"uuid":""})")).status().code(), invalid);
  EXPECT_EQ(ResourceKey(ResourceKind::kOrder, Json(R"({"id":5})")).status().code(), invalid);
  EXPECT_EQ(ResourceKey(ResourceKind::kProduct, Json("[]")).status().code(), invalid);
  EXPECT_EQ(ResourceKey(ResourceKind::kAvailability, Json(R"({"id":"a"})"), "", "o").status().code(), invalid);
  EXPECT_EQ(ResourceKey(ResourceKind::kAvailability, Json(R"({"id":"a"})"), "p", "").status().code(), invalid);
  EXPECT_EQ(ResourceKey(ResourceKind::kAvailability, Json(R"({})"), "p", "o").status().code(), invalid);
  EXPECT_EQ(ResourceKey("voucher", Json(R"({"id":"a"})")).status().code(), invalid);
}

TEST(ResourceKindTest, NamesAndEvents) {
  EXPECT_EQ(ResourceKindName(ResourceKind::kAvailability), "availability");
  EXPECT_EQ(ParseResourceKind("order"), ResourceKind::kOrder);
  EXPECT_EQ(ParseResourceKind("Order"), std::nullopt);
  EXPECT_EQ(ResourceKindForEvent("product_update"), ResourceKind::kProduct);
  EXPECT_EQ(ResourceKindForEvent("booking_update"), ResourceKind::kBooking);
  EXPECT_EQ(ResourceKindForEvent("order_update"), ResourceKind::kOrder);
  EXPECT_EQ(ResourceKindForEvent("availability_update"), ResourceKind::kAvailability);
  EXPECT_EQ(ResourceKindForEvent("webhook_test"), std::nullopt);
}

}  // namespace
}  // namespace octo::payload
