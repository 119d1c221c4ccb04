#include "services/delivery/queue_stats.h"

#include <pqxx/pqxx>

#include "services/common/log.h"
#include "services/common/pg_transaction.h"

namespace octo::delivery {
namespace {

// "Due" matches the dispatcher's claim (dispatch_store.cc): pending,
// next_attempt_at reached, no live lease, and for an ordered delivery the
// claim's resource rule (OCTO_HEAD_OF_RESOURCE): one it would not take is
// `held` (QueueStats::held).
//
// One pass over the pending rows. The rule costs index probes (the
// resource's row, then every weekly partition's
// deliveries_ordered_unfinished_idx: pending said `completed_at IS NULL`,
// as in the claim, migration 0018), so the CASE reaches it only where it can
// change a count: ordered, unleased (a leased row is in_flight whatever the
// rule says) and not waiting ('infinity' is held by the rule's first term):
// about one row per resource, however many wait behind it. OFFSET 0 keeps
// the subquery from being merged into the aggregate, which copied `held`
// into each FILTER that reads it (the probes ran up to four times per
// row). The resource's running send is a scalar subquery, a primary-key
// probe per row: as an EXISTS the planner may instead hash the whole
// ordered_resources table, one row per resource ever seen.
constexpr char kQueueStatsSql[] =
    "SELECT"
    "  count(*) FILTER (WHERE next_attempt_at <= now() AND NOT leased AND NOT held),"
    "  count(*) FILTER (WHERE next_attempt_at > now() AND NOT leased AND NOT held),"
    "  count(*) FILTER (WHERE leased),"
    "  count(*) FILTER (WHERE held),"
    "  COALESCE(extract(epoch FROM now() - min(next_attempt_at)"
    "           FILTER (WHERE next_attempt_at <= now() AND NOT leased AND NOT held)), 0)::float8"
    " FROM (SELECT next_attempt_at, leased,"
    "         CASE WHEN q.ordered_resource_id IS NULL OR leased THEN false"
    "           WHEN q.next_attempt_at = 'infinity' THEN true"
    "           ELSE COALESCE((SELECT h.in_flight_until >= now() FROM ordered_resources h"
    "                          WHERE h.id = q.ordered_resource_id), false)"
    "             OR EXISTS (SELECT 1 FROM deliveries p"
    "                        WHERE p.ordered_resource_id = q.ordered_resource_id AND p.completed_at IS NULL"
    "                          AND p.ordered_resource_id IS NOT NULL AND p.id <> q.id"
    "                          AND (p.ordered_at, p.sequence) < (q.ordered_at, q.sequence)) END AS held"
    "       FROM (SELECT id, next_attempt_at, ordered_resource_id, ordered_at, sequence,"
    "               COALESCE(lease_expires_at >= now(), false) AS leased"
    "             FROM deliveries WHERE state = 'pending') AS q"
    "       OFFSET 0) AS s";
// The planner costs the rule's probes for every pending row (not the few
// that reach them), so the estimate passes the JIT thresholds: compiling took
// seconds of CPU per read, the query itself tens of ms (docs/PERFORMANCE.md,
// "The queue gauge"). Sessions have JIT off already (PgConninfo); this holds
// even where an operator's options turn it back on.
constexpr char kNoJit[] = "SET LOCAL jit = off";

}  // namespace

const char* QueueStatsSetting() { return kNoJit; }
const char* QueueStatsQuery() { return kQueueStatsSql; }

absl::StatusOr<QueueStats> ReadQueueStats(PgPool& pool) {
  return RunInTransaction(pool, {.operation = "queue_stats", .read_only = true},
                          [](pqxx::work& txn) -> absl::StatusOr<QueueStats> {
                            txn.exec0(kNoJit);
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
