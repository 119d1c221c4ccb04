#pragma once
// The delivery queue's gauges (octo_delivery_queue_deliveries{state},
// octo_delivery_oldest_due_age_seconds), refreshed from PostgreSQL by a
// thread every `interval`: one aggregate query over the pending deliveries,
// so every replica reports the whole queue (use max(), not sum(), across
// replicas).
//
// Example:
//   QueueStatsReporter reporter(pool, &delivery_metrics, absl::Seconds(5));
//   ...  // stops (and joins its thread) on destruction
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/common/metrics.h"
#include "services/common/pg_pool.h"

namespace octo::delivery {

// The queue's state at one moment.
struct QueueStats {
  long long due = 0;              // pending, due, not leased
  long long retry_scheduled = 0;  // pending, due later (a retry or a deferral)
  long long in_flight = 0;        // pending, under a live lease (being sent)
  // Pending, not leased, of an ordered webhook, and not claimable before
  // something else happens: waiting behind an earlier pending delivery of
  // its resource (next_attempt_at 'infinity', or due but after one
  // published late that occurred earlier), or its resource taken by a send
  // still running. Neither due nor retry_scheduled, and it does not age
  // oldest_due_age_seconds: a healthy ordered webhook holds many.
  long long held = 0;
  double oldest_due_age_seconds = 0;  // of the oldest due (not held), not leased one; 0 when none
};

// One query on a pooled connection (operation "queue_stats"). UNAVAILABLE /
// INTERNAL on database errors.
absl::StatusOr<QueueStats> ReadQueueStats(PgPool& pool);

// What ReadQueueStats runs in its transaction: the setting first (JIT off,
// see queue_stats.cc), then the query. For tests that look at its plan.
const char* QueueStatsSetting();
const char* QueueStatsQuery();

class QueueStatsReporter {
 public:
  // Reads at once, then every `interval`. `pool` and `metrics` must outlive it.
  QueueStatsReporter(PgPool* pool, metrics::DeliveryMetrics* metrics, absl::Duration interval);
  ~QueueStatsReporter();
  QueueStatsReporter(const QueueStatsReporter&) = delete;
  QueueStatsReporter& operator=(const QueueStatsReporter&) = delete;

 private:
  void Run();

  PgPool* const pool_;
  metrics::DeliveryMetrics* const metrics_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace octo::delivery
