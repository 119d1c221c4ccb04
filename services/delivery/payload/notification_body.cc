#include "services/delivery/payload/notification_body.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"

namespace octo::payload {
namespace {

boost::json::value StringMember(const boost::json::value* resource, std::string_view key) {
  if (resource == nullptr || !resource->is_object()) return nullptr;
  const boost::json::value* v =
      resource->get_object().if_contains(boost::json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_string()) return nullptr;
  return *v;
}

// The "YYYY-MM-DD" a local date or date-time starts with, or "".
std::string DatePart(const boost::json::value* v) {
  if (v == nullptr || !v->is_string()) return {};
  const std::string_view s(v->get_string().data(), v->get_string().size());
  if (s.size() < 10) return {};
  for (std::size_t i = 0; i < 10; ++i) {
    const bool dash = i == 4 || i == 7;
    if (dash ? s[i] != '-' : !absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) return {};
  }
  if (s.size() > 10 && s[10] != 'T') return {};
  return std::string(s.substr(0, 10));
}

}  // namespace

std::string_view NotificationType(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kBooking:
      return "BOOKING_UPDATE";
    case ResourceKind::kAvailability:
      return "AVAILABILITY_UPDATE";
    case ResourceKind::kProduct:
      return "PRODUCT_UPDATE";
    case ResourceKind::kOrder:
      return "ORDER_UPDATE";
  }
  return "ORDER_UPDATE";
}

std::optional<std::pair<std::string, std::string>> AvailabilityDates(const boost::json::value& resource) {
  if (!resource.is_object()) return std::nullopt;
  const boost::json::object& o = resource.get_object();
  if (std::string day = DatePart(o.if_contains("localDate")); !day.empty()) {
    return std::make_pair(day, day);
  }
  std::string start = DatePart(o.if_contains("localDateTimeStart"));
  std::string end = DatePart(o.if_contains("localDateTimeEnd"));
  if (start.empty() && end.empty()) return std::nullopt;
  if (start.empty()) start = end;
  if (end.empty() || end < start) end = start;
  return std::make_pair(std::move(start), std::move(end));
}

std::string FormatTimestampMicros(std::int64_t micros) {
  const absl::Time t = absl::FromUnixMicros(micros);
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

std::string RenderNotificationBody(const NotificationInput& input) {
  boost::json::object data;
  switch (input.kind) {
    case ResourceKind::kBooking:
      data["uuid"] = StringMember(input.resource, "uuid");
      break;
    case ResourceKind::kProduct:
      data["productId"] = StringMember(input.resource, "id");
      break;
    case ResourceKind::kOrder:
      data["id"] = StringMember(input.resource, "id");
      break;
    case ResourceKind::kAvailability: {
      if (!input.product_id.empty()) {
        data["productId"] = input.product_id;
      } else {
        data["productId"] = StringMember(input.resource, "productId");
      }
      std::string start = input.date_start;
      std::string end = input.date_end;
      if (start.empty() && input.resource != nullptr) {
        if (auto dates = AvailabilityDates(*input.resource)) {
          start = std::move(dates->first);
          end = std::move(dates->second);
        }
      }
      data["localDateStart"] = start.empty() ? boost::json::value(nullptr) : boost::json::value(start);
      data["localDateEnd"] = end.empty() ? boost::json::value(nullptr) : boost::json::value(end);
      break;
    }
  }
  if (input.test) data["test"] = true;
  boost::json::object body;
  body["id"] = input.id;
  body["type"] = NotificationType(input.kind);
  body["timestamp"] = FormatTimestampMicros(input.occurred_at_micros);
  body["data"] = std::move(data);
  return boost::json::serialize(body);
}

}  // namespace octo::payload
