// The retention maintenance pass's metrics (services/common/retention_metrics.h)
// on a real PostgreSQL: RetentionRunner runs passes as octo-delivery's
// maintainer does and the values are read back from the registry — what
// was created, dropped and held, the runway and the oldest partition's age,
// and each pass's outcome: ok, skipped (another session holds the lock),
// error (CREATE refused, a connection killed or unreachable) without
// bringing the process down.
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/retention_metrics.h"
#include "services/delivery/retention.h"
#include "tests/integration/retention_fixture.h"
#include "tests/metrics/metrics_test_util.h"

namespace octo::testing {
namespace {

using delivery::RetentionMaintainer;
using delivery::RetentionRunner;
using metrics::RetentionMetrics;
using ::testing::Not;
using ::testing::Optional;

constexpr double kDay = 86400;

class RetentionMetricsTest : public RetentionTest {
 protected:
  void SetUp() override {
    RetentionTest::SetUp();
    if (HasFatalFailure()) return;
    options_.retention = absl::Hours(24 * 30);
    // Three weeks ahead: the migration made this week and the next only, so
    // a fresh database has partitions to create.
    options_.ahead = absl::Hours(24 * 21);
  }

  RetentionRunner Runner(const std::string& conninfo) { return RetentionRunner(conninfo, options_, &metrics_); }
  RetentionRunner Runner() { return Runner(db_->conninfo()); }

  std::optional<double> Value(const std::string& name, const metrics_test::Labels& labels = {}) const {
    return metrics_test::Value(registry_, name, labels);
  }
  double Passes(const std::string& outcome) const {
    return Value("octo_retention_passes_total", {{"outcome", outcome}}).value_or(-1);
  }
  double Runway() const { return Value("octo_retention_partition_runway_seconds").value_or(-1); }

  // CREATE TABLE refused in this database (as a revoked privilege or a full
  // disk would refuse it): the pass's partition creation fails.
  void RefuseCreateTable() {
    Exec("CREATE FUNCTION octo_test_refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN"
         "  RAISE EXCEPTION 'CREATE TABLE refused by the test';"
         " END $$");
    Exec("CREATE EVENT TRIGGER octo_test_refuse ON ddl_command_start WHEN TAG IN ('CREATE TABLE')"
         " EXECUTE FUNCTION octo_test_refuse()");
  }

  // Whether no session holds the pass's advisory lock within `limit` (a
  // closed session's backend ends a moment after the client closed it).
  bool LockFreedWithin(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    const std::string held = absl::StrCat(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = ",
        delivery::kRetentionLockKey & 0xffffffffLL, " AND classid = ", delivery::kRetentionLockKey >> 32);
    while (Count(held) != 0) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  delivery::RetentionOptions options_;
  prometheus::Registry registry_;
  RetentionMetrics metrics_{registry_, 30 * kDay, 3600};
};

TEST_F(RetentionMetricsTest, AFreshDatabaseGetsItsPartitionsAndARunwayOfMoreThanAWeek) {
  EXPECT_EQ(Value("octo_retention_partition_runway_seconds"), std::nullopt);  // nothing known yet
  RetentionRunner runner = Runner();
  ASSERT_THAT(runner.RunOnce(), IsOk());
  EXPECT_EQ(Passes("ok"), 1);
  EXPECT_EQ(Passes("error"), 0);
  EXPECT_EQ(Passes("skipped"), 0);
  // Two weeks more (three, on a Monday's edge), three tables each.
  EXPECT_THAT(Value("octo_retention_partitions_created_total"), Optional(::testing::Ge(6)));
  // The partitions reach to the end of the week of now + 21 days.
  EXPECT_GE(Runway(), 21 * kDay);
  EXPECT_LE(Runway(), 28 * kDay);
  EXPECT_THAT(Value("octo_retention_last_pass_duration_seconds"), Optional(::testing::Gt(0)));
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_THAT(Value("octo_retention_last_success_timestamp_seconds"),
              Optional(::testing::AllOf(::testing::Gt(now - 60), ::testing::Le(now + 1))));
  EXPECT_EQ(Value("octo_retention_slices_dropped_total"), 0);
  EXPECT_EQ(Value("octo_retention_slices_held"), 0);
  // Last week's slice (made by the migration) is the oldest: 7 to 14 days.
  EXPECT_THAT(Value("octo_retention_oldest_partition_age_seconds"),
              Optional(::testing::AllOf(::testing::Ge(7 * kDay), ::testing::Le(14 * kDay))));

  // The runway ends at the first week one of the three tables lacks:
  // without the events partition of the week of now + 14 days, inserts of
  // that week would fail, whatever the other two tables have.
  const std::string events_part = Text(PartitionFor("events", 14));
  ASSERT_NE(events_part, "<null>");
  Exec("DROP TABLE " + events_part);
  ASSERT_THAT(runner.RunOnce(), IsOk());  // creates it again
  EXPECT_GE(Runway(), 21 * kDay);
  Exec("DROP TABLE " + events_part);
  RefuseCreateTable();
  EXPECT_FALSE(runner.RunOnce().ok());  // now it cannot
  EXPECT_GE(Runway(), 7 * kDay);
  EXPECT_LE(Runway(), 14 * kDay);
}

TEST_F(RetentionMetricsTest, DroppedAndHeldSlicesShowInTheCounters) {
  const std::string done = Publish("done");
  Send(done, 200, delivery::DecisionKind::kSucceeded);
  const std::string pending = Publish("pending");  // never claimed: stays pending
  MoveBack(done, 45);
  MoveBack(pending, 60);

  RetentionRunner runner = Runner();
  ASSERT_THAT(runner.RunOnce(), IsOk());
  EXPECT_EQ(Value("octo_retention_slices_dropped_total"), 1);  // the finished delivery's week
  EXPECT_EQ(Value("octo_retention_slices_held"), 1);           // the pending one's
  EXPECT_EQ(Rows(done), 0);
  EXPECT_EQ(Rows(pending), 2);
  // The held week is the oldest: more than retention + 2 weeks old, what
  // OctoRetentionOldestPartitionTooOld fires on.
  const double oldest = Value("octo_retention_oldest_partition_age_seconds").value_or(0);
  EXPECT_GT(oldest, 60 * kDay);
  EXPECT_GT(oldest - *Value("octo_retention_period_seconds"), 14 * kDay);

  // Finished, it no longer holds its slice: the counter goes on, the gauge falls.
  Exec(absl::StrCat("UPDATE deliveries SET state = 'cancelled', completed_at = now() WHERE id = '", pending, "'"));
  ASSERT_THAT(runner.RunOnce(), IsOk());
  EXPECT_EQ(Value("octo_retention_slices_dropped_total"), 2);
  EXPECT_EQ(Value("octo_retention_slices_held"), 0);
  EXPECT_LT(Value("octo_retention_oldest_partition_age_seconds").value_or(-1), 15 * kDay);
  EXPECT_EQ(Passes("ok"), 2);
}

TEST_F(RetentionMetricsTest, APassWhileAnotherSessionHoldsTheLockIsSkipped) {
  auto holder = Raw();
  pqxx::nontransaction lock(*holder);
  lock.exec_params("SELECT pg_advisory_lock($1)", delivery::kRetentionLockKey);

  RetentionRunner runner = Runner();
  ASSERT_THAT(runner.RunOnce(), IsOk());
  EXPECT_EQ(Passes("skipped"), 1);
  EXPECT_EQ(Passes("ok"), 0);
  EXPECT_EQ(Value("octo_retention_partitions_created_total"), 0);  // it did nothing
  EXPECT_EQ(Value("octo_retention_last_success_timestamp_seconds"), 0);
  EXPECT_EQ(Value("octo_retention_last_pass_duration_seconds"), 0);
  // It still reads the figures: the migration's partitions reach next week's end.
  EXPECT_GE(Runway(), 7 * kDay);
  EXPECT_LE(Runway(), 14 * kDay);

  lock.exec_params("SELECT pg_advisory_unlock($1)", delivery::kRetentionLockKey);
  ASSERT_THAT(runner.RunOnce(), IsOk());
  EXPECT_EQ(Passes("ok"), 1);
  EXPECT_EQ(Passes("skipped"), 1);
  EXPECT_GE(Runway(), 21 * kDay);
}

TEST_F(RetentionMetricsTest, AFailingCreateCountsAsAnErrorAndReleasesTheLock) {
  RefuseCreateTable();
  RetentionRunner runner = Runner();
  EXPECT_THAT(runner.RunOnce(), Not(IsOk()));
  EXPECT_EQ(Passes("error"), 1);
  EXPECT_EQ(Passes("ok"), 0);
  EXPECT_EQ(Value("octo_retention_partitions_created_total"), 0);
  EXPECT_EQ(Value("octo_retention_last_success_timestamp_seconds"), 0);
  EXPECT_THAT(Value("octo_retention_last_pass_duration_seconds"), Optional(::testing::Gt(0)));
  // The figures are read anyway: the partitions as they are, next week's end.
  EXPECT_GE(Runway(), 7 * kDay);
  EXPECT_LE(Runway(), 14 * kDay);
  // The failed session is closed: its lock is free for the next pass.
  EXPECT_TRUE(LockFreedWithin(std::chrono::seconds(5)));

  Exec("DROP EVENT TRIGGER octo_test_refuse");
  ASSERT_THAT(runner.RunOnce(), IsOk());
  EXPECT_EQ(Passes("ok"), 1);
  EXPECT_EQ(Passes("error"), 1);
  EXPECT_THAT(Value("octo_retention_partitions_created_total"), Optional(::testing::Ge(6)));
  EXPECT_GE(Runway(), 21 * kDay);
}

TEST_F(RetentionMetricsTest, AKilledSessionIsAnErrorThenTheNextPassReconnects) {
  const std::string conninfo = db_->conninfo() + " application_name=octo_retention_metrics_test";
  RetentionRunner runner = Runner(conninfo);
  ASSERT_THAT(runner.RunOnce(), IsOk());
  const double runway = Runway();
  ASSERT_GE(runway, 21 * kDay);
  // The session the runner keeps between passes ends (a failover, a restart).
  ASSERT_EQ(Count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                  " WHERE application_name = 'octo_retention_metrics_test'"),
            1);
  EXPECT_THAT(runner.RunOnce(), Not(IsOk()));
  EXPECT_EQ(Passes("error"), 1);
  // Nothing could be read: the runway counts down from the last value read.
  EXPECT_LE(Runway(), runway);
  EXPECT_GT(Runway(), runway - 60);
  ASSERT_THAT(runner.RunOnce(), IsOk());
  EXPECT_EQ(Passes("ok"), 2);
}

TEST_F(RetentionMetricsTest, AnUnreachableDatabaseCountsErrorsAndTheMaintainerKeepsRunning) {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  options_.interval = absl::Milliseconds(20);
  {
    RetentionMaintainer maintainer("host=127.0.0.1 port=1 dbname=octo user=octo connect_timeout=2", options_,
                                   &metrics_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Passes("error") < 3 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }  // stops and joins
  EXPECT_GE(Passes("error"), 3);
  EXPECT_EQ(Passes("ok"), 0);
  EXPECT_EQ(Value("octo_retention_partition_runway_seconds"), std::nullopt);  // never known
  // The same metrics keep serving a working maintainer afterwards.
  options_.interval = absl::Hours(1);
  { RetentionMaintainer maintainer(db_->conninfo(), options_, &metrics_); }  // one pass, then stop
  EXPECT_EQ(Passes("ok"), 1);
  EXPECT_GE(Runway(), 21 * kDay);
}

}  // namespace
}  // namespace octo::testing
