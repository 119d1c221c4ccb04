#pragma once
// A claimed delivery -> the HTTP request that carries it (docs/delivery.md,
// "Request"): the body rendered by octo_payload, signed per Standard
// Webhooks, with the webhook's headers and URL credentials as Basic auth.
//
// Example:
//   absl::StatusOr<ParsedEvent> event = ParseClaimedEvent(claimed_event);
//   absl::StatusOr<OutgoingRequest> request =
//       RenderRequest(delivery, *event, absl::ToUnixSeconds(absl::Now()));
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "absl/status/statusor.h"
#include "services/delivery/http_transport.h"
#include "services/delivery/dispatch_store.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::delivery {

// An event parsed once for all of its deliveries.
struct ParsedEvent {
  payload::ResourceKind kind = payload::ResourceKind::kBooking;
  boost::json::value resource;
  boost::json::object localized;          // locale tag -> resource
  std::vector<std::string> locale_tags;   // localized's keys, in stored order
  boost::json::array diff;
  std::string product_id;
  std::string option_id;
  // For notification bodies.
  bool test = false;  // a webhook_test ping
  int64_t occurred_at_us = 0;
  std::string notification_date_start;
  std::string notification_date_end;
};

// INVALID_ARGUMENT when a stored JSON text does not parse or has the wrong
// type, or the resource kind is unknown.
absl::StatusOr<ParsedEvent> ParseClaimedEvent(const ClaimedEvent& event);

// "msg_" + the delivery's UUID without dashes: stable across retries.
std::string WebhookMessageId(std::string_view delivery_id);

// "octo-webhooks/<version>".
std::string_view UserAgent();

// The request for one attempt of `delivery` at `timestamp` (Unix seconds):
//   Content-Type: application/json
//   User-Agent: octo-webhooks/<version>      (unless the webhook sets its own)
//   <the webhook's headers, by name>         (except Authorization when the URL has credentials,
//                                             and Content-Language when a variant is sent)
//   Authorization: Basic ...                 (URL credentials; the URL sent has none)
//   Content-Language: <tag>                  (a localized variant was chosen)
//   webhook-id, webhook-timestamp, webhook-signature
// The resource is the guest's language variant when the webhook uses the
// contact language and one matches (octo_payload SelectContactLocale).
// INVALID_ARGUMENT when the webhook's stored JSON is malformed or its secret
// does not decode.
absl::StatusOr<OutgoingRequest> RenderRequest(const ClaimedDelivery& delivery, const ParsedEvent& event,
                                              int64_t timestamp);

}  // namespace octo::delivery
