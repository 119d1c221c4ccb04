#pragma once
// The OCTO notifications dialect's requests (router.h IsSubscriptionRoute):
// the webhook routes' steps (keyed_exchange.h) with the subscription JSON
// (notifications_json.h), on the same SubscriptionService RPCs with dialect
// "notification", so subscriptions share the webhooks' storage, cap,
// validation and delivery.
//
// Differences from the webhook routes:
//   - Octo-Capabilities may name the capability "notifications" (the OCTO
//     spelling) or "octo/notifications" (Ventrata); neither is required;
//   - create answers 201 Created with a Location header;
//   - an id that is not a subscription of the key's connection (a webhook's
//     included) answers 400 INVALID_SUBSCRIPTION_ID + "subscriptionId".
#include <string>
#include <string_view>

#include "gateway/http_types.h"
#include "gateway/keyed_exchange.h"
#include "gateway/router.h"

namespace octo::gateway {

inline constexpr std::string_view kInvalidSubscriptionId = "INVALID_SUBSCRIPTION_ID";

// Handles one request whose route IsSubscriptionRoute, on the steps the
// webhook routes share (keyed_exchange.h). `base_path` is the normalized base
// path (for Location). Calls `done` exactly once.
void HandleSubscriptionRequest(const KeyedExchange::Context& context, const std::string& base_path,
                               HttpRequest request, RouteMatch match, HttpHandler::Done done);

}  // namespace octo::gateway
