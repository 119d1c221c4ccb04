#include "services/delivery/payload/resource_kind.h"

namespace octo::payload {

std::string_view ResourceKindName(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kBooking:
      return "booking";
    case ResourceKind::kOrder:
      return "order";
    case ResourceKind::kAvailability:
      return "availability";
    case ResourceKind::kProduct:
      return "product";
  }
  return "booking";  // unreachable
}

std::optional<ResourceKind> ParseResourceKind(std::string_view name) {
  if (name == "booking") return ResourceKind::kBooking;
  if (name == "order") return ResourceKind::kOrder;
  if (name == "availability") return ResourceKind::kAvailability;
  if (name == "product") return ResourceKind::kProduct;
  return std::nullopt;
}

std::optional<ResourceKind> ResourceKindForEvent(std::string_view event) {
  if (event == "booking_update") return ResourceKind::kBooking;
  if (event == "order_update") return ResourceKind::kOrder;
  if (event == "availability_update") return ResourceKind::kAvailability;
  if (event == "product_update") return ResourceKind::kProduct;
  return std::nullopt;
}

}  // namespace octo::payload
