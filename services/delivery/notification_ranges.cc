#include "services/delivery/notification_ranges.h"

#include <utility>

#include "services/delivery/payload/notification_body.h"

namespace octo::delivery {

void NotificationRanges::Add(std::string_view supplier, std::string_view product,
                             const boost::json::value& resource) {
  auto dates = payload::AvailabilityDates(resource);
  if (!dates.has_value()) return;
  auto key = std::make_pair(std::string(supplier), std::string(product));
  auto [it, inserted] = ranges_.try_emplace(std::move(key), DateRange{dates->first, dates->second});
  if (inserted) return;
  if (dates->first < it->second.start) it->second.start = dates->first;
  if (dates->second > it->second.end) it->second.end = dates->second;
}

const DateRange* NotificationRanges::Find(std::string_view supplier, std::string_view product) const {
  auto it = ranges_.find(std::make_pair(std::string(supplier), std::string(product)));
  return it == ranges_.end() ? nullptr : &it->second;
}

bool NotificationRanges::FirstFor(std::string_view webhook_id, std::string_view supplier,
                                  std::string_view product) {
  return delivered_
      .emplace(std::string(webhook_id), std::string(supplier), std::string(product))
      .second;
}

}  // namespace octo::delivery
