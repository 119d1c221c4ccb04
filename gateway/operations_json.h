#pragma once
// The REST extension routes' requests and responses (docs/api.md,
// "Extensions"): query strings and bodies in, delivery objects out. Pure
// functions.
//
// Request rules, as for the OCTO routes: unknown query parameters or body
// members, repeated query parameters, wrong types (null included) and
// out-of-range values are INVALID_ARGUMENT with a message naming the field.
// Routes without parameters take no body, or an empty JSON object.
//
// Example:
//   absl::StatusOr<ListDeliveriesRequest> r = ParseListDeliveriesQuery("/x?status=failed&limit=5");
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "octo/webhooks/v1/webhooks.pb.h"

namespace octo::gateway {

inline constexpr int kMaxDeliveryListLimit = 100;
inline constexpr int kMaxReplayLimit = 1000;
inline constexpr int kMaxGracePeriodSeconds = 7 * 24 * 3600;

// GET .../deliveries?status=&event=&limit=&cursor= (`target` is the whole
// request target). connection_id and webhook_id are left for the caller.
absl::StatusOr<octo::webhooks::v1::ListDeliveriesRequest> ParseListDeliveriesQuery(
    std::string_view target);

// INVALID_ARGUMENT when the target has any query parameter.
absl::Status CheckNoQuery(std::string_view target);

// An empty body, or "{}" (then `json_content_type` must be true).
absl::Status CheckEmptyBody(std::string_view body, bool json_content_type);

// POST .../replay: {"since": "<RFC 3339>", "limit": 1..1000}.
absl::StatusOr<octo::webhooks::v1::ReplayDeliveriesRequest> ParseReplayBody(std::string_view body);

// POST .../rotate-secret: empty, {} or {"gracePeriodSeconds": 0..604800}.
absl::StatusOr<octo::webhooks::v1::RotateWebhookSecretRequest> ParseRotateBody(
    std::string_view body);

// {"id", "webhookId", "eventId", "event", "status", "attemptCount",
//  "createdAt", "nextAttemptAt" (pending only), "completedAt" (finished only),
//  "lastHttpStatus", "lastErrorClass" (null before an attempt),
//  "webhookMessageId", ["attempts": [...]] (with_attempts)}
boost::json::object DeliveryToJson(const octo::webhooks::v1::Delivery& delivery,
                                   bool with_attempts);

}  // namespace octo::gateway
