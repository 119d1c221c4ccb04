#include "services/delivery/queue_stats.h"

#include <pqxx/pqxx>

#include "services/common/log.h"
#include "services/common/pg_transaction.h"

namespace octo::delivery {
namespace {

// "Due" matches the dispatcher's claim (dispatch_store.cc): pending,
// next_attempt_at reached, no live lease, and for an ordered delivery the
// claim's resource rule (OCTO_HEAD_OF_RESOURCE): one it would not take is
// `held` (QueueStats::held). The rule is evaluated for ordered rows only.
//
// Read with JIT off (SET LOCAL). The planner charges the CASE's two
// subqueries (each an Append over every weekly partition) to every row it
// expects pending, so once an ANALYZE has seen a backlog the estimate passes
// jit_above_cost and PostgreSQL compiles the query with inlining and
// optimisation, every read (a cached plan is not kept here): 2.6-3.6 s of
// CPU per read with 40,000 pending rows and 6 weekly partitions (1.1 s with
// 3), for a scan that takes 12-28 ms without it; read every 5 s, that took
// most of a CPU from the deliveries (docs/PERFORMANCE.md, "The claim at
// scale").
constexpr char kQueueStatsSql[] =
    "SELECT"
    "  count(*) FILTER (WHERE next_attempt_at <= now() AND NOT leased AND NOT held),"
    "  count(*) FILTER (WHERE next_attempt_at > now() AND NOT leased AND NOT held),"
    "  count(*) FILTER (WHERE leased),"
    "  count(*) FILTER (WHERE held AND NOT leased),"
    "  COALESCE(extract(epoch FROM now() - min(next_attempt_at)"
    "           FILTER (WHERE next_attempt_at <= now() AND NOT leased AND NOT held)), 0)::float8"
    " FROM (SELECT next_attempt_at, COALESCE(lease_expires_at >= now(), false) AS leased,"
    "         CASE WHEN q.ordered_resource_id IS NULL THEN false"
    "           ELSE q.next_attempt_at = 'infinity'"
    "             OR EXISTS (SELECT 1 FROM ordered_resources h"
    "                        WHERE h.id = q.ordered_resource_id AND h.in_flight_until >= now())"
    "             OR EXISTS (SELECT 1 FROM deliveries p"
    "                        WHERE p.ordered_resource_id = q.ordered_resource_id AND p.state = 'pending'"
    "                          AND p.ordered_resource_id IS NOT NULL AND p.id <> q.id"
    "                          AND (p.ordered_at, p.sequence) < (q.ordered_at, q.sequence)) END AS held"
    "       FROM deliveries q WHERE state = 'pending') AS s";

}  // namespace

absl::StatusOr<QueueStats> ReadQueueStats(PgPool& pool) {
  return RunInTransaction(pool, {.operation = "queue_stats", .read_only = true},
                          [](pqxx::work& txn) -> absl::StatusOr<QueueStats> {
                            // No JIT compilation (see kQueueStatsSql).
                            txn.exec("SET LOCAL jit = off");
                            const pqxx::row row = txn.exec1(kQueueStatsSql);
                            QueueStats stats;
                            stats.due = row[0].as<long long>();
                            stats.retry_scheduled = row[1].as<long long>();
                            stats.in_flight = row[2].as<long long>();
                            stats.held = row[3].as<long long>();
                            stats.oldest_due_age_seconds = row[4].as<double>();
                            return stats;
                          });
}

QueueStatsReporter::QueueStatsReporter(PgPool* pool, metrics::DeliveryMetrics* metrics, absl::Duration interval)
    : pool_(pool), metrics_(metrics), interval_(interval), thread_([this] { Run(); }) {}

QueueStatsReporter::~QueueStatsReporter() {
  stop_.Notify();
  thread_.join();
}

void QueueStatsReporter::Run() {
  bool failing = false;
  do {
    absl::StatusOr<QueueStats> stats = ReadQueueStats(*pool_);
    if (stats.ok()) {
      metrics_->SetQueue(static_cast<double>(stats->due), static_cast<double>(stats->retry_scheduled),
                         static_cast<double>(stats->in_flight), static_cast<double>(stats->held),
                         stats->oldest_due_age_seconds);
      failing = false;
    } else if (!failing) {  // once per outage, not every interval
      log::Warn("cannot read the delivery queue's size; its gauges keep their last values",
                {{"error", stats.status().ToString()}});
      failing = true;
    }
  } while (!stop_.WaitForNotificationWithTimeout(interval_));
}

}  // namespace octo::delivery
