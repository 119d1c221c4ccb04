// The PostgreSQL side of the metrics: the pool's connection gauges, the
// operation histogram and error counter, and the queue-stats query
// (OCTO_TEST_PG; fails without it).
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "services/common/metrics.h"
#include "services/common/migrations.h"
#include "services/common/pg_pool.h"
#include "services/delivery/queue_stats.h"
#include "services/schema/migrations.h"
#include "tests/metrics/metrics_test_util.h"
#include "tests/support/pg_test_db.h"

namespace octo {
namespace {

using metrics_test::Value;

TEST(PgPoolMetrics, GaugesFollowLeasesAndPingIsTimed) {
  testing::TestDatabase db;
  prometheus::Registry registry;
  metrics::PgMetrics pg(registry);
  {
    absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(db.conninfo(), 3, &pg);
    ASSERT_TRUE(pool.ok()) << pool.status();
    // Create() opened one connection and returned it.
    EXPECT_EQ(Value(registry, "octo_pg_pool_connections", {{"state", "in_use"}}), 0);
    EXPECT_EQ(Value(registry, "octo_pg_pool_connections", {{"state", "idle"}}), 1);
    {
      auto a = (*pool)->Acquire();
      auto b = (*pool)->Acquire();
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(Value(registry, "octo_pg_pool_connections", {{"state", "in_use"}}), 2);
      EXPECT_EQ(Value(registry, "octo_pg_pool_connections", {{"state", "idle"}}), 0);
      b->MarkBroken();  // closed on return, not kept
    }
    EXPECT_EQ(Value(registry, "octo_pg_pool_connections", {{"state", "in_use"}}), 0);
    EXPECT_EQ(Value(registry, "octo_pg_pool_connections", {{"state", "idle"}}), 1);
    ASSERT_TRUE((*pool)->Ping().ok());
    ASSERT_TRUE((*pool)->Ping().ok());
    EXPECT_EQ(Value(registry, "octo_pg_query_duration_seconds", {{"operation", "ping"}}), 2);
    EXPECT_EQ(Value(registry, "octo_pg_errors_total", {{"operation", "ping"}}), 0);  // declared
  }
  // The pool is gone, and its connections with it.
  EXPECT_EQ(Value(registry, "octo_pg_pool_connections", {{"state", "idle"}}), 0);
}

TEST(QueueStats, CountsAnErrorThenReadsAnEmptyQueue) {
  testing::TestDatabase db;
  prometheus::Registry registry;
  metrics::PgMetrics pg(registry);
  absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(db.conninfo(), 2, &pg);
  ASSERT_TRUE(pool.ok()) << pool.status();

  // No schema yet: the query fails (undefined table) and is counted.
  absl::StatusOr<delivery::QueueStats> failed = delivery::ReadQueueStats(**pool);
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(Value(registry, "octo_pg_errors_total", {{"operation", "queue_stats"}}), 1);

  ASSERT_TRUE(ApplyMigrations(db.conninfo(), schema::Migrations(), schema::kMigrationLockKey).ok());
  absl::StatusOr<delivery::QueueStats> stats = delivery::ReadQueueStats(**pool);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->due, 0);
  EXPECT_EQ(stats->retry_scheduled, 0);
  EXPECT_EQ(stats->in_flight, 0);
  EXPECT_EQ(stats->oldest_due_age_seconds, 0);
  EXPECT_EQ(Value(registry, "octo_pg_query_duration_seconds", {{"operation", "queue_stats"}}), 2);

  // The reporter publishes into the gauges.
  metrics::DeliveryMetrics delivery_metrics(registry);
  delivery_metrics.SetQueue(9, 9, 9, 9);
  {
    // It reads once at start, before it can see the stop: no waiting needed.
    delivery::QueueStatsReporter reporter(pool->get(), &delivery_metrics, absl::Hours(1));
  }
  EXPECT_EQ(Value(registry, "octo_delivery_queue_deliveries", {{"state", "due"}}), 0);
  EXPECT_EQ(Value(registry, "octo_delivery_oldest_due_age_seconds"), 0);
}

}  // namespace
}  // namespace octo
