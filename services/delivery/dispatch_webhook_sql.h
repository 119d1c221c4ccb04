#pragma once
// The webhooks statements of PgDispatchStore (dispatch_store.cc): endpoint
// health (failing_since, disabling), 410 Gone, the cancel of a disabled
// webhook's pending deliveries, and the locks a result write takes first
// (docs/delivery.md, "Endpoint health" and "Lock order"). Part of
// dispatch_store_sql.h, which includes it.

namespace octo::delivery::dispatch_sql {

struct Statement {
  const char* name;
  const char* sql;
};

// clang-format off
// The span of a batch's deliveries' created_at, the partition key (results
// carry it, DeliveryResult::created_us): `p` = its first or last µs as a
// parameter, 0 when some result lacks it (every week is then searched). A
// range of such an expression prunes the other weeks at execution; the id
// alone would probe every week's primary key. Used by dispatch_store_sql.h too.
#define OCTO_CREATED_FROM(p) \
  "(CASE WHEN " p "::bigint > 0 THEN 'epoch'::timestamptz + " p "::bigint * interval '1 microsecond'" \
  " ELSE '-infinity' END)"
#define OCTO_CREATED_TO(p) \
  "(CASE WHEN " p "::bigint > 0 THEN 'epoch'::timestamptz + " p "::bigint * interval '1 microsecond'" \
  " ELSE 'infinity' END)"

// 410 Gone: $1 = webhook id, $2 = reason.
constexpr Statement kDisableWebhook{
    "dispatch_disable_webhook",
    "UPDATE webhooks SET status = 'disabled', disabled_reason = $2, disabled_at = now(),"
    "  updated_at = greatest(now(), created_at)"
    " WHERE id = $1::uuid AND status = 'enabled'"};
// The lease stays: a send still running keeps the delivery (a replay then
// waits for its result, see ops_replay), and its result clears it.
constexpr Statement kCancelPending{
    "dispatch_cancel_pending",
    "UPDATE deliveries SET state = 'cancelled', completed_at = now()"
    " WHERE webhook_id = $1::uuid AND state = 'pending'"};

// 410 Gone of webhooks disabled before this write: $1 = '{uuid,...}'. Those
// with a pending delivery, whose deliveries the write cancels as when it
// disables a webhook (kLockOrderedAndCancelled, kCancelPending). The others
// had theirs cancelled already (by the first 410's write, or their claims):
// a write then locks none of their resources, cancels nothing but what its
// own results leave pending (kCancelOwnPending), and two such writes never
// cancel each other's deliveries. Read after kLockWebhooks locked the rows
// (a snapshot of its own: it sees what an earlier writer committed), before
// any resource or delivery row; a plain read (no lock).
constexpr Statement kGonePending{
    "dispatch_gone_pending",
    "SELECT w.id::text FROM unnest($1::uuid[]) AS w(id)"
    " WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending')"};
// The results' deliveries among $1 ('{uuid,...}', rows this write holds)
// that it left pending (a redeliver asked for during their send: due
// again), of webhooks kGonePending found with nothing pending; $2, $3 = the
// span of their created_at (OCTO_CREATED_FROM). Cancelled as kCancelPending
// would have, without reading the webhook's other deliveries.
constexpr Statement kCancelOwnPending{
    "dispatch_cancel_own_pending",
    "UPDATE deliveries SET state = 'cancelled', completed_at = now()"
    " WHERE id = ANY($1::uuid[]) AND state = 'pending'"
    "  AND created_at >= " OCTO_CREATED_FROM("$2") " AND created_at <= " OCTO_CREATED_TO("$3")};

// Endpoint health. $1 = a JSON array, one object
// per webhook with attempts in the batch: first_failure = when the batch's
// last run of failed attempts began (µs; null when its last attempt
// succeeded), reset = a success came before that run. failing_since is set
// on the first failure of a run and cleared by a success; unchanged rows
// are not written.
#define OCTO_NEW_FAILING_SINCE                                                  \
  "(CASE WHEN a.first_failure IS NULL THEN NULL"                                \
  "  WHEN a.reset THEN 'epoch'::timestamptz + a.first_failure * interval '1 microsecond'" \
  "  ELSE COALESCE(w.failing_since,"                                           \
  "    'epoch'::timestamptz + a.first_failure * interval '1 microsecond') END)"
constexpr Statement kTrackFailing{
    "dispatch_track_failing",
    "WITH a AS MATERIALIZED ("
    "  SELECT * FROM json_to_recordset($1::json) AS x(id uuid, first_failure bigint, reset boolean))"
    " UPDATE webhooks w SET failing_since = " OCTO_NEW_FAILING_SINCE
    " FROM a WHERE w.id = a.id AND w.failing_since IS DISTINCT FROM " OCTO_NEW_FAILING_SINCE};
// $1 = the same array plus `error` (the last attempt's outcome), $2 = the
// limit in milliseconds: enabled webhooks whose run of failures (still
// going: the batch ended on a failure) is older than the limit are disabled.
constexpr Statement kDisableFailing{
    "dispatch_disable_failing",
    "WITH a AS MATERIALIZED ("
    "  SELECT * FROM json_to_recordset($1::json) AS x(id uuid, first_failure bigint, error text))"
    " UPDATE webhooks w SET status = 'disabled', disabled_at = now(),"
    "  updated_at = greatest(now(), w.created_at),"
    "  disabled_reason = left('failing since ' ||"
    "    to_char(w.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || ': ' || a.error, 1000)"
    " FROM a WHERE w.id = a.id AND a.first_failure IS NOT NULL AND w.status = 'enabled'"
    "  AND w.failing_since <= now() - $2::bigint * interval '1 millisecond'"
    " RETURNING w.id::text, w.disabled_reason"};

// Lock order (docs/delivery.md, "Lock order"): webhooks rows, then
// ordered_resources rows, then deliveries rows. A result write takes the
// webhooks rows it will write first, in id order, in this one statement:
// the webhooks whose failing_since the batch changes, those it disables
// (failing longer than the limit, $3 ms) and those a 410 Gone disables or
// was answered by ($2 = '{uuid,...}'; the last column: enabled, so the 410
// disables it). $1 = the health JSON (kTrackFailing). A
// row that needs no write is not locked, so results of a healthy webhook
// never wait for each other; kTrackFailing, kDisableFailing and
// kDisableWebhook then write only the rows returned (locked, so what they
// read is what was decided here). Taking them after the delivery rows
// deadlocked: a writer holding a delivery row waited for the webhook row
// that another writer held while it cancelled that webhook's pending
// deliveries (after a 410, or past the failing limit). A 410 of a webhook
// disabled already locks its row too: two such writes would otherwise each
// cancel the other's deliveries in flight (kGonePending).
//
// Disabled for failing too long: the run of failures goes on with this
// batch and began before the limit (kDisableFailing).
#define OCTO_DISABLE_FAILING                                                   \
  "(a.first_failure IS NOT NULL AND w.status = 'enabled' AND "                 \
  OCTO_NEW_FAILING_SINCE " <= now() - $3::bigint * interval '1 millisecond')"
constexpr Statement kLockWebhooks{
    "dispatch_lock_webhooks",
    "WITH a AS MATERIALIZED ("
    "  SELECT * FROM json_to_recordset($1::json) AS x(id uuid, first_failure bigint, reset boolean)),"
    " g AS MATERIALIZED (SELECT DISTINCT id FROM unnest($2::uuid[]) AS y(id))"
    " SELECT w.id::text,"
    "  a.id IS NOT NULL AND w.failing_since IS DISTINCT FROM " OCTO_NEW_FAILING_SINCE ","
    "  " OCTO_DISABLE_FAILING ","
    "  g.id IS NOT NULL AND w.status = 'enabled'"
    " FROM webhooks w LEFT JOIN a ON a.id = w.id LEFT JOIN g ON g.id = w.id"
    " WHERE w.id = ANY(ARRAY(SELECT id FROM a UNION SELECT id FROM g))"
    "  AND ((a.id IS NOT NULL AND w.failing_since IS DISTINCT FROM " OCTO_NEW_FAILING_SINCE ")"
    "    OR " OCTO_DISABLE_FAILING " OR g.id IS NOT NULL)"
    // Locked in id order (the sort comes before the lock); a row another
    // writer changed meanwhile is judged again on its new version.
    " ORDER BY w.id FOR NO KEY UPDATE OF w"};

// Ordered delivery: $1 = '{id,...}' resources of the results, $2 =
// '{uuid,...}' webhooks whose pending deliveries this write cancels (410,
// failing): all those rows in kLockOrdered's order, before any delivery row.
constexpr Statement kLockOrderedAndCancelled{
    "dispatch_lock_ordered_and_cancelled",
    "SELECT count(*) FROM (SELECT id FROM ordered_resources"
    " WHERE id = ANY($1::bigint[]) OR webhook_id = ANY($2::uuid[])"
    " ORDER BY webhook_id, resource_kind, resource_key FOR UPDATE) AS locked"};
// clang-format on

}  // namespace octo::delivery::dispatch_sql
