#pragma once
// The SQL of the enqueue transaction (store.cc), in the order it runs.
// Internal to the delivery store.
#include <array>

#include "services/common/pg_statements.h"
#include "services/delivery/ordered_sql.h"

namespace octo::delivery::enqueue {

// Registered with the store's pool (PgEventStore's constructor).
using Statement = PgStatement;

// clang-format off
#define OCTO_TIMESTAMP(param) "('epoch'::timestamptz + " param "::bigint * interval '1 microsecond')"
// clang-format on

// Transaction-scoped advisory locks on what the batch writes (its
// idempotency keys and resources), taken in ascending order: two batches
// that share keys or resources serialise instead of deadlocking on each
// other's rows (which PostgreSQL only detects after deadlock_timeout).
constexpr Statement kLockKeys{
    "enqueue_lock_keys", "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k"};

// The suppliers and connections of the batch, locked FOR KEY SHARE so that
// they cannot be deleted before the commit (the rows below reference them).
constexpr Statement kLockSuppliers{
    "enqueue_lock_suppliers",
    "SELECT id::text FROM suppliers WHERE id = ANY($1::uuid[]) FOR KEY SHARE"};
constexpr Statement kLockConnections{
    "enqueue_lock_connections",
    "SELECT id::text, supplier_id::text FROM connections WHERE id = ANY($1::uuid[]) "
    "FOR KEY SHARE"};

// The webhooks that receive the new events, resolved once, here: the enabled
// webhooks of the events' suppliers ($1) whose event, or one of whose
// event_types (a notification subscription wants several), is one of the
// events' types ($2), with their connection, supplier, dialect and types, so
// that C++ matches each event to its own (enqueue_plan.h: same supplier, the
// event or one of the types, the event's connection if it names one).
// Locked FOR KEY SHARE until the commit, in id order, so none is deleted
// before its deliveries are stored. Reads webhooks_resolve_idx
// (connection_id, event) WHERE status = 'enabled' per connection, and
// webhooks_resolve_types_idx for notification subscriptions (a webhook's
// event_types are empty, migration 0008).
constexpr Statement kResolveWebhooks{
    "enqueue_resolve_webhooks",
    "SELECT w.id::text, w.connection_id::text, c.supplier_id::text, w.event,"
    "  w.dialect = 'notification', array_to_string(w.event_types, ','), w.ordered"
    " FROM connections c JOIN webhooks w ON w.connection_id = c.id"
    " WHERE c.supplier_id = ANY($1::uuid[])"
    "   AND (w.event = ANY($2::text[])"
    "     OR (w.dialect = 'notification' AND w.event_types && $2::text[]))"
    "   AND w.status = 'enabled'"
    " ORDER BY w.id FOR KEY SHARE OF w"};

// The batch's new events ($1, a JSON array: ids made by the caller, the
// scalar fields, delivery counts; $4, $5, $6 text[]: their resources,
// localizations and final diffs, zipped with $1 by position by ROWS FROM)
// and their deliveries ($2 event ids, $3 webhook ids, pairwise), in one
// statement without joins: the planner's row estimates for JSON input are
// guesses, and a join between two of these CTEs became a nested loop (2.4 s
// for 500 events x 5 webhooks). The documents travel as text[] elements (in
// binary form: enqueue_recordset.h, JsonArray), each parsed once by its
// cast to json: inside $1 they were lexed twice
// (the parameter's validation, then json_to_recordset, which also copies
// each), about a third of this statement's CPU (docs/PERFORMANCE.md, "Row
// cost"). No ON CONFLICT: the key locks and kSelectEvents keep a key stored
// once (since migration 0013 events are partitioned by week and no unique
// constraint backs this; a key is remembered while its event is kept). A
// delivery's created_at is its event's (both default to this transaction's
// now()): the partition key that keeps them in one weekly slice.
//
// Hand-off (handoff.h, docs/delivery.md "Hand-off at enqueue"): the first
// deliveries of $2/$3, as many as $7 has ids (made here: unnest pads the
// shorter array with NULLs, so the others keep the default id and no lease),
// are inserted leased to this process's dispatcher exactly as a claim
// leases a row: lease_expires_at = now() + $8 ms (its token), the attempt
// number reserved (claimed_attempt 1; attempt_count and unreported_claims
// stay 0, as a claim of a new row leaves them). The statement then returns
// what the requests are rendered from, once per handed-off webhook ($9),
// read by primary key with its connection's supplier, as the claim reads it
// (kClaim's hooks; no join with the inserted rows, whose count the planner
// can only guess), and the lease token and created_at (µs) of the rows:
// the same now() as the insert's. $7, $9 empty: no rows returned.
constexpr Statement kInsertEvents{
    "enqueue_insert_events",
    "WITH new_events AS ("
    "  INSERT INTO events (id, supplier_id, idempotency_key, connection_id, event, resource_kind,"
    "    resource_key, resource, localized, diff, diff_supplied, product_id, option_id,"
    "    occurred_at, delivery_count, notification_date_start, notification_date_end)"
    "  SELECT x.id, x.supplier_id, x.idempotency_key, x.connection_id, x.event, x.resource_kind,"
    "    x.resource_key, x.resource::json, x.localized::json, x.diff::json, x.diff_supplied,"
    "    x.product_id, x.option_id, " OCTO_TIMESTAMP("x.occurred_at") ", x.delivery_count,"
    "    x.notification_date_start, x.notification_date_end"
    "  FROM ROWS FROM (json_to_recordset($1::json) AS (id uuid, supplier_id uuid,"
    "    idempotency_key text, connection_id uuid, event text, resource_kind text, resource_key text,"
    "    diff_supplied boolean, product_id text, option_id text, occurred_at bigint,"
    "    delivery_count integer, notification_date_start date, notification_date_end date),"
    "    unnest($4::text[]), unnest($5::text[]), unnest($6::text[]))"
    "   AS x(id, supplier_id, idempotency_key, connection_id, event, resource_kind, resource_key,"
    "    diff_supplied, product_id, option_id, occurred_at, delivery_count,"
    "    notification_date_start, notification_date_end, resource, localized, diff)), "
    "new_deliveries AS ("
    "  INSERT INTO deliveries (id, event_id, webhook_id, lease_expires_at, claimed_attempt)"
    "  SELECT COALESCE(i, octo_uuid_v7()), e, w,"
    "    CASE WHEN i IS NOT NULL THEN now() + $8::bigint * interval '1 millisecond' END,"
    "    CASE WHEN i IS NOT NULL THEN 1 END"
    "  FROM unnest($2::uuid[], $3::uuid[], $7::uuid[]) AS x(e, w, i)) "
    "SELECT w.id::text, w.event, w.url, w.retry_on_error, w.use_contact_language,"
    "  w.headers::text, w.capabilities::text, w.secret, w.status = 'enabled',"
    "  s.id::text, s.name, s.endpoint, s.contact::text,"
    "  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret ELSE '' END,"
    "  COALESCE(w.rate_limit_per_second, 0), COALESCE(w.max_concurrency, 0), w.dialect,"
    "  (extract(epoch FROM now() + $8::bigint * interval '1 millisecond') * 1000000)::bigint,"
    "  (extract(epoch FROM now()) * 1000000)::bigint"
    " FROM webhooks w JOIN connections cn ON cn.id = w.connection_id JOIN suppliers s ON s.id = cn.supplier_id"
    " WHERE w.id = ANY($9::uuid[])"};
// Ordered delivery (docs/delivery.md, "Ordered delivery"), only when the
// batch has deliveries of ordered webhooks. $1 = a JSON array of (webhook,
// resource kind, resource key, n): each resource's counter advances by n
// (its new deliveries take the n numbers after the old value), rows created
// at n. Taken in (webhook, kind, key) order, as kLockOrdered takes them; the
// row locks last until the commit, so a result that finishes a delivery of
// the resource meanwhile waits, and then sees these deliveries.
constexpr Statement kTakeSequences{
    "enqueue_take_sequences",
    "INSERT INTO ordered_resources AS o (webhook_id, resource_kind, resource_key, last_sequence)"
    " SELECT x.webhook_id, x.resource_kind, x.resource_key, x.n"
    " FROM json_to_recordset($1::json) AS x(webhook_id uuid, resource_kind text, resource_key text,"
    "   n bigint)"
    " ORDER BY x.webhook_id, x.resource_kind, x.resource_key"
    " ON CONFLICT (webhook_id, resource_kind, resource_key)"
    "  DO UPDATE SET last_sequence = o.last_sequence + EXCLUDED.last_sequence, last_enqueued_at = now()"
    " RETURNING o.id, o.webhook_id::text, o.resource_kind, o.resource_key, o.last_sequence"};
// The deliveries of ordered webhooks ($1 events, $2 webhooks, $3 resources,
// $4 sequences, $5 occurred_at in µs, pairwise): they wait ('infinity')
// until kPromoteHeadsAfterEnqueue makes each resource's first one due.
constexpr Statement kInsertOrderedDeliveries{
    "enqueue_insert_ordered_deliveries",
    "INSERT INTO deliveries (event_id, webhook_id, ordered_resource_id, sequence, ordered_at,"
    "  next_attempt_at)"
    " SELECT e, w, r, s, " OCTO_TIMESTAMP("t") ", 'infinity'"
    " FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[]) AS x(e, w, r, s, t)"};
constexpr Statement kPromoteHeadsAfterEnqueue{"enqueue_promote_heads",
                                              ordered_sql::kPromoteHeads};

// The keys of the batch that are stored already: their answers as they were.
constexpr Statement kSelectEvents{
    "enqueue_select_events",
    "SELECT x.ord, e.id::text, e.delivery_count"
    " FROM json_to_recordset($1::json) AS x(ord integer, supplier_id uuid, idempotency_key text)"
    " JOIN events e ON e.supplier_id = x.supplier_id AND e.idempotency_key = x.idempotency_key"};

// The current snapshots of the resources of the new events, locked until
// the commit (diffs are computed against them in C++).
constexpr Statement kLockSnapshots{
    "enqueue_lock_snapshots",
    "SELECT x.supplier_id, x.resource_kind, x.resource_key, s.resource::text,"
    "  (extract(epoch FROM s.occurred_at) * 1000000)::bigint"
    " FROM json_to_recordset($1::json) AS x(supplier_id text, resource_kind text,"
    "   resource_key text)"
    " JOIN resource_snapshots s ON s.supplier_id = x.supplier_id::uuid"
    "   AND s.resource_kind = x.resource_kind AND s.resource_key = x.resource_key"
    " ORDER BY s.supplier_id, s.resource_kind, s.resource_key FOR UPDATE OF s"};
// The last state of each resource the batch changed; never replaces a newer
// snapshot. $1: the resources' identities and times; $2 text[]: their
// documents, zipped by position (as in kInsertEvents).
constexpr Statement kUpsertSnapshots{
    "enqueue_upsert_snapshots",
    "INSERT INTO resource_snapshots AS s (supplier_id, resource_kind, resource_key, resource,"
    "  occurred_at)"
    " SELECT x.supplier_id::uuid, x.resource_kind, x.resource_key, x.resource::json,"
    "   " OCTO_TIMESTAMP("x.occurred_at")
    " FROM ROWS FROM (json_to_recordset($1::json) AS (supplier_id text, resource_kind text,"
    "   resource_key text, occurred_at bigint), unnest($2::text[]))"
    "  AS x(supplier_id, resource_kind, resource_key, occurred_at, resource)"
    " ON CONFLICT (supplier_id, resource_kind, resource_key) DO UPDATE"
    "  SET resource = EXCLUDED.resource, occurred_at = EXCLUDED.occurred_at, updated_at = now()"
    "  WHERE s.occurred_at <= EXCLUDED.occurred_at"};

inline constexpr std::array kStatements = {
    kLockKeys,       kLockSuppliers,   kLockConnections, kSelectEvents,
    kLockSnapshots,  kResolveWebhooks, kInsertEvents,    kUpsertSnapshots,
    kTakeSequences,  kInsertOrderedDeliveries, kPromoteHeadsAfterEnqueue};

}  // namespace octo::delivery::enqueue
