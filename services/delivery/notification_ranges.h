#pragma once
// Collapsing an availability publish for notification subscriptions: the
// events of one Enqueue batch for the same supplier and product are one
// change to a receiver that re-fetches, so a notification subscription gets
// one delivery carrying the range of all their dates (the webhook dialect
// still gets one full body per event). This holds the ranges of a batch and
// which (subscription, product) pairs already have their delivery.
//
// Example:
//   NotificationRanges ranges;
//   ranges.Add(supplier, product, resource);        // every availability event
//   const DateRange* r = ranges.Find(supplier, product);
//   if (ranges.FirstFor(webhook_id, supplier, product)) { ...deliver... }
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include <boost/json/value.hpp>

namespace octo::delivery {

struct DateRange {
  std::string start;  // "YYYY-MM-DD"
  std::string end;
};

class NotificationRanges {
 public:
  // Widens the (supplier, product) range by the resource's dates
  // (payload::AvailabilityDates); a resource without dates adds nothing.
  void Add(std::string_view supplier, std::string_view product, const boost::json::value& resource);
  // Null when no event of the pair had dates.
  const DateRange* Find(std::string_view supplier, std::string_view product) const;
  // True the first time for the triple, false after.
  bool FirstFor(std::string_view webhook_id, std::string_view supplier, std::string_view product);

 private:
  std::map<std::pair<std::string, std::string>, DateRange, std::less<>> ranges_;
  std::set<std::tuple<std::string, std::string, std::string>> delivered_;
};

}  // namespace octo::delivery
