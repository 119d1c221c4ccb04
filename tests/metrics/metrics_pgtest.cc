// The PostgreSQL side of the metrics: the pool's connection gauges, the
// operation histogram and error counter, and the queue-stats query
// (OCTO_TEST_PG; fails without it).
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"

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
  delivery_metrics.SetQueue(9, 9, 9, 9, 9);
  {
    // It reads once at start, before it can see the stop: no waiting needed.
    delivery::QueueStatsReporter reporter(pool->get(), &delivery_metrics, absl::Hours(1));
  }
  EXPECT_EQ(Value(registry, "octo_delivery_queue_deliveries", {{"state", "due"}}), 0);
  EXPECT_EQ(Value(registry, "octo_delivery_oldest_due_age_seconds"), 0);
}

// Ordered delivery: deliveries that wait for their resource are `held`, not
// due, and do not age the oldest due one (a healthy ordered webhook holds
// many, some due by their time for long: the age alert must not fire).
// One supplier, one connection and one ordered webhook; returns its id.
std::string AddOrderedWebhook(pqxx::work& w) {
  w.exec("INSERT INTO suppliers (name, endpoint, contact) VALUES ('S', 'https://s.example/octo', '{}')");
  w.exec("INSERT INTO connections (supplier_id, name, max_webhooks) SELECT id, 'c', 100 FROM suppliers");
  return w.exec1("INSERT INTO webhooks (connection_id, event, url, secret, ordered) SELECT id, 'booking_update',"
                 " 'http://127.0.0.1:9/x', 'whsec_' || repeat('A', 43) || '=', true FROM connections"
                 " RETURNING id::text")[0]
      .as<std::string>();
}

TEST(QueueStats, HeldOrderedDeliveriesAreNotDue) {
  testing::TestDatabase db;
  ASSERT_TRUE(ApplyMigrations(db.conninfo(), schema::Migrations(), schema::kMigrationLockKey).ok());
  pqxx::connection conn(db.conninfo());
  pqxx::work w(conn);
  const std::string webhook = AddOrderedWebhook(w);
  // key: resource key; due: seconds since it became due (NULL: 'infinity');
  // ordered_at: seconds ago; sequence.
  auto add = [&](const std::string& key, const std::string& due, int ordered_ago, int sequence, bool ordered) {
    const std::string n = std::to_string(w.exec1("SELECT count(*) FROM events")[0].as<long long>());
    const std::string event = w.exec1(absl::StrCat(
        "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource, occurred_at)"
        " SELECT id, 'k", n, "', 'booking_update', 'booking', '", key, "', '{}', now() FROM suppliers"
        " RETURNING id::text"))[0].as<std::string>();
    const std::string next = due == "NULL" ? "'infinity'" : absl::StrCat("now() - interval '", due, " seconds'");
    if (!ordered) {
      w.exec(absl::StrCat("INSERT INTO deliveries (event_id, webhook_id, next_attempt_at) VALUES ('", event, "', '",
                          webhook, "', ", next, ")"));
      return;
    }
    w.exec(absl::StrCat("INSERT INTO ordered_resources (webhook_id, resource_kind, resource_key, last_sequence)"
                        " VALUES ('", webhook, "', 'booking', '", key, "', 0) ON CONFLICT DO NOTHING"));
    w.exec(absl::StrCat("INSERT INTO deliveries (event_id, webhook_id, next_attempt_at, ordered_resource_id, sequence,"
                        " ordered_at) SELECT '", event, "', '", webhook, "', ", next, ", id, ", sequence,
                        ", now() - interval '", ordered_ago, " seconds' FROM ordered_resources WHERE resource_key = '",
                        key, "'"));
  };
  add("u", "5", 0, 0, false);     // unordered, due 5 s: due
  add("r1", "3600", 60, 1, true);  // its resource's send still runs: held
  w.exec("UPDATE ordered_resources SET in_flight_until = now() + interval '1 minute' WHERE resource_key = 'r1'");
  add("r2", "10", 30, 2, true);    // the head (occurred first, published late): due 10 s
  add("r2", "1800", 20, 1, true);  // due by its time, but after the head: held
  add("r2", "NULL", 10, 3, true);  // waiting ('infinity'): held
  w.commit();

  absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(db.conninfo(), 1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  absl::StatusOr<delivery::QueueStats> stats = delivery::ReadQueueStats(**pool);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->due, 2);
  EXPECT_EQ(stats->held, 3);
  EXPECT_EQ(stats->retry_scheduled, 0);
  EXPECT_EQ(stats->in_flight, 0);
  EXPECT_GE(stats->oldest_due_age_seconds, 10);
  EXPECT_LT(stats->oldest_due_age_seconds, 600) << "a held delivery aged the oldest due one";
}

// Every pending row counts in exactly one state, whichever way the query
// reaches it (the ordered rule is evaluated only for unleased ordered rows
// that are not waiting): leases, waiting rows, retrying heads, resources
// whose send runs or whose lock expired, an earlier pending delivery in
// another week's partition, finished rows of a resource.
TEST(QueueStats, EveryPendingRowCountsInOneState) {
  testing::TestDatabase db;
  ASSERT_TRUE(ApplyMigrations(db.conninfo(), schema::Migrations(), schema::kMigrationLockKey).ok());
  pqxx::connection conn(db.conninfo());
  pqxx::work w(conn);
  AddOrderedWebhook(w);
  // in_flight_until of the resources: c's send runs, e's lock expired.
  for (const char* key : {"a", "b", "c", "d", "e", "f"}) {
    w.exec(absl::StrCat("INSERT INTO ordered_resources (webhook_id, resource_kind, resource_key, in_flight_until)"
                        " SELECT id, 'booking', '", key, "', CASE '", key,
                        "' WHEN 'c' THEN now() + interval '1 minute' WHEN 'e' THEN now() - interval '1 second'"
                        " END FROM webhooks"));
  }
  // resource: "" for an unordered delivery; next/lease/created: SQL
  // expressions; sequence also orders ordered_at (one second apart).
  auto add = [&](const std::string& resource, int sequence, const std::string& next, const std::string& lease,
                 const std::string& created = "now()", const std::string& state = "pending") {
    const std::string finished = state == "pending" ? "NULL, 0, NULL" : "now(), 1, 200";
    const std::string order = resource.empty()
                                  ? "NULL, NULL, NULL"
                                  : absl::StrCat("(SELECT id FROM ordered_resources WHERE resource_key = '", resource,
                                                 "'), ", sequence, ", now() - interval '1 hour' + ", sequence,
                                                 " * interval '1 second'");
    w.exec(absl::StrCat("INSERT INTO deliveries (event_id, webhook_id, state, next_attempt_at, lease_expires_at,"
                        " created_at, completed_at, attempt_count, last_http_status, ordered_resource_id, sequence,"
                        " ordered_at) SELECT gen_random_uuid(), id, '", state, "', ", next, ", ", lease, ", ",
                        created, ", ", finished, ", ", order, " FROM webhooks"));
  };
  const std::string kLive = "now() + interval '1 minute'";
  const std::string kExpired = "now() - interval '1 second'";
  const std::string kWaiting = "'infinity'";
  auto ago = [](int s) { return absl::StrCat("now() - interval '", s, " seconds'"); };
  auto in = [](int s) { return absl::StrCat("now() + interval '", s, " seconds'"); };
  add("", 0, ago(30), "NULL");      // due (the oldest due: 30 s)
  add("", 0, in(60), "NULL");       // retry_scheduled
  add("", 0, kWaiting, "NULL");     // retry_scheduled: unordered rows are never held
  add("", 0, ago(1), kLive);        // in_flight
  add("", 0, ago(2), kExpired);     // due: its lease expired
  add("a", 1, ago(99), "NULL", "now()", "succeeded");  // finished: holds nothing back
  add("a", 2, ago(20), "NULL");     // the head: due
  add("a", 3, kWaiting, "NULL");    // held
  add("a", 4, kWaiting, kExpired);  // held
  add("b", 1, in(120), "NULL");     // a retrying head: retry_scheduled
  add("b", 2, kWaiting, "NULL");    // held
  add("c", 1, ago(1), kLive);       // its resource's send: in_flight
  add("c", 2, ago(40), "NULL");     // due, but its resource is taken: held
  add("c", 3, in(60), "NULL");      // retrying, its resource taken: held
  add("d", 1, in(300), "NULL", "now() - interval '7 days'");  // last week's partition: retry_scheduled
  add("d", 2, ago(50), "NULL");     // due, after d1 (another partition): held
  add("e", 1, ago(10), "NULL");     // its resource's lock expired: due
  add("f", 1, ago(5), "NULL");      // the head: due
  add("f", 2, ago(3), kLive);       // leased behind it (redelivered in flight): in_flight, not held
  w.commit();
  ASSERT_EQ(pqxx::nontransaction(conn).exec1("SELECT count(DISTINCT tableoid) FROM deliveries")[0].as<int>(), 2)
      << "d1 is not in a partition of its own";

  absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(db.conninfo(), 1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  absl::StatusOr<delivery::QueueStats> stats = delivery::ReadQueueStats(**pool);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->due, 5);
  EXPECT_EQ(stats->retry_scheduled, 4);
  EXPECT_EQ(stats->in_flight, 3);
  EXPECT_EQ(stats->held, 6);
  EXPECT_GE(stats->oldest_due_age_seconds, 30);
  EXPECT_LT(stats->oldest_due_age_seconds, 40) << "a held delivery aged the oldest due one";
}

// The gauge's query is never JIT-compiled: its estimate grows with the
// pending ordered deliveries, and compiling it cost 6.3-6.5 s of CPU per
// read (every 5 s) in the ordered benchmark. Here every statement is made
// worth compiling (the thresholds at 0); the query's plan, run after the
// setting ReadQueueStats takes first, must show no JIT.
TEST(QueueStats, TheQueryIsNeverJitCompiled) {
  testing::TestDatabase db;
  ASSERT_TRUE(ApplyMigrations(db.conninfo(), schema::Migrations(), schema::kMigrationLockKey).ok());
  pqxx::connection conn(db.conninfo());
  auto plan_of = [&](bool with_setting) {
    pqxx::work w(conn);
    w.exec("SET LOCAL jit = on");  // whatever the session's default (the services' is off)
    w.exec("SET LOCAL jit_above_cost = 0");
    w.exec("SET LOCAL jit_inline_above_cost = 0");
    w.exec("SET LOCAL jit_optimize_above_cost = 0");
    if (with_setting) w.exec(delivery::QueueStatsSetting());
    std::string plan;
    for (const pqxx::row& row : w.exec(absl::StrCat("EXPLAIN (ANALYZE) ", delivery::QueueStatsQuery()))) {
      plan += row[0].as<std::string>() + "\n";
    }
    return plan;
  };
  // Where the server can compile (llvmjit installed, jit on), the query
  // alone is compiled: the setting is what prevents it.
  bool available = false;
  {
    pqxx::work w(conn);
    w.exec("SET LOCAL jit = on");
    available = w.exec1("SELECT pg_jit_available()")[0].as<bool>();
  }
  std::printf("JIT available to this server: %s\n", available ? "yes" : "no");
  if (available) {
    const std::string unset = plan_of(false);
    EXPECT_NE(unset.find("JIT:"), std::string::npos) << "the check below would prove nothing:\n" << unset;
  }
  const std::string plan = plan_of(true);
  EXPECT_EQ(plan.find("JIT:"), std::string::npos) << plan;
}

}  // namespace
}  // namespace octo
