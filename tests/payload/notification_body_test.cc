// The thin body of a notification subscription (payload/notification_body.h)
// and the collapsing of an availability publish into one range per product
// (services/delivery/notification_ranges.h): literal expected bytes.
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "services/delivery/notification_ranges.h"
#include "services/delivery/payload/notification_body.h"

namespace octo::payload {
namespace {

constexpr std::int64_t kJune1At8 = 1717228800LL * 1000000;  // 2024-06-01T08:00:00Z

NotificationInput Input(ResourceKind kind, const boost::json::value* resource) {
  NotificationInput in;
  in.id = "msg_0123";
  in.kind = kind;
  in.resource = resource;
  in.occurred_at_micros = kJune1At8;
  return in;
}

TEST(NotificationBody, EachType) {
  const boost::json::value booking = boost::json::parse(R"({"id":"b1","uuid":"u-1","status":"CONFIRMED"})");
  EXPECT_EQ(RenderNotificationBody(Input(ResourceKind::kBooking, &booking)),
            R"({"id":"msg_0123","type":"BOOKING_UPDATE","timestamp":"2024-06-01T08:00:00Z","data":{"uuid":"u-1"}})");
  const boost::json::value product = boost::json::parse(R"({"id":"prod-1","options":[]})");
  EXPECT_EQ(RenderNotificationBody(Input(ResourceKind::kProduct, &product)),
            R"({"id":"msg_0123","type":"PRODUCT_UPDATE","timestamp":"2024-06-01T08:00:00Z","data":{"productId":"prod-1"}})");
  const boost::json::value slot = boost::json::parse(
      R"({"id":"x","localDateTimeStart":"2024-06-01T22:00:00+01:00","localDateTimeEnd":"2024-06-02T01:00:00+01:00"})");
  NotificationInput in = Input(ResourceKind::kAvailability, &slot);
  in.product_id = "prod-1";
  EXPECT_EQ(RenderNotificationBody(in),
            R"({"id":"msg_0123","type":"AVAILABILITY_UPDATE","timestamp":"2024-06-01T08:00:00Z",)"
            R"("data":{"productId":"prod-1","localDateStart":"2024-06-01","localDateEnd":"2024-06-02"}})");
  // The publish's range wins over the resource's own dates.
  in.date_start = "2024-05-30";
  in.date_end = "2024-06-09";
  EXPECT_EQ(RenderNotificationBody(in),
            R"({"id":"msg_0123","type":"AVAILABILITY_UPDATE","timestamp":"2024-06-01T08:00:00Z",)"
            R"("data":{"productId":"prod-1","localDateStart":"2024-05-30","localDateEnd":"2024-06-09"}})");
}

TEST(NotificationBody, MissingIdsAreNullAndATestSaysSo) {
  const boost::json::value test = boost::json::parse(R"({"test":true,"message":"m"})");
  NotificationInput in = Input(ResourceKind::kBooking, &test);
  in.test = true;
  in.occurred_at_micros = kJune1At8 + 250000;
  EXPECT_EQ(RenderNotificationBody(in),
            R"({"id":"msg_0123","type":"BOOKING_UPDATE","timestamp":"2024-06-01T08:00:00.25Z","data":{"uuid":null,"test":true}})");
  in = Input(ResourceKind::kAvailability, &test);
  EXPECT_EQ(RenderNotificationBody(in),
            R"({"id":"msg_0123","type":"AVAILABILITY_UPDATE","timestamp":"2024-06-01T08:00:00Z",)"
            R"("data":{"productId":null,"localDateStart":null,"localDateEnd":null}})");
}

TEST(AvailabilityDates, CalendarDaysSlotsAndJunk) {
  using Dates = std::optional<std::pair<std::string, std::string>>;
  EXPECT_EQ(AvailabilityDates(boost::json::parse(R"({"localDate":"2024-06-03","status":"AVAILABLE"})")),
            Dates(std::make_pair("2024-06-03", "2024-06-03")));
  EXPECT_EQ(AvailabilityDates(boost::json::parse(R"({"localDateTimeStart":"2024-06-03T10:00:00Z"})")),
            Dates(std::make_pair("2024-06-03", "2024-06-03")));
  EXPECT_EQ(AvailabilityDates(boost::json::parse(R"({"localDate":"June 3"})")), std::nullopt);
  EXPECT_EQ(AvailabilityDates(boost::json::parse(R"({"localDate":"2024-06-03x"})")), std::nullopt);
  EXPECT_EQ(AvailabilityDates(boost::json::parse(R"({"localDate":20240603})")), std::nullopt);
  EXPECT_EQ(AvailabilityDates(boost::json::parse("[]")), std::nullopt);
}

TEST(NotificationRanges, OneRangeAndOneDeliveryPerSupplierAndProduct) {
  delivery::NotificationRanges ranges;
  ranges.Add("s1", "p1", boost::json::parse(R"({"localDate":"2024-06-03"})"));
  ranges.Add("s1", "p1", boost::json::parse(R"({"localDate":"2024-06-01"})"));
  ranges.Add("s1", "p1", boost::json::parse(R"({"localDateTimeStart":"2024-06-02T09:00:00Z"})"));
  ranges.Add("s1", "p2", boost::json::parse(R"({"localDate":"2024-07-01"})"));
  ranges.Add("s2", "p1", boost::json::parse(R"({"nothing":true})"));
  ASSERT_NE(ranges.Find("s1", "p1"), nullptr);
  EXPECT_EQ(ranges.Find("s1", "p1")->start, "2024-06-01");
  EXPECT_EQ(ranges.Find("s1", "p1")->end, "2024-06-03");
  EXPECT_EQ(ranges.Find("s1", "p2")->start, "2024-07-01");
  EXPECT_EQ(ranges.Find("s2", "p1"), nullptr);
  EXPECT_TRUE(ranges.FirstFor("w1", "s1", "p1"));
  EXPECT_FALSE(ranges.FirstFor("w1", "s1", "p1"));
  EXPECT_TRUE(ranges.FirstFor("w2", "s1", "p1"));
  EXPECT_TRUE(ranges.FirstFor("w1", "s1", "p2"));
}

}  // namespace
}  // namespace octo::payload
