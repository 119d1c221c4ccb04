#pragma once
// Ordered delivery (docs/delivery.md, "Ordered delivery"): the two
// statements that make a resource's next delivery due, shared by the
// dispatcher (after results and quarantines), the operations store (after a
// redeliver or replay) and the enqueue transaction (after new deliveries).
// Each registers them under its own names.

namespace octo::delivery::ordered_sql {

// clang-format off
// $1 = '{id,...}' of ordered_resources. Locks the rows in (webhook, kind,
// key) order, the order the enqueue's upsert takes them in (no deadlock
// between result writers, replays and enqueues over several resources; a
// redeliver or replay takes them before updating its deliveries, see
// kLockForRedeliver), before kPromoteHeads, in a statement of its own:
// the promotion's snapshot is then taken after the lock, so it sees the
// deliveries an enqueue that held the lock committed (and an enqueue that
// waits for it sees this transaction's finished deliveries).
inline constexpr char kLockOrdered[] =
    "SELECT count(*) FROM (SELECT id FROM ordered_resources WHERE id = ANY($1::bigint[])"
    " ORDER BY webhook_id, resource_kind, resource_key FOR UPDATE) AS locked";
// $1 = '{id,...}': makes the first pending delivery of each resource
// (occurred_at, then sequence) due now if it was waiting ('infinity'); a
// first delivery already due, retrying or in flight is left as it is. It
// never frees a resource (in_flight_until): only the result of the claim
// that took it does (dispatch_release_ordered), or the time passes. A
// delivery made due while the resource is still taken (its delivery in
// flight was cancelled, or finished by another replica's late result) waits
// for that.
// The heads are found with their partition key (created_at): the UPDATE
// reads only the weeks between the earliest and the latest head (pruned at
// execution), not every week's primary key; by id alone, each week's index
// was searched for every id (22,500 buffers of an empty week's index for
// 2,500 ids). Only the waiting heads are looked up again; the UPDATE
// rechecks 'infinity' on the row's newest version.
// "Pending" is said `completed_at IS NULL` (the same rows, by a CHECK of
// deliveries) in every look-up of the resource rule: only then can the
// planner use deliveries_ordered_unfinished_idx and never the queue's
// deliveries_due_idx (WHERE state = 'pending'), which stale statistics made
// it read whole per look-up (migration 0018).
inline constexpr char kPromoteHeads[] =
    "WITH heads AS MATERIALIZED ("
    "  SELECT h.id, h.created_at FROM unnest($1::bigint[]) AS r(id) CROSS JOIN LATERAL ("
    "    SELECT p.id, p.created_at, p.next_attempt_at FROM deliveries p"
    "    WHERE p.ordered_resource_id = r.id AND p.completed_at IS NULL AND p.ordered_resource_id IS NOT NULL"
    "    ORDER BY p.ordered_at, p.sequence LIMIT 1) h"
    "  WHERE h.next_attempt_at = 'infinity')"
    " UPDATE deliveries n SET next_attempt_at = now()"
    " WHERE n.id = ANY(ARRAY(SELECT id FROM heads))"
    "  AND n.created_at >= (SELECT min(created_at) FROM heads)"
    "  AND n.created_at <= (SELECT max(created_at) FROM heads)"
    "  AND n.next_attempt_at = 'infinity'";
// A redeliver or replay takes the resource rows before it updates the
// deliveries: updating a waiting delivery first, then waiting for the
// resource row, deadlocked with a result writer holding that row and making
// the same delivery due. The result writer takes them first too (its
// results carry their delivery's resource, DeliveryResult::
// ordered_resource_id), so a redeliver of a delivery whose result is being
// written waits for it instead of deadlocking with it.
// $1 = delivery, $2 = webhook.
inline constexpr char kLockForRedeliver[] =
    "SELECT count(*) FROM (SELECT o.id FROM ordered_resources o"
    " WHERE o.id = (SELECT d.ordered_resource_id FROM deliveries d"
    "   WHERE d.id = $1::uuid AND d.webhook_id = $2::uuid) FOR UPDATE) AS locked";
// $1 = webhook, $2 = since (µs), $3 = bound: the resources of the rows the
// replay is about to pick (the same selection), in kLockOrdered's order.
inline constexpr char kLockForReplay[] =
    "SELECT count(*) FROM (SELECT o.id FROM ordered_resources o WHERE o.id = ANY(ARRAY("
    "  SELECT r.ordered_resource_id FROM (SELECT ordered_resource_id FROM deliveries"
    "    WHERE webhook_id = $1::uuid AND state IN ('failed', 'cancelled')"
    "      AND created_at >= 'epoch'::timestamptz + $2::bigint * interval '1 microsecond'"
    "    ORDER BY created_at, id LIMIT $3) AS r WHERE r.ordered_resource_id IS NOT NULL))"
    " ORDER BY o.webhook_id, o.resource_kind, o.resource_key FOR UPDATE) AS locked";
// clang-format on

}  // namespace octo::delivery::ordered_sql
