// The lock order of result writes (docs/delivery.md, "Lock order": webhooks
// rows, then ordered_resources rows, then deliveries rows) against a real
// PostgreSQL (OCTO_TEST_PG). Two result writers (two processes, or two
// writer threads of one) write results of one webhook at once; one of them
// disables it and cancels its pending deliveries, among them the delivery
// whose result the other is writing. A barrier makes them meet: a third
// session holds the webhook row while the disabling writer, then the other,
// queue for it. A writer that locked its delivery rows before the webhook
// row then holds the other's delivery while waiting behind the disabler,
// which waits for that delivery: PostgreSQL aborts one (40P01).
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "services/common/migrations.h"
#include "services/delivery/dispatch_store.h"
#include "services/schema/migrations.h"
#include "tests/fakes/claims.h"
#include "tests/support/pg_test_db.h"

namespace octo::delivery {
namespace {

class ResultLockOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<testing::TestDatabase>();
    ASSERT_TRUE(ApplyMigrations(db_->conninfo(), schema::Migrations(), schema::kMigrationLockKey).ok());
    conn_ = std::make_unique<pqxx::connection>(db_->conninfo());
    Exec("INSERT INTO suppliers (name, endpoint, contact) VALUES ('S', 'https://s.example/octo', '{}')");
    Exec("INSERT INTO connections (supplier_id, name, max_webhooks) SELECT id, 'c', 100 FROM suppliers");
    webhook_ = Scalar(
        "INSERT INTO webhooks (connection_id, event, url, secret) SELECT id, 'booking_update', "
        "'http://127.0.0.1:9/x', 'whsec_' || repeat('A', 43) || '=' FROM connections RETURNING id::text");
    for (int i = 0; i < 3; ++i) {
      const std::string event = Scalar(absl::StrCat(
          "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource, "
          "occurred_at) SELECT id, 'k", i, "', 'booking_update', 'booking', 'b", i,
          "', '{}', now() FROM suppliers RETURNING id::text"));
      // The third is not due: it stays pending, for the cancel to find.
      ids_.push_back(Scalar(absl::StrCat("INSERT INTO deliveries (event_id, webhook_id, next_attempt_at) VALUES ('",
                                         event, "', '", webhook_, "', now() + interval '", i == 2 ? 1 : 0,
                                         " hour') RETURNING id::text")));
    }
  }

  std::string Scalar(const std::string& sql) {
    pqxx::work w(*conn_);
    const pqxx::row r = w.exec1(sql);
    w.commit();
    return r[0].is_null() ? "<null>" : r[0].as<std::string>();
  }
  void Exec(const std::string& sql) {
    pqxx::work w(*conn_);
    w.exec(sql);
    w.commit();
  }
  std::string Row(const std::string& id) {
    return Scalar(absl::StrCat("SELECT state || ' ' || attempt_count || ' ' || COALESCE(last_http_status::text, '-')"
                               " FROM deliveries WHERE id = '", id, "'"));
  }

  // By default waits through the barrier.
  std::unique_ptr<PgDispatchStore> Writer(absl::Duration lock_timeout = absl::Seconds(30)) {
    DispatchStoreOptions o;
    o.disable_after = absl::Hours(1);
    o.lock_timeout = lock_timeout;
    auto store = PgDispatchStore::Connect(db_->conninfo(), o);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Sessions of this database waiting for a lock (the barrier's count).
  bool WaitingReaches(int n) {
    for (int i = 0; i < 500; ++i) {
      if (std::stoi(Scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND wait_event_type = 'Lock'")) >= n) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Claims the two due deliveries; `disabling` is the result of the first
  // (it disables the webhook), `other` of the second (a failure the
  // webhook's health records). Writes them as the barrier above says.
  void Meet(int disabling_status, DecisionKind disabling_kind) {
    auto claimer = Writer();
    ASSERT_NE(claimer, nullptr);
    absl::StatusOr<ClaimBatch> batch = claimer->Claim(10, absl::Seconds(30));
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->deliveries.size(), 2u);
    const bool first = batch->deliveries[0].id == ids_[0];
    const ClaimedDelivery disabled = batch->deliveries[first ? 0 : 1];
    const ClaimedDelivery other = batch->deliveries[first ? 1 : 0];
    auto writer1 = Writer();
    auto writer2 = Writer();
    ASSERT_NE(writer1, nullptr);
    ASSERT_NE(writer2, nullptr);

    pqxx::connection session(db_->conninfo());
    pqxx::work hold(session);
    hold.exec(absl::StrCat("SELECT 1 FROM webhooks WHERE id = '", webhook_, "' FOR NO KEY UPDATE"));
    std::future<absl::Status> disabling = std::async(std::launch::async, [&] {
      return writer2->WriteResults(
          {testing::AttemptResult(disabled, disabling_status, disabling_kind, absl::Seconds(60))});
    });
    ASSERT_TRUE(WaitingReaches(1)) << "the disabling write never waited for the webhook row";
    std::future<absl::Status> failing = std::async(std::launch::async, [&] {
      return writer1->WriteResults({testing::AttemptResult(other, 500, DecisionKind::kRetry, absl::Seconds(60))});
    });
    ASSERT_TRUE(WaitingReaches(2)) << "the other write never waited";
    hold.commit();

    const absl::Status disabled_written = disabling.get();
    const absl::Status other_written = failing.get();
    EXPECT_TRUE(disabled_written.ok()) << disabled_written;
    EXPECT_TRUE(other_written.ok()) << other_written;  // 40P01 (ABORTED) before the lock order
    EXPECT_EQ(Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = '", webhook_, "'")), "disabled");
    EXPECT_EQ(Row(disabled.id), absl::StrCat("failed 1 ", disabling_status));
    // The other result came second: its delivery was cancelled by then (its
    // attempt is recorded all the same), as is the one not yet due.
    EXPECT_EQ(Row(other.id), "cancelled 1 500");
    EXPECT_EQ(Row(ids_[2]), "cancelled 0 -");
  }

  // The two due deliveries, claimed: {ids_[0]'s, ids_[1]'s}.
  std::vector<ClaimedDelivery> ClaimBoth() {
    auto claimer = Writer();
    if (claimer == nullptr) return {};
    absl::StatusOr<ClaimBatch> batch = claimer->Claim(10, absl::Seconds(30));
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || batch->deliveries.size() != 2) return {};
    const bool first = batch->deliveries[0].id == ids_[0];
    return {batch->deliveries[first ? 0 : 1], batch->deliveries[first ? 1 : 0]};
  }

  // The webhook disabled while its deliveries are in flight, as its owner
  // does (UpdateWebhook): its pending deliveries stay pending, for the next
  // claim or a 410's write to cancel. Its run of failures began long ago:
  // a failure does not change failing_since (nor lock the row for it).
  void DisableWebhook() {
    Exec(absl::StrCat("UPDATE webhooks SET status = 'disabled', disabled_at = now(),"
                      " failing_since = now() - interval '10 minutes' WHERE id = '", webhook_, "'"));
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<pqxx::connection> conn_;
  std::string webhook_;
  std::vector<std::string> ids_;
};

// One writer's 410 disables the webhook (and its first failure sets
// failing_since) while the other records a failure of the same webhook.
TEST_F(ResultLockOrderTest, AGoneAndAFailureOfOneWebhookWrittenAtOnceDoNotDeadlock) {
  Meet(410, DecisionKind::kGone);
}

// The webhook has been failing for longer than the limit: the first failure
// written disables it and cancels its pending deliveries, while the other
// writer records another failure of it.
TEST_F(ResultLockOrderTest, TwoFailuresOfAWebhookPastItsFailingLimitWrittenAtOnceDoNotDeadlock) {
  Exec(absl::StrCat("UPDATE webhooks SET failing_since = now() - interval '2 hours' WHERE id = '", webhook_, "'"));
  Meet(500, DecisionKind::kFailed);
}

// Two batches each with a 410 of a webhook disabled already, their
// deliveries in flight: each cancels the webhook's pending deliveries,
// among them the one whose result the other is writing. The webhook row
// was locked only while enabled, so they met delivery against delivery.
// The barrier: a third session holds the delivery of the batch written
// first; the second batch's cancel (before: after its own delivery's
// update) then queues for it too.
TEST_F(ResultLockOrderTest, TwoGonesOfAnAlreadyDisabledWebhookWrittenAtOnceDoNotDeadlock) {
  const std::vector<ClaimedDelivery> claimed = ClaimBoth();
  ASSERT_EQ(claimed.size(), 2u);
  DisableWebhook();
  auto writer1 = Writer();
  auto writer2 = Writer();
  ASSERT_NE(writer1, nullptr);
  ASSERT_NE(writer2, nullptr);

  pqxx::connection session(db_->conninfo());
  pqxx::work hold(session);
  hold.exec(absl::StrCat("SELECT 1 FROM deliveries WHERE id = '", claimed[1].id, "' FOR UPDATE"));
  std::future<absl::Status> first = std::async(std::launch::async, [&] {
    return writer1->WriteResults({testing::AttemptResult(claimed[1], 410, DecisionKind::kGone)});
  });
  ASSERT_TRUE(WaitingReaches(1)) << "the first write never waited";
  std::future<absl::Status> second = std::async(std::launch::async, [&] {
    return writer2->WriteResults({testing::AttemptResult(claimed[0], 410, DecisionKind::kGone)});
  });
  ASSERT_TRUE(WaitingReaches(2)) << "the second write never waited";
  hold.commit();

  const absl::Status first_written = first.get();
  const absl::Status second_written = second.get();
  EXPECT_TRUE(first_written.ok()) << first_written;  // one of them 40P01 (ABORTED) before
  EXPECT_TRUE(second_written.ok()) << second_written;
  // The first cancelled the webhook's pending deliveries, the second's in
  // flight among them (its attempt is recorded all the same).
  EXPECT_EQ(Row(claimed[1].id), "failed 1 410");
  EXPECT_EQ(Row(claimed[0].id), "cancelled 1 410");
  EXPECT_EQ(Row(ids_[2]), "cancelled 0 -");
}

// A 410 of a webhook disabled before, none of whose deliveries is pending
// any more (a first 410 cancelled them), cancels nothing more and locks no
// resource but its own: it waited for every resource row of the webhook,
// on every such batch. What its own result leaves pending (a redeliver
// asked for during the send makes it due again) it still cancels.
TEST_F(ResultLockOrderTest, AGoneOfADisabledWebhookWithNothingPendingLocksOnlyItsOwnResource) {
  Exec(absl::StrCat("UPDATE webhooks SET ordered = true WHERE id = '", webhook_, "'"));
  std::vector<std::string> resources;
  for (int i = 0; i < 3; ++i) {
    resources.push_back(Scalar(absl::StrCat(
        "INSERT INTO ordered_resources (webhook_id, resource_kind, resource_key, last_sequence) VALUES ('", webhook_,
        "', 'booking', 'b", i, "', 1) RETURNING id::text")));
    Exec(absl::StrCat("UPDATE deliveries SET ordered_resource_id = ", resources[i],
                      ", sequence = 1, ordered_at = now() WHERE id = '", ids_[i], "'"));
  }
  const std::vector<ClaimedDelivery> claimed = ClaimBoth();
  ASSERT_EQ(claimed.size(), 2u);
  DisableWebhook();
  // As the first 410's write leaves them: cancelled, the sends' leases kept.
  Exec(absl::StrCat("UPDATE deliveries SET state = 'cancelled', completed_at = now() WHERE webhook_id = '",
                    webhook_, "'"));
  Exec(absl::StrCat("UPDATE deliveries SET redeliver_requested = true WHERE id = '", claimed[0].id, "'"));
  auto writer = Writer(absl::Milliseconds(200));
  ASSERT_NE(writer, nullptr);

  pqxx::connection session(db_->conninfo());
  pqxx::work hold(session);
  hold.exec(absl::StrCat("SELECT 1 FROM ordered_resources WHERE id = ", resources[2], " FOR UPDATE"));
  const absl::Status written = writer->WriteResults({testing::AttemptResult(claimed[0], 410, DecisionKind::kGone)});
  EXPECT_TRUE(written.ok()) << written;  // a lock timeout (ABORTED) on the held resource before
  hold.commit();
  EXPECT_EQ(Row(claimed[0].id), "cancelled 1 410");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT (in_flight_until IS NULL)::text FROM ordered_resources WHERE id = ",
                                resources[0])),
            "true");
}

}  // namespace
}  // namespace octo::delivery
