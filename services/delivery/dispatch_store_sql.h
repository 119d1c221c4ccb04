#pragma once
// The statements of PgDispatchStore (dispatch_store.cc), apart so that the
// store's logic reads on its own. docs/delivery.md, "Queue and lease" and
// "Faults", explains the columns they maintain.

#include "services/delivery/dispatch_webhook_sql.h"
#include "services/delivery/ordered_sql.h"

namespace octo::delivery::dispatch_sql {

// clang-format off
// Microseconds since the Unix epoch: exact (extract() returns numeric).
#define OCTO_MICROS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

// The previous claim of a picked row never reported (its process stopped).
#define OCTO_UNREPORTED "(d.claimed_attempt IS NOT NULL)"
// ... and this claim would be one unreported claim too many: quarantine.
#define OCTO_QUARANTINE "(d.claimed_attempt IS NOT NULL AND d.unreported_claims + 1 >= $3::integer)"
// A picked row whose claims ended without a result twice in a row, its
// previous claim's included (its process died with it in flight twice), or
// a suspect whose last claim was released unsent (that keeps the count, see
// OCTO_EVIDENCE): it is claimed alone, so that when it is the one that
// crashes the process, deliveries claimed beside it are not counted with
// it. The same test as the claim's returned flag (its unreported_claims
// after the UPDATE >= 2).
#define OCTO_SUSPECT "(unreported_claims + (claimed_attempt IS NOT NULL)::int >= 2)"
// The attempt number a claim reserves: after everything recorded or lost.
#define OCTO_RESERVED "(greatest(d.attempt_count, COALESCE(d.claimed_attempt, 0)) + 1)"

// Ordered delivery (docs/delivery.md, "Ordered delivery"): a delivery of an
// ordered webhook (ordered_resource_id set) may be claimed only while no
// other pending delivery of its resource comes before it (occurred_at, then
// sequence). Whether one of the resource is being sent is the resource's
// lock (`free` below: in_flight_until), not a lease here: a delivery in
// flight may have stopped being pending (cancelled, or finished by a late
// result) while its send still runs. Evaluated only for ordered rows (the
// OR stops at the NULL test for the others); reads
// deliveries_ordered_unfinished_idx (pending said `completed_at IS NULL`,
// see ordered_sql.h kPromoteHeads: never the queue's index, migration
// 0018). The resource's later deliveries wait with next_attempt_at =
// 'infinity' (never due: the claim does not even see them) until
// kPromoteHeads makes the next one due. A head whose resource a send still
// holds (in_flight_until not past: its delivery in flight was cancelled,
// or finished by a late result) is not picked either: `free`
// would drop it, and picked it would take a place of the batch (and a row
// lock) from a due delivery of another resource. Read by primary key.
#define OCTO_HEAD_OF_RESOURCE                                                     \
  "(q.ordered_resource_id IS NULL OR (NOT EXISTS (SELECT 1 FROM deliveries p"     \
  "  WHERE p.ordered_resource_id = q.ordered_resource_id AND p.completed_at IS NULL"  \
  "    AND p.ordered_resource_id IS NOT NULL AND p.id <> q.id"                     \
  "    AND (p.ordered_at, p.sequence) < (q.ordered_at, q.sequence))"              \
  "  AND NOT EXISTS (SELECT 1 FROM ordered_resources h"                           \
  "    WHERE h.id = q.ordered_resource_id AND h.in_flight_until >= now())))"

// $1 = batch size, $2 = lease in milliseconds, $3 = claims without a result
// after which a delivery is quarantined, $4 = whether a suspect may be taken
// (false while the process has one in flight). `picked` takes the due rows
// in next_attempt_at order from the partial index, skipping rows another
// session holds locked; `chosen` keeps them all, or only one suspect (see
// OCTO_SUSPECT: the others stay due, for the next claim), or without $4
// every picked row but the suspects; the UPDATE
// leases them (found by primary key, an
// array: the planner then never scans the whole table), reserves the
// attempt number of this claim, and, for a row whose previous claim never
// reported, records that attempt as `interrupted` (or quarantines the row:
// failed, not returned for sending). The outer SELECT joins what the request
// is rendered from but the event (fetched apart, once each: kClaimEvents).
constexpr Statement kClaim{
    "dispatch_claim",
    "WITH picked AS ("
    "  SELECT id, attempt_count, claimed_attempt, unreported_claims, lease_expires_at AS old_lease,"
    "    ordered_resource_id, created_at"
    "  FROM deliveries q"
    "  WHERE state = 'pending' AND next_attempt_at <= now()"
    "    AND (lease_expires_at IS NULL OR lease_expires_at < now())"
    "    AND " OCTO_HEAD_OF_RESOURCE
    "  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED),"
    " chosen AS MATERIALIZED ("
    "  SELECT * FROM picked WHERE $4::boolean AND NOT EXISTS (SELECT 1 FROM picked WHERE " OCTO_SUSPECT ")"
    "  UNION ALL"
    "  (SELECT * FROM picked WHERE $4::boolean AND " OCTO_SUSPECT " ORDER BY id LIMIT 1)"
    "  UNION ALL"
    "  SELECT * FROM picked WHERE NOT $4::boolean AND NOT " OCTO_SUSPECT "),"
    // Ordered delivery: the resource of a chosen ordered row is taken for the
    // lease (ordered_resources.in_flight_until), unless a concurrent claim
    // holds or just took it (its lock is skipped; a committed take is seen by
    // the recheck of the locked row's newest version): one delivery of a
    // resource in flight, whatever this statement's snapshot missed. The
    // rows whose resource was not taken are not claimed (they stay due).
    " free AS MATERIALIZED ("
    "  SELECT o.id FROM ordered_resources o"
    "  WHERE EXISTS (SELECT 1 FROM chosen WHERE ordered_resource_id IS NOT NULL)"  // else not even a scan
    "    AND o.id = ANY(ARRAY(SELECT ordered_resource_id FROM chosen WHERE ordered_resource_id IS NOT NULL))"
    "    AND (o.in_flight_until IS NULL OR o.in_flight_until < now())"
    "  FOR UPDATE SKIP LOCKED),"
    // The lock is the lease, from the same now(): the result of this claim
    // recognises it by its lease token (kReleaseOrdered). A row this claim
    // quarantines is not sent: its resource is not held.
    " taken AS ("
    "  UPDATE ordered_resources o SET in_flight_until = CASE WHEN EXISTS (SELECT 1 FROM chosen c"
    "    WHERE c.ordered_resource_id = o.id AND c.claimed_attempt IS NOT NULL"
    "      AND c.unreported_claims + 1 >= $3::integer) THEN NULL"
    "    ELSE now() + $2::bigint * interval '1 millisecond' END"
    "  WHERE EXISTS (SELECT 1 FROM free) AND o.id = ANY(ARRAY(SELECT id FROM free)) RETURNING o.id),"
    " claimed AS ("
    "  UPDATE deliveries d SET"
    "    lease_expires_at = CASE WHEN " OCTO_QUARANTINE " THEN NULL"
    "      ELSE now() + $2::bigint * interval '1 millisecond' END,"
    "    attempt_count = greatest(d.attempt_count, COALESCE(d.claimed_attempt, 0)),"
    "    claimed_attempt = CASE WHEN " OCTO_QUARANTINE " THEN NULL ELSE " OCTO_RESERVED " END,"
    "    unreported_claims = d.unreported_claims + " OCTO_UNREPORTED "::int,"
    "    redeliver_requested = false,"
    "    state = CASE WHEN " OCTO_QUARANTINE " THEN 'failed' ELSE d.state END,"
    "    completed_at = CASE WHEN " OCTO_QUARANTINE " THEN now() ELSE d.completed_at END,"
    "    last_http_status = CASE WHEN " OCTO_UNREPORTED " THEN NULL ELSE d.last_http_status END,"
    "    last_error_class = CASE WHEN " OCTO_UNREPORTED " THEN 'interrupted' ELSE d.last_error_class END"
    "  WHERE d.id = ANY(ARRAY(SELECT id FROM chosen"
    "    WHERE ordered_resource_id IS NULL OR ordered_resource_id IN (SELECT id FROM taken)))"
    // The partition key beside the id (migration 0013): the weeks outside
    // the chosen rows' span are pruned at execution (a range prunes on a
    // subquery's value; `= ANY` of an array would not).
    "    AND d.created_at >= (SELECT min(created_at) FROM chosen)"
    "    AND d.created_at <= (SELECT max(created_at) FROM chosen)"
    "  RETURNING d.id, d.event_id, d.webhook_id, d.attempt_count, d.lease_expires_at, d.state,"
    "    d.ordered_resource_id, d.sequence, d.created_at, d.parked_backlog, d.unreported_claims),"
    // The rows are locked by `picked`: its values are the ones the UPDATE saw.
    " lost AS ("
    "  INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms,"
    "    http_status, error_class, response_snippet, delivery_created_at)"
    "  SELECT id, greatest(attempt_count, claimed_attempt),"
    "    least(now(), COALESCE(old_lease - $2::bigint * interval '1 millisecond', now())), 0, NULL,"
    "    'interrupted', CASE WHEN unreported_claims + 1 >= $3::integer THEN"
    "      'quarantined: ' || $3::integer::text || ' claims of this delivery in a row ended without a recorded outcome"
    " (the process stopped each time, e.g. it crashed while sending it); it is not tried again unless redelivered'"
    "    ELSE 'interrupted: the process stopped before the outcome of this attempt was recorded;"
    " whether the request reached the endpoint is unknown' END, created_at"
    "  FROM chosen WHERE claimed_attempt IS NOT NULL AND id IN (SELECT id FROM claimed)"
    "  ON CONFLICT (delivery_id, attempt_number, delivery_created_at) DO NOTHING),"
    // The batch's webhooks (a few for many rows) with their supplier, each
    // read once by primary key: joined per claimed row, the planner (which
    // expects a handful of claimed rows) probed connections once per row.
    // The supplier through the webhook's connection, not the event: the same
    // row (an event reaches only webhooks of its supplier's connections, a
    // webhook never changes connection nor a connection supplier), without
    // reading events here. events is partitioned by week and joined by id
    // alone it was probed in every week's primary key per claimed row; and
    // the plan cached while a week's partition was small read it whole at
    // every claim: 3,300-7,000 of a claim's 3,700-10,400 buffers in the
    // benchmark (docs/PERFORMANCE.md, "The claim's cost and the history").
    // The events themselves are read apart, once each (kClaimEvents).
    " hooks AS MATERIALIZED ("
    "  SELECT w.*, s.id AS supplier_id, s.name AS supplier_name, s.endpoint AS supplier_endpoint,"
    "    s.contact AS supplier_contact"
    "  FROM webhooks w JOIN connections cn ON cn.id = w.connection_id JOIN suppliers s ON s.id = cn.supplier_id"
    "  WHERE w.id = ANY(ARRAY(SELECT DISTINCT webhook_id FROM claimed)))"
    " SELECT c.id::text, c.attempt_count, COALESCE(" OCTO_MICROS("c.lease_expires_at") ", 0), c.event_id::text,"
    "  w.id::text, w.event, w.url, w.retry_on_error, w.use_contact_language,"
    "  w.headers::text, w.capabilities::text, w.secret, w.status = 'enabled',"
    "  w.supplier_id::text, w.supplier_name, w.supplier_endpoint, w.supplier_contact::text,"
    "  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret ELSE '' END,"
    "  COALESCE(w.rate_limit_per_second, 0), COALESCE(w.max_concurrency, 0), c.state <> 'pending', w.dialect,"
    "  COALESCE(c.ordered_resource_id, 0), COALESCE(c.sequence, 0), " OCTO_MICROS("c.created_at") ","
    "  COALESCE(c.parked_backlog, false),"
    // A suspect (OCTO_SUSPECT): two or more unreported, this claim counted.
    "  c.unreported_claims >= 2"
    " FROM claimed c JOIN hooks w ON w.id = c.webhook_id"};

// $1 = '{uuid,...}'.
constexpr Statement kClaimEvents{
    "dispatch_claim_events",
    "SELECT id::text, event, resource_kind, resource::text, COALESCE(localized::text, '{}'),"
    "  COALESCE(diff::text, '[]'), COALESCE(product_id, ''), COALESCE(option_id, ''),"
    "  " OCTO_MICROS("created_at") ", " OCTO_MICROS("occurred_at") ","
    "  COALESCE(notification_date_start::text, ''), COALESCE(notification_date_end::text, '')"
    " FROM events WHERE id = ANY($1::uuid[])"};

// Whether the result's claim still holds the delivery: its lease token is
// the one the claim set (not re-claimed since, whatever the time now).
#define OCTO_OWNED \
  "(d.lease_expires_at IS NOT NULL AND " OCTO_MICROS("d.lease_expires_at") " = r.lease)"
// A redeliver arrived while this claim's send ran: due again now.
#define OCTO_REDO "(" OCTO_OWNED " AND d.redeliver_requested)"
// The normal case: the claim's outcome decides the state.
#define OCTO_APPLY "(" OCTO_OWNED " AND NOT d.redeliver_requested AND d.state = 'pending')"
// Re-claimed meanwhile (by another replica after the lease ran out), but
// the endpoint accepted this send: the delivery is done.
#define OCTO_LATE_SUCCESS \
  "(NOT " OCTO_OWNED " AND d.state = 'pending' AND r.act = 'attempt' AND r.state = 'succeeded')"
// Re-claimed meanwhile, but the endpoint answered this send 410 Gone: the
// webhook is disabled with this result and its pending deliveries are
// cancelled, so the delivery that was told Gone ends failed (with that
// 410) rather than cancelled.
#define OCTO_LATE_GONE \
  "(NOT " OCTO_OWNED " AND d.state = 'pending' AND r.act = 'attempt' AND r.state = 'failed' AND r.status = 410)"
// The attempt number: reserved at claim time (r.num), else the next one.
#define OCTO_NUM "(CASE WHEN r.num > 0 THEN r.num ELSE d.attempt_count + 1 END)"
// This result is the report its claim owed (see kClaim).
#define OCTO_REPORTS "(" OCTO_OWNED " OR d.claimed_attempt = " OCTO_NUM ")"
// ... and it starts the count of claims without a result again: an
// attempt ran (the send did not crash the process), or a claim of a
// delivery that is no suspect (OCTO_SUSPECT) ended without a send. A
// suspect's claim released unsent (shutdown, its webhook's limits; the
// pipeline sends a suspect past its destination's line) proves nothing
// either way: its count stays, so it stays a suspect and its next crash
// counts (a crashing delivery released once as a suspect needed 5 crashes
// instead of 3). Before suspicion a release still resets: a kill -9 storm
// leaves hundreds of deliveries claimed in their destinations' lines, and
// keeping their counts through the releases that follow made some suspects
// and quarantined them for kills not their own (KillFaultTest).
#define OCTO_EVIDENCE "(" OCTO_REPORTS " AND (r.act = 'attempt' OR d.unreported_claims < 2))"
// The outcome becomes the delivery's last one: not after it succeeded, and
// not older than an attempt already recorded.
#define OCTO_LAST \
  "(r.act = 'attempt' AND d.state <> 'succeeded' AND " OCTO_NUM " >= d.attempt_count)"

// $1 = a JSON array of results (see ResultsJson). One UPDATE per batch; an
// attempt always counts (it happened) and is inserted under the number its
// claim reserved. Idempotent: written twice (a commit in doubt, retried) it
// changes nothing more, since the first write cleared the lease and the
// attempt's primary key exists (a row `interrupted` by a claim that gave
// the delivery up meanwhile is replaced by the real outcome). Deliveries
// that no longer exist join nothing: dropped. The `= ANY(ARRAY(...))` lets
// the planner find the rows by primary key.
constexpr Statement kWriteResults{
    "dispatch_write_results",
    "WITH r AS MATERIALIZED ("
    "  SELECT * FROM json_to_recordset($1::json) AS x("
    "    id uuid, lease bigint, num integer, act text, started bigint, duration double precision,"
    "    status integer, error text, snippet text, state text, delay bigint, created bigint)),"
    // The weeks of the batch's deliveries (migration 0013): the others are
    // pruned at execution. A result without its created_at (0) searches all.
    " span AS MATERIALIZED ("
    "  SELECT CASE WHEN bool_and(created > 0) THEN 'epoch'::timestamptz + min(created) * interval '1 microsecond'"
    "    ELSE '-infinity' END AS low,"
    "   CASE WHEN bool_and(created > 0) THEN 'epoch'::timestamptz + max(created) * interval '1 microsecond'"
    "    ELSE 'infinity' END AS high FROM r),"
    " upd AS ("
    "  UPDATE deliveries d SET"
    "    attempt_count = CASE WHEN r.act = 'attempt' THEN greatest(d.attempt_count, " OCTO_NUM ")"
    "      ELSE d.attempt_count END,"
    "    state = CASE WHEN " OCTO_REDO " THEN 'pending' WHEN " OCTO_APPLY " THEN r.state"
    "      WHEN " OCTO_LATE_SUCCESS " THEN 'succeeded' WHEN " OCTO_LATE_GONE " THEN 'failed' ELSE d.state END,"
    "    next_attempt_at = CASE WHEN " OCTO_REDO " THEN now()"
    "      WHEN " OCTO_APPLY " AND r.state = 'pending' AND (r.act = 'attempt' OR r.delay > 0)"
    "      THEN now() + r.delay * interval '1 millisecond' ELSE d.next_attempt_at END,"
    // Parked into a backlog slot (act 'park': released because its
    // destination could not start it within the lease) and not ordered;
    // any other result of the owning claim clears the mark (kPullForward).
    "    parked_backlog = CASE WHEN " OCTO_APPLY " AND r.act = 'park' AND r.delay > 0"
    "      AND d.ordered_resource_id IS NULL THEN true"
    "      WHEN " OCTO_OWNED " THEN NULL ELSE d.parked_backlog END,"
    "    lease_expires_at = CASE WHEN " OCTO_OWNED " THEN NULL ELSE d.lease_expires_at END,"
    "    completed_at = CASE WHEN " OCTO_REDO " THEN NULL"
    "      WHEN " OCTO_APPLY " AND r.state <> 'pending' THEN now()"
    "      WHEN " OCTO_LATE_SUCCESS " OR " OCTO_LATE_GONE " THEN now() ELSE d.completed_at END,"
    "    redeliver_requested = CASE WHEN " OCTO_OWNED " THEN false ELSE d.redeliver_requested END,"
    "    claimed_attempt = CASE WHEN " OCTO_REPORTS " THEN NULL ELSE d.claimed_attempt END,"
    "    unreported_claims = CASE WHEN " OCTO_EVIDENCE " THEN 0 ELSE d.unreported_claims END,"
    "    last_http_status = CASE WHEN " OCTO_LAST " THEN r.status ELSE d.last_http_status END,"
    "    last_error_class = CASE WHEN " OCTO_LAST " THEN r.error ELSE d.last_error_class END"
    "  FROM r WHERE d.id = r.id AND d.id = ANY(ARRAY(SELECT id FROM r))"
    "    AND d.created_at >= (SELECT low FROM span) AND d.created_at <= (SELECT high FROM span)"
    "  RETURNING d.id, CASE WHEN r.num > 0 THEN r.num ELSE d.attempt_count END AS num,"
    "    r.act, r.started, r.duration, r.status, r.error, r.snippet, d.ordered_resource_id, r.lease,"
    "    d.created_at),"
    " ins AS ("
    "  INSERT INTO delivery_attempts AS a (delivery_id, attempt_number, started_at, duration_ms,"
    "    http_status, error_class, response_snippet, delivery_created_at)"
    "  SELECT id, num, 'epoch'::timestamptz + started * interval '1 microsecond',"
    "    duration, status, error, snippet, created_at"
    "  FROM upd WHERE act = 'attempt'"
    "  ON CONFLICT (delivery_id, attempt_number, delivery_created_at) DO UPDATE SET started_at = EXCLUDED.started_at,"
    "    duration_ms = EXCLUDED.duration_ms, http_status = EXCLUDED.http_status,"
    "    error_class = EXCLUDED.error_class, response_snippet = EXCLUDED.response_snippet"
    "  WHERE a.error_class = 'interrupted')"
    // The ordered resources among the results: their next deliveries may be
    // due now (kLockOrdered, kPromoteHeads). '{}' for unordered webhooks.
    // And each one's (resource, lease token) for kReleaseOrdered.
    " SELECT count(*), COALESCE(array_agg(DISTINCT ordered_resource_id)"
    "  FILTER (WHERE ordered_resource_id IS NOT NULL), '{}')::text,"
    "  COALESCE(json_agg(json_build_object('id', ordered_resource_id, 'lease', lease))"
    "  FILTER (WHERE ordered_resource_id IS NOT NULL AND lease IS NOT NULL), '[]')::text FROM upd"};

// Ordered delivery: $1 = a JSON array of {id: resource, lease: the result's
// lease token}. Frees each resource whose lock is the one the result's claim
// took (the claim sets lock and lease from the same now()). A result whose
// claim no longer holds the resource (its lease ran out and another claim
// took it, e.g. a late success from another replica) frees nothing: the
// delivery being sent meanwhile keeps the resource. Run after kLockOrdered.
// Returns, per resource freed, whether its next delivery (the first
// pending, as kPromoteHeads finds it) is due already: claimable now, with no
// promotion to say so (it was made due while this send ran: an earlier-
// occurred event published meanwhile, a redeliver), so the caller NOTIFYs.
constexpr Statement kReleaseOrdered{
    "dispatch_release_ordered",
    "UPDATE ordered_resources o SET in_flight_until = NULL"
    " FROM json_to_recordset($1::json) AS x(id bigint, lease bigint)"
    " WHERE o.id = x.id AND o.id = ANY(ARRAY(SELECT id FROM json_to_recordset($1::json) AS y(id bigint, lease bigint)))"
    "  AND o.in_flight_until IS NOT NULL AND " OCTO_MICROS("o.in_flight_until") " = x.lease"
    " RETURNING COALESCE((SELECT p.next_attempt_at <= now() FROM deliveries p"
    "   WHERE p.ordered_resource_id = o.id AND p.completed_at IS NULL AND p.ordered_resource_id IS NOT NULL"
    "   ORDER BY p.ordered_at, p.sequence LIMIT 1), false)"};

// kReleaseOrdered without the probe, for a write whose promotion made a
// delivery due already (it NOTIFYs anyway, so the probe of each freed
// resource's next delivery, in every week's pending-ordered index, would
// change nothing).
constexpr Statement kReleaseOrderedQuiet{
    "dispatch_release_ordered_quiet",
    "UPDATE ordered_resources o SET in_flight_until = NULL"
    " FROM json_to_recordset($1::json) AS x(id bigint, lease bigint)"
    " WHERE o.id = x.id AND o.id = ANY(ARRAY(SELECT id FROM json_to_recordset($1::json) AS y(id bigint, lease bigint)))"
    "  AND o.in_flight_until IS NOT NULL AND " OCTO_MICROS("o.in_flight_until") " = x.lease"};

// Ordered delivery: the next delivery of each resource (ordered_sql.h).
constexpr Statement kLockOrdered{"dispatch_lock_ordered", ordered_sql::kLockOrdered};
constexpr Statement kPromoteHeads{"dispatch_promote_heads", ordered_sql::kPromoteHeads};

// The deliveries among $1 ('{uuid,...}') that no other session holds
// locked, locked now for this transaction: written while the rest wait.
// $2, $3 = the span of their created_at (OCTO_CREATED_FROM): only those
// weeks' primary keys are read.
constexpr Statement kLockFree{
    "dispatch_lock_free",
    "SELECT id::text FROM deliveries WHERE id = ANY($1::uuid[])"
    "  AND created_at >= " OCTO_CREATED_FROM("$2") " AND created_at <= " OCTO_CREATED_TO("$3")
    " FOR UPDATE SKIP LOCKED"};

// Ordered delivery, after a lock timeout: $1 = '{uuid,...}', deliveries
// this transaction locked (kLockFree), $2, $3 as there. Locks their
// resources' rows that no other session holds (in id order; never
// waiting), and returns the
// deliveries whose resource row another session holds: their results wait
// too, so that the write (kLockOrdered, kReleaseOrdered) cannot time out on
// it again and hold back the whole batch.
constexpr Statement kLockFreeResources{
    "dispatch_lock_free_resources",
    "WITH mine AS MATERIALIZED ("
    "  SELECT id, ordered_resource_id FROM deliveries"
    "  WHERE id = ANY($1::uuid[]) AND ordered_resource_id IS NOT NULL"
    "    AND created_at >= " OCTO_CREATED_FROM("$2") " AND created_at <= " OCTO_CREATED_TO("$3") "),"
    " locked AS MATERIALIZED ("
    "  SELECT o.id FROM ordered_resources o"
    "  WHERE EXISTS (SELECT 1 FROM mine) AND o.id = ANY(ARRAY(SELECT ordered_resource_id FROM mine))"
    "  ORDER BY o.id FOR UPDATE SKIP LOCKED)"
    " SELECT id::text FROM mine WHERE ordered_resource_id NOT IN (SELECT id FROM locked)"};

// A backlog pulled forward (docs/delivery.md, "Pulling a parked backlog
// forward"): $1 = '{uuid,...}' webhooks of one destination that has spare
// capacity again, $2 = at most this many. Their parked deliveries (released
// as backlog into a later slot, parked_backlog, deliveries_parked_idx) that
// are not due yet and not leased become due now, earliest slot first, at
// most $2 per webhook read and $2 in all. Deliveries waiting for a retry
// (their attempt's result cleared the mark), a Retry-After, a webhook's
// rate limit and ordered ones (never marked) keep their time; rows another
// session holds are skipped. The mark is cleared: a pulled delivery is not
// parked any more (and leaves the partial index; the row is rewritten for
// next_attempt_at anyway), so its claim does not report a parked backlog
// again (ClaimedDelivery::parked).
constexpr Statement kPullForward{
    "dispatch_pull_forward",
    "WITH pick AS MATERIALIZED ("
    "  SELECT p.id, p.created_at FROM unnest($1::uuid[]) AS w(id) CROSS JOIN LATERAL ("
    "    SELECT q.id, q.created_at, q.next_attempt_at FROM deliveries q"
    "    WHERE q.webhook_id = w.id AND q.state = 'pending' AND q.parked_backlog"
    "      AND q.next_attempt_at > now() AND q.next_attempt_at < 'infinity'"
    "      AND (q.lease_expires_at IS NULL OR q.lease_expires_at < now())"
    "    ORDER BY q.next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) p"
    "  ORDER BY p.next_attempt_at LIMIT $2)"
    " UPDATE deliveries d SET next_attempt_at = now(), parked_backlog = NULL"
    " FROM pick WHERE d.id = pick.id AND d.created_at = pick.created_at"
    "  AND d.id = ANY(ARRAY(SELECT id FROM pick))"};
// clang-format on

constexpr Statement kStatements[] = {kClaim,          kClaimEvents,   kWriteResults, kLockFree,
                                     kDisableWebhook, kCancelPending, kTrackFailing, kDisableFailing,
                                     kLockOrdered,    kPromoteHeads,  kReleaseOrdered, kReleaseOrderedQuiet,
                                     kLockFreeResources, kPullForward, kLockWebhooks,  kLockOrderedAndCancelled,
                                     kGonePending,    kCancelOwnPending};

}  // namespace octo::delivery::dispatch_sql
