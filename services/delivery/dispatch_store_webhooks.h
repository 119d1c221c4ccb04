#pragma once
// The webhooks rows a result write changes (endpoint health, disabling),
// locked before any other row: the lock order is webhooks, then
// ordered_resources, then deliveries (docs/delivery.md, "Lock order").
// Internal to PgDispatchStore (dispatch_store.cc).
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "absl/time/time.h"
#include "services/delivery/dispatch_store.h"

namespace octo::delivery::dispatch_sql {

// What a result write changes in webhooks rows, decided (and the rows
// locked) by kLockWebhooks.
struct WebhookWrites {
  std::set<std::string> track;    // failing_since changes
  std::set<std::string> failing;  // disabled: failing longer than the limit
  std::set<std::string> gone;     // disabled: 410 Gone
  // Pending deliveries cancelled, their resources locked first: 410 or
  // failing (a webhook disabled before this write only while it still has
  // a pending delivery, kGonePending).
  std::set<std::string> cancel;
  // 410 of a webhook disabled before, with nothing pending: only the
  // results' own deliveries they leave pending are cancelled.
  std::set<std::string> cancel_own;
};

// Locks, in id order, the webhooks rows the results will write
// (kLockWebhooks, prepared on the connection). `health` is HealthJson's,
// `gone` GoneWebhooks', `disable_after` the failing limit.
WebhookWrites LockWebhooks(pqxx::work& txn, const std::string& health,
                           const std::vector<std::pair<std::string, std::string>>& gone,
                           absl::Duration disable_after);

// After the results' write: those of webhooks in `webhooks`
// (WebhookWrites::cancel_own, answered 410 in `results`) that left their
// delivery pending are cancelled, as kCancelPending would have.
void CancelOwnPending(pqxx::work& txn, const std::vector<DeliveryResult>& results,
                      const std::set<std::string>& webhooks);

// The entries of the health JSON array `health` whose webhook is in `ids`.
std::string HealthOf(const std::string& health, const std::set<std::string>& ids);

// `ids` as a uuid[] literal: '{a,b}' (canonical uuid text: nothing to quote).
std::string UuidArray(const std::set<std::string>& ids);

}  // namespace octo::delivery::dispatch_sql
