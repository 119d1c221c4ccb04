#include "services/subscription/webhook_dialect.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/common/strings.h"

namespace octo::subscription {

absl::Status ValidateDialectFilter(std::string_view dialect) {
  if (dialect.empty() || dialect == kWebhookDialect || dialect == kNotificationDialect) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("dialect: must be webhook or notification");
}

absl::StatusOr<std::vector<std::string>> ValidateEventTypes(const std::vector<std::string>& types) {
  std::vector<std::string> out;
  for (const std::string& type : types) {
    const auto* known = std::find(std::begin(kNotificationEvents), std::end(kNotificationEvents), type);
    if (known == std::end(kNotificationEvents)) {
      return absl::InvalidArgumentError(
          "notificationTypes: each must be one of BOOKING_UPDATE, AVAILABILITY_UPDATE, "
          "PRODUCT_UPDATE");
    }
    if (std::find(out.begin(), out.end(), type) == out.end()) out.push_back(type);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "notificationTypes: at least one of BOOKING_UPDATE, AVAILABILITY_UPDATE, PRODUCT_UPDATE "
        "is required");
  }
  return out;
}

absl::Status CheckDialect(const WebhookRecord& webhook, std::string_view dialect) {
  if (dialect.empty() || webhook.dialect == dialect) return absl::OkStatus();
  return absl::NotFoundError("webhookId: no such webhook");
}

}  // namespace octo::subscription
