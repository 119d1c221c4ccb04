#pragma once
// The OCTO notifications dialect's JSON (docs/api.md, "Notifications"):
// parsing subscription bodies into the SubscriptionService requests (dialect
// "notification") and rendering a subscription. Pure functions.
//
// Body fields, create and update alike (all optional on update):
//   url (string, required on create), notificationTypes (array of strings;
//   the draft spelling notification_types is read too), notificationType (a
//   single type, added to the list), headers (object of strings), active and
//   retryOnError (booleans). Types are case-insensitive: BOOKING_UPDATE,
//   AVAILABILITY_UPDATE, PRODUCT_UPDATE; at least one is required on create.
//   A wrong type, an unknown field or an unknown notification type is
//   INVALID_ARGUMENT naming the field; null is a wrong type.
//
// Rendered subscription:
//   {"id", "url", "notificationTypes": [upper case], "notificationType": the
//    first, "headers" (values masked), "active", "retryOnError",
//    "status", "createdAt", "updatedAt", "disabledReason", "disabledAt",
//    "failingSince", "previousSecretExpiresAt", "secret" (create and rotate only)}
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"
#include "octo/webhooks/v1/webhooks.pb.h"

namespace octo::gateway {

// "booking_update" for "BOOKING_UPDATE" (any case); nullopt when unknown.
std::optional<std::string> EventForNotificationType(std::string_view type);
// "BOOKING_UPDATE" for "booking_update".
std::string NotificationTypeForEvent(std::string_view event);

// connection_id is left for the caller; dialect is "notification".
absl::StatusOr<octo::webhooks::v1::CreateWebhookRequest> ParseCreateSubscriptionBody(
    std::string_view body);
// connection_id and webhook_id are left for the caller; dialect is "notification".
absl::StatusOr<octo::webhooks::v1::UpdateWebhookRequest> ParseUpdateSubscriptionBody(
    std::string_view body);

boost::json::object SubscriptionToJson(const octo::webhooks::v1::Webhook& webhook,
                                       std::string_view secret = {});

}  // namespace octo::gateway
