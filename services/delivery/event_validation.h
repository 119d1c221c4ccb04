#pragma once
// The rules a published event must follow, shared by the subscription
// service (EventService: reject before resolving webhooks) and the delivery
// service (DeliveryService.Enqueue: reject before storing). Pure functions,
// no I/O; the database constraints of services/schema/migrations/0002 enforce
// the same rules once more.
//
// Every failure is INVALID_ARGUMENT whose message starts with the field as the
// proto spells it, after the caller's prefix ("events[3].resource_json: not
// valid JSON ...").
//
// Example:
//   absl::StatusOr<ValidEvent> v = ValidateEvent(request.events(i).event(),
//                                                absl::StrCat("events[", i, "]."));
//   if (!v.ok()) return v.status();
//   store(v->resource_key, v->resource, ...);
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include "absl/status/statusor.h"
#include "octo/webhooks/v1/events.pb.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::delivery {

inline constexpr std::size_t kMaxIdempotencyKeyBytes = 200;
// resource_json, each localized variant and diff_json, each.
inline constexpr std::size_t kMaxResourceJsonBytes = 1 << 20;
inline constexpr std::size_t kMaxLocalizedVariants = 50;
inline constexpr std::size_t kMaxLanguageTagBytes = 35;
inline constexpr std::size_t kMaxResourceKeyBytes = 1000;
inline constexpr std::size_t kMaxProductIdBytes = 200;  // product_id and option_id
inline constexpr std::size_t kMaxDiffOps = 10000;
// Events per PublishEvents / Enqueue request.
inline constexpr int kMaxEventsPerBatch = 500;
// Webhooks per enqueued event.
inline constexpr int kMaxWebhooksPerEvent = 100000;
// gRPC message size limits: what octo-subscription accepts (a PublishEvents
// request) and what octo-delivery accepts (the same events plus their
// resolved webhook ids).
inline constexpr int kMaxPublishRequestBytes = 16 << 20;
inline constexpr int kMaxEnqueueRequestBytes = 64 << 20;

// What validating an event derived from it, for storing it.
struct ValidEvent {
  payload::ResourceKind kind = payload::ResourceKind::kBooking;
  // resource_key if the publisher set one, else derived from the resource
  // (octo::payload::ResourceKey).
  std::string resource_key;
  boost::json::value resource;  // resource_json, parsed (in ValidateEvent's `storage`)
  // localized_resource_json as one JSON object text: tag -> the publisher's
  // text byte for byte, tags in sorted order; "{}" when there are none.
  std::string localized_json;
  std::int64_t occurred_at_micros = 0;  // since the Unix epoch
};

// Checks every field of `event` (see events.proto):
//   idempotency_key  1..200 bytes, no control characters;
//   supplier_id      a UUID; connection_id empty or a UUID;
//   event            booking_update, order_update, availability_update or
//                    product_update;
//   resource_json    a JSON object of at most 1 MiB;
//   localized_resource_json  at most 50 variants, each keyed by a BCP 47
//                    language tag ("de", "en-GB"; distinct ignoring case) and
//                    a JSON object of at most 1 MiB;
//   diff_json        if set, a JSON array (at most 1 MiB, 10,000 ops) of op
//                    objects: "op" add/remove/replace, "path" a JSON pointer,
//                    "value" present for add and replace;
//   occurred_at      set, within 0001-01-01..9999-12-31;
//   resource_key     if set, 1..1000 bytes without control characters; if not,
//                    the resource must carry its identity (booking uuid,
//                    order/product id, availability id);
//   product_id, option_id  required for availability_update (1..200 bytes, no
//                    control characters), empty for the other events.
// `field_prefix` is prepended to the field name in messages. `storage` is
// where the parses are allocated (ValidEvent::resource included; the default
// heap when empty): a caller that drops the result soon may pass a
// boost::json::monotonic_resource that outlives it, and frees every node of
// the parse at once instead of one by one.
absl::StatusOr<ValidEvent> ValidateEvent(const ::octo::webhooks::v1::PublishEventRequest& event,
                                         std::string_view field_prefix = {},
                                         const boost::json::storage_ptr& storage = {});

// "de", "en-GB", "zh-Hant-TW", "es-419": letters (2..8), then "-" subtags of
// 1..8 letters or digits; at most 35 bytes.
bool IsLanguageTag(std::string_view tag);

}  // namespace octo::delivery
