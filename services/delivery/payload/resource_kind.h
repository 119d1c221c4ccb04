#pragma once
// The four OCTO resources a webhook delivers, and their event names.
#include <optional>
#include <string_view>

namespace octo::payload {

enum class ResourceKind { kBooking, kOrder, kAvailability, kProduct };

// "booking" | "order" | "availability" | "product" (the body key).
std::string_view ResourceKindName(ResourceKind kind);
std::optional<ResourceKind> ParseResourceKind(std::string_view name);
// "booking_update" -> kBooking, ..., "product_update" -> kProduct; anything
// else (webhook_test included) -> nullopt.
std::optional<ResourceKind> ResourceKindForEvent(std::string_view event);

}  // namespace octo::payload
