#pragma once
// The body a notification subscription receives (OCTO notifications: a thin
// body with only what the receiver needs to fetch the resource again), in the
// Standard Webhooks payload shape (docs/decisions.md, "The notification
// envelope"):
//   {"id":"msg_...","type":"BOOKING_UPDATE","timestamp":"2026-12-02T05:00:00Z",
//    "data":{"uuid":"..."}}
// data per type:
//   BOOKING_UPDATE       {"uuid"}
//   PRODUCT_UPDATE       {"productId"}
//   AVAILABILITY_UPDATE  {"productId","localDateStart","localDateEnd"}
//   ORDER_UPDATE         {"id"}   (no notification type; never subscribed)
// Strings the resource lacks render as null. A test ping adds "test":true to
// data (its ids are null: there is nothing to fetch).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/json/value.hpp>

#include "services/delivery/payload/resource_kind.h"

namespace octo::payload {

struct NotificationInput {
  std::string id;  // the delivery's webhook-id, so that the body names it too
  ResourceKind kind = ResourceKind::kBooking;
  const boost::json::value* resource = nullptr;  // as published; null renders no ids
  std::string product_id;                        // availability: the event's product
  // Availability: the range of the publish ("YYYY-MM-DD"); empty = the
  // resource's own dates (AvailabilityDates).
  std::string date_start;
  std::string date_end;
  std::int64_t occurred_at_micros = 0;  // the change's time (the event's occurred_at)
  // A test ping (no resource changed): the type's ids are null and data
  // gains "test": true.
  bool test = false;
};

// "BOOKING_UPDATE", "AVAILABILITY_UPDATE", "PRODUCT_UPDATE", "ORDER_UPDATE".
std::string_view NotificationType(ResourceKind kind);

// The local dates an availability covers: "localDate" (a calendar day) or the
// date part of "localDateTimeStart" / "localDateTimeEnd". nullopt when the
// resource has neither as a "YYYY-MM-DD…" string.
std::optional<std::pair<std::string, std::string>> AvailabilityDates(const boost::json::value& resource);

// RFC 3339 UTC, fractional seconds only when not zero.
std::string FormatTimestampMicros(std::int64_t micros);

std::string RenderNotificationBody(const NotificationInput& input);

}  // namespace octo::payload
