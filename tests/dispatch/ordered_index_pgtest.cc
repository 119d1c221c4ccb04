// The look-ups of ordered delivery's resource rule (the claim's
// OCTO_HEAD_OF_RESOURCE, kPromoteHeads, kReleaseOrdered) against a real
// PostgreSQL (OCTO_TEST_PG): they must not be able to read the queue's index
// (deliveries_due_idx, WHERE state = 'pending') whole. With statistics taken
// while nothing was pending the planner did, once per look-up, and a claim
// with 100,000 ordered deliveries pending took 322 s (migration 0018,
// docs/PERFORMANCE.md "The ordered stall at scale"). Which plan statistics
// lead to is the planner's choice; whether a path exists at all is not: with
// the resource indexes dropped and sequential scans priced out, the planner
// takes any index it can use, so a whole scan of the queue's index in the
// plan means the look-up can use it.
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "services/common/migrations.h"
#include "services/delivery/dispatch_store_sql.h"
#include "services/delivery/ordered_sql.h"
#include "services/schema/migrations.h"
#include "tests/support/pg_test_db.h"

namespace octo::delivery {
namespace {

using octo::testing::TestDatabase;

class OrderedIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    absl::Status migrated = ApplyMigrations(db_->conninfo(), schema::Migrations(), schema::kMigrationLockKey);
    ASSERT_TRUE(migrated.ok()) << migrated;
    conn_ = std::make_unique<pqxx::connection>(db_->conninfo());
  }

  // The plan of `sql` (EXPLAIN, nothing runs) with only the queue's index
  // and the primary keys left to read deliveries by.
  std::string PlanWithoutResourceIndexes(const std::string& prepare, const std::string& execute) {
    pqxx::work txn(*conn_);
    txn.exec("DROP INDEX deliveries_ordered_unfinished_idx");
    txn.exec("DROP INDEX deliveries_ordered_resource_idx");
    // Kept by migration 0018 for replicas of the previous release; it would
    // serve a look-up that says state = 'pending' and so hide the regression
    // this test is for.
    txn.exec("DROP INDEX deliveries_ordered_pending_idx");
    txn.exec("SET LOCAL enable_seqscan = off");
    txn.exec(prepare);
    std::string plan;
    for (const pqxx::row& row : txn.exec("EXPLAIN " + execute)) plan += row[0].as<std::string>() + "\n";
    txn.abort();
    return plan;
  }

  // Scans of a deliveries_due_idx partition without an Index Cond: the
  // queue's index read whole.
  static std::vector<std::string> WholeQueueIndexScans(const std::string& plan) {
    std::vector<std::string> lines;
    std::istringstream in(plan);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::vector<std::string> whole;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].find("next_attempt_at_idx") == std::string::npos ||
          lines[i].find("Index") == std::string::npos) {
        continue;
      }
      bool ranged = false;
      for (std::size_t j = i + 1; j < lines.size() && lines[j].find("->") == std::string::npos &&
                                  lines[j].find("Plan ") == std::string::npos;
           ++j) {
        ranged = ranged || lines[j].find("Index Cond:") != std::string::npos;
      }
      if (!ranged) whole.push_back(lines[i]);
    }
    return whole;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<pqxx::connection> conn_;
};

TEST_F(OrderedIndexTest, TheClaimsResourceRuleCannotReadTheQueuesIndexWhole) {
  const std::string plan =
      PlanWithoutResourceIndexes(std::string("PREPARE c(int, bigint, int, boolean) AS ") + dispatch_sql::kClaim.sql,
                                 "EXECUTE c(200, 30000, 3, true)");
  EXPECT_TRUE(WholeQueueIndexScans(plan).empty()) << plan;
  // The claim itself still takes due rows from the queue's index, by range.
  EXPECT_NE(plan.find("next_attempt_at_idx"), std::string::npos) << plan;
}

TEST_F(OrderedIndexTest, ThePromotionCannotReadTheQueuesIndexWhole) {
  const std::string plan = PlanWithoutResourceIndexes(
      std::string("PREPARE p(bigint[]) AS ") + ordered_sql::kPromoteHeads, "EXECUTE p('{1,2,3}')");
  EXPECT_TRUE(WholeQueueIndexScans(plan).empty()) << plan;
}

TEST_F(OrderedIndexTest, TheReleasesProbeOfTheNextDeliveryCannotReadTheQueuesIndexWhole) {
  const std::string plan =
      PlanWithoutResourceIndexes(std::string("PREPARE r(json) AS ") + dispatch_sql::kReleaseOrdered.sql,
                                 R"(EXECUTE r('[{"id": 1, "lease": 1}]'))");
  EXPECT_TRUE(WholeQueueIndexScans(plan).empty()) << plan;
}

// The index the look-ups use holds exactly the pending ordered deliveries:
// `completed_at IS NULL` is `state = 'pending'` (a CHECK of deliveries).
TEST_F(OrderedIndexTest, PendingIsCompletedAtNullForEveryStoredDelivery) {
  pqxx::work txn(*conn_);
  const pqxx::row r = txn.exec1(
      "SELECT count(*) FROM pg_constraint WHERE conrelid = 'deliveries'::regclass AND contype = 'c'"
      " AND pg_get_constraintdef(oid) LIKE '%(state = ''pending''::text) = (completed_at IS NULL)%'");
  EXPECT_EQ(r[0].as<int>(), 1);
  const pqxx::row idx = txn.exec1(
      "SELECT pg_get_indexdef('deliveries_ordered_unfinished_idx'::regclass)");
  EXPECT_NE(idx[0].as<std::string>().find("WHERE ((completed_at IS NULL) AND (ordered_resource_id IS NOT NULL))"),
            std::string::npos)
      << idx[0].as<std::string>();
}

}  // namespace
}  // namespace octo::delivery
