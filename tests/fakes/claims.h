#pragma once
// Claimed deliveries for the dispatcher's unit tests: a booking event and
// deliveries of it that render and sign (as PgDispatchStore::Claim returns
// them), so that the pipeline runs without a database.
//
// Example:
//   ClaimBatch batch = Claims({TestDelivery(1, "http://a.example/hook")});
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/delivery/dispatch_store.h"

namespace octo::testing {

// The result of sending claimed delivery `d` once: answered `status`,
// decided `kind` (a retry after `retry_delay`), under the claim's lease and
// reserved attempt number, with its partition and ordered resource as the
// dispatcher passes them on.
inline delivery::DeliveryResult AttemptResult(const delivery::ClaimedDelivery& d, int status,
                                              delivery::DecisionKind kind,
                                              absl::Duration retry_delay = absl::ZeroDuration()) {
  delivery::DeliveryResult r;
  r.delivery_id = d.id;
  r.webhook_id = d.webhook_id;
  r.lease_us = d.lease_us;
  r.created_us = d.created_us;
  r.ordered_resource_id = d.ordered_resource_id;
  r.attempt_number = d.attempt_count + 1;
  r.started_at = absl::Now();
  r.duration = absl::Milliseconds(5);
  r.attempt.http_status = status;
  r.decision.kind = kind;
  if (kind == delivery::DecisionKind::kRetry) r.decision.retry_delay = retry_delay;
  return r;
}

inline constexpr char kTestEventId[] = "00000000-0000-4000-8000-000000000001";

inline delivery::ClaimedEvent TestEvent() {
  delivery::ClaimedEvent e;
  e.id = kTestEventId;
  e.event = "booking_update";
  e.resource_kind = "booking";
  e.resource_json = R"({"uuid":"b-1","status":"CONFIRMED","pricing":{"retail":1000}})";
  e.localized_json = "{}";
  e.diff_json = R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}])";
  e.created_at = absl::FromUnixSeconds(1767225600);
  return e;
}

// Delivery number `n` (its id and, unless given, its webhook's id derive
// from n), to `url`.
inline delivery::ClaimedDelivery TestDelivery(int n, std::string url, std::string webhook_id = "") {
  delivery::ClaimedDelivery d;
  d.id = absl::StrFormat("6f1c2a3b-4d5e-4f60-8172-%012d", n);
  d.lease_us = 1000 + n;
  d.event_id = kTestEventId;
  d.webhook_id = webhook_id.empty() ? absl::StrFormat("11111111-2222-4333-8444-%012d", n) : webhook_id;
  d.webhook_event = "booking_update";
  d.url = std::move(url);
  d.use_contact_language = false;
  d.headers_json = "{}";
  d.capabilities_json = "[]";
  d.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  d.supplier_id = "sup-1";
  d.supplier_name = "Tours Ltd";
  d.supplier_endpoint = "https://api.tours.example/octo";
  d.supplier_contact_json = "{}";
  return d;
}

inline delivery::ClaimBatch Claims(std::vector<delivery::ClaimedDelivery> deliveries) {
  delivery::ClaimBatch b;
  b.deliveries = std::move(deliveries);
  b.events.emplace(kTestEventId, TestEvent());
  return b;
}

}  // namespace octo::testing
