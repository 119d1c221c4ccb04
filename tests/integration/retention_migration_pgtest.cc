// Migration 0013 (retention partitions) on a populated database: the schema
// of migration 0012, filled the way that release wrote it (events in three
// weeks, deliveries in every state, attempts, an ordered resource with a
// due and a waiting delivery), then the new migration. Every row must come
// through unchanged into the partition of its week, and the attempt log,
// redeliver, replay, ordered promotion, new deliveries and a retention pass
// must work on it.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/delivery/dispatch_store.h"
#include "tests/fakes/claims.h"
#include "services/delivery/operations_store.h"
#include "services/delivery/retention.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {
namespace {

using delivery::ClaimedDelivery;
using delivery::DecisionKind;
using delivery::DeliveryResult;
using delivery::PgDispatchStore;
using delivery::PgOperationsStore;

constexpr int kOldSchema = 12;
constexpr int kPartitionedSchema = 13;  // 0013_retention_partitions

// Every column of the three tables as 0012 had them, one text per table.
constexpr char kFingerprint[] =
    "SELECT (SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT * FROM events) x)"
    " || (SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT * FROM deliveries) x)"
    " || (SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT delivery_id, attempt_number,"
    "      started_at, duration_ms, http_status, error_class, response_snippet FROM delivery_attempts) x)"
    " || (SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT id, webhook_id, resource_kind,"
    "      resource_key, last_sequence, in_flight_until FROM ordered_resources) x)";

class RetentionMigrationTest : public DeliveryTest {
 protected:
  int MigrateUpTo() const override { return kOldSchema; }

  void SetUp() override {
    DeliveryTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(Count("SELECT max(version) FROM schema_migrations"), kOldSchema);
    webhook_ = NewWebhook(connection_a_);
    subscription::NewWebhook w;
    w.connection_id = connection_b_;
    w.event = "booking_update";
    w.url = "https://hooks.example.com/ordered";
    w.secret = crypto::NewSigningSecret();
    w.ordered = true;
    auto created = repo_->CreateWebhook(w);
    ASSERT_THAT(created, IsOk());
    ordered_ = created->id;
  }

  // An event published `days` ago with one delivery to `webhook` in
  // `state`, as the old release stored them; returns the delivery id.
  std::string OldDelivery(pqxx::work& txn, int days, const std::string& state, const std::string& webhook,
                          const std::string& extra_columns = "", const std::string& extra_values = "") {
    const std::string at = absl::StrCat("now() - interval '", days, " days'");
    const std::string key = absl::StrCat("old-", ++n_);
    const std::string event = txn.exec_params1(
        absl::StrCat("INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource,"
                     " occurred_at, created_at, delivery_count) VALUES ($1, $2, 'booking_update', 'booking', $3::text,"
                     " json_build_object('uuid', $3::text), ", at, ", ", at, ", 1) RETURNING id::text"),
        supplier_id_, key, state == "ordered" ? std::string("ord-1") : key)[0].as<std::string>();
    const bool finished = state == "succeeded" || state == "failed" || state == "cancelled";
    const int attempts = state == "succeeded" ? 1 : state == "failed" ? 2 : state == "cancelled" ? 0 : 1;
    const std::string id = txn.exec_params1(
        absl::StrCat("INSERT INTO deliveries (event_id, webhook_id, state, attempt_count, created_at, completed_at,"
                     " last_http_status, next_attempt_at", extra_columns, ") VALUES ($1, $2, $3, $4, ", at,
                     ", CASE WHEN $5 THEN now() END, CASE WHEN $4 > 0 THEN 500 + ($3 = 'succeeded')::int * -300 END,"
                     " now()", extra_values, ") RETURNING id::text"),
        event, webhook, finished ? state : std::string("pending"), attempts, finished)[0].as<std::string>();
    for (int i = 1; i <= attempts; ++i) {
      txn.exec_params(absl::StrCat("INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at,"
                                   " duration_ms, http_status, response_snippet) VALUES ($1, $2, ", at,
                                   " + $2::int * interval '1 minute', 2.5, $3, 'old snippet')"),
                      id, i, i == attempts && state == "succeeded" ? 200 : 500);
    }
    return id;
  }

  void Write(const ClaimedDelivery& d, int status, DecisionKind kind) {
    ASSERT_THAT(dispatch_->WriteResults({testing::AttemptResult(d, status, kind)}), IsOk());
  }
  std::map<std::string, ClaimedDelivery> ClaimAll() {
    absl::StatusOr<delivery::ClaimBatch> batch = dispatch_->Claim(100, absl::Seconds(30));
    EXPECT_THAT(batch, IsOk());
    std::map<std::string, ClaimedDelivery> out;
    if (batch.ok()) {
      for (const ClaimedDelivery& d : batch->deliveries) out.emplace(d.id, d);
    }
    return out;
  }

  int n_ = 0;
  std::string webhook_;
  std::string ordered_;
  std::unique_ptr<PgDispatchStore> dispatch_;
  std::unique_ptr<PgOperationsStore> ops_;
};

TEST_F(RetentionMigrationTest, EveryRowSurvivesAndEverythingWorksAcrossTheNewPartitions) {
  std::map<std::string, std::string> old;  // "<days>/<state>" -> delivery id
  std::string ordered_head, ordered_waiting;
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    for (int days : {50, 10, 0}) {
      for (const char* state : {"pending", "succeeded", "failed", "cancelled"}) {
        old[absl::StrCat(days, "/", state)] = OldDelivery(txn, days, state, webhook_);
      }
    }
    const std::string resource =
        txn.exec_params1("INSERT INTO ordered_resources (webhook_id, resource_kind, resource_key, last_sequence)"
                         " VALUES ($1, 'booking', 'ord-1', 2) RETURNING id::text", ordered_)[0].as<std::string>();
    const std::string columns = ", ordered_resource_id, sequence, ordered_at";
    ordered_head = OldDelivery(txn, 10, "ordered", ordered_, columns, absl::StrCat(", ", resource, ", 1, now()"));
    ordered_waiting = OldDelivery(txn, 10, "ordered", ordered_, columns, absl::StrCat(", ", resource, ", 2, now()"));
    txn.exec_params("UPDATE deliveries SET next_attempt_at = 'infinity' WHERE id = $1", ordered_waiting);
    txn.commit();
  }
  const std::string before = Text(kFingerprint);
  const long long rows = Count("SELECT (SELECT count(*) FROM events) * 1000000 + (SELECT count(*) FROM deliveries)"
                               " * 1000 + (SELECT count(*) FROM delivery_attempts)");
  ASSERT_EQ(rows, 14 * 1000000 + 14 * 1000 + 14);

  // The partitioning migration alone first: the fingerprint reads every
  // column, and later migrations add some.
  std::vector<Migration> to_partitions;
  for (const Migration& m : schema::Migrations()) {
    if (m.version <= kPartitionedSchema) to_partitions.push_back(m);
  }
  ASSERT_THAT(ApplyMigrations(db_->conninfo(), to_partitions, schema::kMigrationLockKey), IsOk());
  ASSERT_EQ(Count("SELECT count(*) FROM pg_partitioned_table"), 3);

  // Every row, unchanged, in the partition of its week (three weeks).
  EXPECT_EQ(Text(kFingerprint), before);
  ASSERT_THAT(ApplyMigrations(db_->conninfo(), schema::Migrations(), schema::kMigrationLockKey), IsOk());
  EXPECT_EQ(Count("SELECT (SELECT count(*) FROM events) * 1000000 + (SELECT count(*) FROM deliveries) * 1000"
                  " + (SELECT count(*) FROM delivery_attempts)"),
            rows);
  EXPECT_EQ(Count("SELECT count(DISTINCT tableoid) FROM deliveries"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
                  " AND d.created_at = a.delivery_created_at"),
            14);
  EXPECT_EQ(Count("SELECT count(*) FROM events e JOIN deliveries d ON d.event_id = e.id"
                  " AND d.created_at = e.created_at AND d.tableoid::regclass::text ="
                  " replace(e.tableoid::regclass::text, 'events', 'deliveries')"),
            14);

  auto dispatch = PgDispatchStore::Connect(db_->conninfo());
  ASSERT_THAT(dispatch, IsOk());
  dispatch_ = *std::move(dispatch);
  auto ops = PgOperationsStore::Create(pool_.get());
  ASSERT_THAT(ops, IsOk());
  ops_ = *std::move(ops);

  // The attempt log over the three weeks, newest first.
  absl::StatusOr<pb::ListDeliveriesResponse> list = ops_->List(connection_a_, webhook_, 100, std::nullopt, {});
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->deliveries_size(), 12);
  EXPECT_LT(list->deliveries(11).create_time().seconds(), list->deliveries(0).create_time().seconds());
  absl::StatusOr<pb::Delivery> failed = ops_->Get(connection_a_, webhook_, old.at("50/failed"));
  ASSERT_THAT(failed, IsOk());
  ASSERT_EQ(failed->attempts_size(), 2);
  EXPECT_EQ(failed->attempts(1).response_snippet(), "old snippet");

  // The old pending deliveries (three weeks) and the ordered head are sent;
  // the ordered one's successor is promoted and sent after it.
  std::map<std::string, ClaimedDelivery> claimed = ClaimAll();
  EXPECT_EQ(claimed.size(), 4u);
  ASSERT_EQ(claimed.count(ordered_head), 1u);
  EXPECT_EQ(claimed.at(ordered_head).sequence, 1);
  for (const auto& [id, d] : claimed) Write(d, 204, DecisionKind::kSucceeded);
  claimed = ClaimAll();
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_EQ(claimed.count(ordered_waiting), 1u);
  EXPECT_EQ(claimed.at(ordered_waiting).sequence, 2);
  Write(claimed.at(ordered_waiting), 204, DecisionKind::kSucceeded);
  absl::StatusOr<pb::Delivery> pending = ops_->Get(connection_a_, webhook_, old.at("50/pending"));
  ASSERT_THAT(pending, IsOk());
  EXPECT_EQ(pending->state(), pb::DELIVERY_STATE_SUCCEEDED);
  EXPECT_EQ(pending->attempts_size(), 2);

  // Redeliver an old failed delivery, replay the rest (failed, cancelled).
  ASSERT_THAT(ops_->Redeliver(connection_a_, webhook_, old.at("50/failed")), IsOk());
  claimed = ClaimAll();
  ASSERT_EQ(claimed.size(), 1u);
  Write(claimed.begin()->second, 200, DecisionKind::kSucceeded);
  failed = ops_->Get(connection_a_, webhook_, old.at("50/failed"));
  ASSERT_THAT(failed, IsOk());
  EXPECT_EQ(failed->state(), pb::DELIVERY_STATE_SUCCEEDED);
  EXPECT_EQ(failed->attempts_size(), 3);
  absl::StatusOr<pb::ReplayDeliveriesResponse> replay =
      ops_->Replay(connection_a_, webhook_, absl::Now() - absl::Hours(24 * 60), 100);
  ASSERT_THAT(replay, IsOk());
  EXPECT_EQ(replay->queued_count(), 5);  // two failed, three cancelled
  claimed = ClaimAll();
  EXPECT_EQ(claimed.size(), 5u);
  for (const auto& [id, d] : claimed) Write(d, 200, DecisionKind::kSucceeded);

  // New deliveries flow into this week.
  pb::PublishEventResponse published;
  ASSERT_THAT(EnqueueOne(Booking("after-upgrade", R"({"uuid":"new"})"), &published), GrpcIsOk());
  EXPECT_EQ(published.delivery_count(), 2);
  claimed = ClaimAll();
  EXPECT_EQ(claimed.size(), 2u);
  // The old key is still known (a duplicate), after the copy.
  ASSERT_THAT(EnqueueOne(Booking("old-1", R"({"uuid":"old-1"})"), &published), GrpcIsOk());
  EXPECT_TRUE(published.duplicate());

  // Retention on the migrated rows: the 50-day week has nothing pending left.
  delivery::RetentionOptions options;
  pqxx::connection conn(db_->conninfo());
  absl::StatusOr<delivery::RetentionPass> pass = delivery::RunRetentionPass(conn, options);
  ASSERT_THAT(pass, IsOk());
  EXPECT_EQ(pass->slices_dropped, 1);
  EXPECT_EQ(pass->slices_held, 0);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 14 - 4 + 2);
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 14 - 4 + 1);
}

}  // namespace
}  // namespace octo::testing
