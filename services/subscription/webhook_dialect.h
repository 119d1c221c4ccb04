#pragma once
// The two dialects of a webhook row (repository.h kWebhookDialect,
// kNotificationDialect): parsing the dialect fields of the SubscriptionService
// requests and checking a notification subscription's event types. Messages
// name the REST fields ("notificationTypes: ...") as the gateway's partners
// see them. Pure functions.
//
// Example:
//   absl::StatusOr<std::vector<std::string>> types =
//       ValidateEventTypes({"booking_update", "product_update"});
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

// The events a notification subscription may want (OCTO notifications has no
// order type).
inline constexpr std::string_view kNotificationEvents[] = {"booking_update",
                                                           "availability_update",
                                                           "product_update"};

// "" (no filter) or one of the two dialects, else INVALID_ARGUMENT "dialect: ...".
absl::Status ValidateDialectFilter(std::string_view dialect);

// 1 to 3 distinct notification events (duplicates dropped, order kept), else
// INVALID_ARGUMENT "notificationTypes: ...".
absl::StatusOr<std::vector<std::string>> ValidateEventTypes(const std::vector<std::string>& types);

// NOT_FOUND (as for a missing webhook) when `dialect` is set and the
// webhook has another.
absl::Status CheckDialect(const WebhookRecord& webhook, std::string_view dialect);

}  // namespace octo::subscription
