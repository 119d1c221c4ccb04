#pragma once
// The SQL of the operations store (operations_store.cc): the attempt log's
// reads, redeliver, replay and the test ping. Internal to that store.
#include <array>

#include "services/common/pg_statements.h"
#include "services/delivery/ordered_sql.h"
#include "services/delivery/test_ping_sql.h"

namespace octo::delivery::operations_sql {

// clang-format off
#define OCTO_OPS_MICROS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"
#define OCTO_OPS_TIMESTAMP(param) "('epoch'::timestamptz + " param "::bigint * interval '1 microsecond')"
#define OCTO_OPS_DELIVERY_COLUMNS                                                  \
  "d.id::text, d.webhook_id::text, d.event_id::text, e.event, d.state, d.attempt_count, " \
  OCTO_OPS_MICROS("d.created_at") ", " OCTO_OPS_MICROS("NULLIF(d.next_attempt_at, 'infinity')") ", " \
  OCTO_OPS_MICROS("d.completed_at") ", d.last_http_status, d.last_error_class"
// clang-format on

// The webhook, if it is the connection's: its status, event and supplier.
// FOR KEY SHARE: it cannot be deleted before the commit (the rows written
// below reference it).
constexpr PgStatement kWebhook{
    "ops_webhook",
    "SELECT w.status, w.event, c.supplier_id::text FROM webhooks w"
    " JOIN connections c ON c.id = w.connection_id"
    " WHERE w.id = $1::uuid AND w.connection_id = $2::uuid FOR KEY SHARE OF w"};
// The same check for the attempt log's reads (List, Get), which a user
// waits for (docs/PERFORMANCE.md, "The attempt log's page"):
// * without the lock: they write nothing that references the webhook. A row
//   lock is a write: it gives the transaction an id and a WAL record, and
//   makes its COMMIT wait for a WAL flush (an fsync per page read). Without
//   it a read transaction has no id and its COMMIT writes nothing; nor does
//   a read wait for a transaction updating the webhook (FOR UPDATE);
// * with generic plans for the rest of the transaction (set_config(..., true)
//   is SET LOCAL): the plan cache kept choosing a custom plan for these
//   statements, so each call planned a join over every weekly partition of
//   deliveries and events (~1 ms at 10 M attempt rows, more than the
//   execution's 0.3 ms, and several times that on a busy machine) to arrive
//   at the generic plan's shape: each statement is an index range or
//   primary-key look-up whose conditions are all parameters (the attempts'
//   partition is pruned at executor start-up), so no value of a parameter
//   calls for another plan.
constexpr PgStatement kWebhookInScope{
    "ops_webhook_in_scope",
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"
    " FROM webhooks WHERE id = $1::uuid AND connection_id = $2::uuid"};

// $1 webhook, $2 state or NULL, $3 event or NULL, $4/$5 the cursor or NULL,
// $6 limit. Newest first along deliveries_webhook_created_idx.
#define OCTO_OPS_LIST(extra_condition)                                                          \
  "SELECT " OCTO_OPS_DELIVERY_COLUMNS " FROM deliveries d JOIN events e ON e.id = d.event_id"  \
  " WHERE d.webhook_id = $1::uuid" extra_condition                                             \
  "   AND ($2::text IS NULL OR d.state = $2) AND ($3::text IS NULL OR e.event = $3)"           \
  "   AND (d.created_at, d.id) < (COALESCE(" OCTO_OPS_TIMESTAMP("$4") ", 'infinity'),"          \
  "                               COALESCE($5::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))" \
  " ORDER BY d.created_at DESC, d.id DESC LIMIT $6"
constexpr PgStatement kList{"ops_list_deliveries", OCTO_OPS_LIST("")};
// The same for state failed or cancelled ($2): along deliveries_unsent_idx
// (migration 0015), which holds only those (a few % of the history), and
// whose predicate the literal condition lets the planner use whatever $2
// is. Along deliveries_webhook_created_idx the page read the webhook's
// succeeded deliveries too, newest first, until it had found a page of
// failed ones: 58 ms p99 with 10 million attempt rows stored.
constexpr PgStatement kListUnsent{"ops_list_unsent_deliveries",
                                  OCTO_OPS_LIST(" AND d.state IN ('failed', 'cancelled')")};

constexpr PgStatement kGet{
    "ops_get_delivery",
    "SELECT " OCTO_OPS_DELIVERY_COLUMNS " FROM deliveries d JOIN events e ON e.id = d.event_id"
    " WHERE d.id = $1::uuid AND d.webhook_id = $2::uuid"};

constexpr PgStatement kAttempts{
    "ops_delivery_attempts",
    "SELECT attempt_number, " OCTO_OPS_MICROS("started_at") ", duration_ms,"
    " COALESCE(http_status, 0), COALESCE(error_class, ''), response_snippet"
    " FROM delivery_attempts WHERE delivery_id = $1::uuid"
    // The delivery's created_at ($2, µs), the attempts' partition key: the
    // look-up reads one week's index, not every week's.
    "   AND delivery_created_at = " OCTO_OPS_TIMESTAMP("$2")
    " ORDER BY attempt_number"};


// Due now. A delivery whose send is running (a live lease) keeps its
// lease, so it is never sent twice at once: it is marked and the write of
// that send's result makes it due again (dispatch_write_results). A dead
// lease (its process stopped) is cleared; the next claim records the lost
// attempt. The count of claims without a result starts again. requeued_at
// lets the dashboard's health find the new attempts of an old delivery
// (migration 0011).
#define OCTO_OPS_LIVE_LEASE "(lease_expires_at IS NOT NULL AND lease_expires_at >= now())"
#define OCTO_OPS_REQUEUE                                                                      \
  "state = CASE WHEN " OCTO_OPS_LIVE_LEASE " THEN state ELSE 'pending' END,"                 \
  " completed_at = CASE WHEN " OCTO_OPS_LIVE_LEASE " THEN completed_at ELSE NULL END,"       \
  " next_attempt_at = CASE WHEN " OCTO_OPS_LIVE_LEASE " THEN next_attempt_at"                 \
  "   WHEN ordered_resource_id IS NOT NULL THEN 'infinity' ELSE now() END,"                    \
  " redeliver_requested = " OCTO_OPS_LIVE_LEASE ","                                           \
  " unreported_claims = 0,"                                                                   \
  " requeued_at = now(),"                                                                     \
  " lease_expires_at = CASE WHEN " OCTO_OPS_LIVE_LEASE " THEN lease_expires_at ELSE NULL END"

constexpr PgStatement kRedeliver{
    "ops_redeliver",
    "UPDATE deliveries SET " OCTO_OPS_REQUEUE
    " WHERE id = $1::uuid AND webhook_id = $2::uuid"
    " RETURNING id, COALESCE(ordered_resource_id::text, '')"};

// $1 webhook, $2 since (µs), $3 bound. Failed deliveries, and cancelled
// ones (their webhook was disabled: after re-enabling it, a replay sends
// what the outage held back), queued as by a redeliver. SKIP LOCKED: a concurrent replay takes other
// rows, so none is counted twice.
constexpr PgStatement kReplay{
    "ops_replay",
    "WITH picked AS ("
    "  SELECT id FROM deliveries"
    "  WHERE webhook_id = $1::uuid AND state IN ('failed', 'cancelled') AND created_at >= " OCTO_OPS_TIMESTAMP("$2")
    "  ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED),"
    " queued AS ("
    "  UPDATE deliveries SET " OCTO_OPS_REQUEUE
    "  FROM picked WHERE deliveries.id = picked.id RETURNING ordered_resource_id)"
    " SELECT count(*)::integer, COALESCE(array_agg(DISTINCT ordered_resource_id)"
    "  FILTER (WHERE ordered_resource_id IS NOT NULL), '{}')::text FROM queued"};

// Ordered delivery (ordered_sql.h): the resource rows locked first; a
// requeued ordered delivery waits ('infinity' above) and its resource's first
// pending delivery is made due, so an older one goes first.
constexpr PgStatement kLockOrdered{"ops_lock_ordered", ordered_sql::kLockOrdered};
constexpr PgStatement kPromoteHeads{"ops_promote_heads", ordered_sql::kPromoteHeads};
constexpr PgStatement kLockForRedeliver{"ops_lock_for_redeliver", ordered_sql::kLockForRedeliver};
constexpr PgStatement kLockForReplay{"ops_lock_for_replay", ordered_sql::kLockForReplay};

constexpr PgStatement kReplayMore{
    "ops_replay_more",
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE webhook_id = $1::uuid"
    " AND state IN ('failed', 'cancelled') AND created_at >= " OCTO_OPS_TIMESTAMP("$2") ")"};

constexpr PgStatement kInsertTest{"ops_insert_test", kInsertTestPing};

constexpr std::array kStatements = {kWebhook,     kWebhookInScope, kList,         kListUnsent,
                                    kGet,         kAttempts,       kRedeliver,    kReplay,
                                    kReplayMore,  kInsertTest,     kLockOrdered,  kPromoteHeads,
                                    kLockForRedeliver, kLockForReplay};

}  // namespace octo::delivery::operations_sql
