// The dispatch store's fault rules, statement by statement, against a real
// PostgreSQL (OCTO_TEST_PG): idempotent result writes, results after a
// re-claim, interrupted attempts and quarantine, redeliver during a send,
// and timeouts and row locks that only hold back what they must. Leases
// are expired by SQL, not by waiting. Claims released unsent and the count
// of claims without a result: unreported_claims_pgtest.cc.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "services/common/pg_connection.h"
#include "services/common/pg_pool.h"
#include "services/delivery/dispatch_store.h"
#include "services/delivery/operations_store.h"
#include "tests/faults/dispatch_store_faults_fixture.h"

namespace octo::delivery {
namespace {

TEST_F(DispatchStoreFaultsTest, AResultWrittenTwiceIsRecordedOnce) {
  const ClaimedDelivery d = ClaimOne(ids_[0]);
  const DeliveryResult r = Result(d, 200, DecisionKind::kSucceeded);
  ASSERT_TRUE(store_->WriteResults({r}).ok());
  ASSERT_TRUE(store_->WriteResults({r}).ok());  // a commit in doubt, retried
  EXPECT_EQ(Row(d.id), "succeeded 1 200 - true");
  EXPECT_EQ(Attempts(d.id), "1:200");
}

TEST_F(DispatchStoreFaultsTest, ALateSuccessEndsAReclaimedDeliveryAndALaterFailureDoesNotOverwriteIt) {
  const ClaimedDelivery first = ClaimOne(ids_[0]);
  ExpireLeases();
  const ClaimedDelivery second = ClaimOne(ids_[0]);  // another replica: the first claim never reported
  EXPECT_EQ(second.attempt_count, 1);
  EXPECT_EQ(Attempts(first.id), "1:interrupted");
  // The first send was answered 200 after all: recorded, and it ends the delivery.
  ASSERT_TRUE(store_->WriteResults({Result(first, 200, DecisionKind::kSucceeded)}).ok());
  EXPECT_EQ(Attempts(first.id), "1:200");
  EXPECT_EQ(Row(first.id).substr(0, 16), "succeeded 1 200 ");
  // The second send's 503 is recorded, but the delivery stays succeeded with status 200.
  ASSERT_TRUE(store_->WriteResults({Result(second, 503, DecisionKind::kRetry)}).ok());
  EXPECT_EQ(Row(first.id), "succeeded 2 200 - true");
  EXPECT_EQ(Attempts(first.id), "1:200,2:503");
}

TEST_F(DispatchStoreFaultsTest, ALate410EndsAReclaimedDeliveryFailedNotCancelled) {
  const ClaimedDelivery first = ClaimOne(ids_[0]);
  ExpireLeases();
  const ClaimedDelivery second = ClaimOne(ids_[0]);  // re-claimed while the first send's result was held
  EXPECT_EQ(second.attempt_count, 1);
  // The first send was answered 410: the webhook is disabled, its other
  // pending delivery cancelled, and this one ends failed with the 410.
  ASSERT_TRUE(store_->WriteResults({Result(first, 410, DecisionKind::kGone)}).ok());
  EXPECT_EQ(Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = '", webhook_, "'")), "disabled");
  EXPECT_EQ(Row(first.id).substr(0, 13), "failed 1 410 ");
  EXPECT_EQ(Row(ids_[1]).substr(0, 10), "cancelled ");
  EXPECT_EQ(Attempts(first.id), "1:410");
  // The second send's answer changes nothing but its own attempt row.
  ASSERT_TRUE(store_->WriteResults({Result(second, 410, DecisionKind::kGone)}).ok());
  EXPECT_EQ(Row(first.id).substr(0, 13), "failed 2 410 ");
  EXPECT_EQ(Attempts(first.id), "1:410,2:410");
}

TEST_F(DispatchStoreFaultsTest, ClaimsWithoutAResultAreRecordedAndQuarantined) {
  Exec(absl::StrCat("DELETE FROM deliveries WHERE id = '", ids_[1], "'"));
  for (int claim = 1; claim <= 3; ++claim) {
    const ClaimedDelivery d = ClaimOne(ids_[0]);
    EXPECT_EQ(d.attempt_count, claim - 1);
    ExpireLeases();  // the process died while sending it
  }
  absl::StatusOr<ClaimBatch> batch = store_->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(batch.ok()) << batch.status();
  for (const ClaimedDelivery& d : batch->deliveries) EXPECT_NE(d.id, ids_[0]) << "a quarantined delivery was claimed";
  EXPECT_EQ(Row(ids_[0]), "failed 3 - interrupted true");
  EXPECT_EQ(Attempts(ids_[0]), "1:interrupted,2:interrupted,3:interrupted");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT left(response_snippet, 27) FROM delivery_attempts WHERE delivery_id = '", ids_[0],
                                "' AND attempt_number = 3")),
            "quarantined: 3 claims of th");
}

TEST_F(DispatchStoreFaultsTest, ADeliveryInterruptedTwiceIsClaimedAloneSoItsNeighboursAreNotQuarantined) {
  for (int claim = 1; claim <= 2; ++claim) {  // both in flight at two crashes
    absl::StatusOr<ClaimBatch> batch = store_->Claim(10, absl::Seconds(30));
    ASSERT_TRUE(batch.ok()) << batch.status();
    EXPECT_EQ(batch->deliveries.size(), 2u);
    ExpireLeases();
  }
  // Now each is claimed on its own; the one that reports is cleared.
  absl::StatusOr<ClaimBatch> alone = store_->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_EQ(alone->deliveries.size(), 1u);
  const ClaimedDelivery& d = alone->deliveries[0];
  ASSERT_TRUE(store_->WriteResults({Result(d, 200, DecisionKind::kSucceeded)}).ok());
  EXPECT_EQ(Scalar(absl::StrCat("SELECT unreported_claims FROM deliveries WHERE id = '", d.id, "'")), "0");
  absl::StatusOr<ClaimBatch> next = store_->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->deliveries.size(), 1u);
  EXPECT_NE(next->deliveries[0].id, d.id);
}

// Claimed alone per claim is not enough: a process runs several claims at
// once, and a second suspect in flight beside the one that crashes the
// process would die with it again, towards quarantine. With kNone (the
// process has a suspect in flight) suspects stay due; a delivery without
// suspicion is still claimed.
TEST_F(DispatchStoreFaultsTest, WhileASuspectIsInFlightNoOtherSuspectIsClaimed) {
  for (int claim = 1; claim <= 2; ++claim) {  // both in flight at two crashes
    absl::StatusOr<ClaimBatch> batch = store_->Claim(10, absl::Seconds(30));
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->deliveries.size(), 2u);
    for (const ClaimedDelivery& d : batch->deliveries) EXPECT_FALSE(d.suspect) << d.id;
    ExpireLeases();
  }
  absl::StatusOr<ClaimBatch> first = store_->Claim(10, absl::Seconds(30), DispatchStore::Suspects::kOneAlone);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->deliveries.size(), 1u);
  EXPECT_TRUE(first->deliveries[0].suspect);
  absl::StatusOr<ClaimBatch> none = store_->Claim(10, absl::Seconds(30), DispatchStore::Suspects::kNone);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->deliveries.empty()) << "a second suspect was claimed beside the first";

  const std::string fresh = AddDelivery("fresh");
  absl::StatusOr<ClaimBatch> plain = store_->Claim(10, absl::Seconds(30), DispatchStore::Suspects::kNone);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_EQ(plain->deliveries.size(), 1u);
  EXPECT_EQ(plain->deliveries[0].id, fresh);
  EXPECT_FALSE(plain->deliveries[0].suspect);

  ASSERT_TRUE(store_->WriteResults({Result(first->deliveries[0], 200, DecisionKind::kSucceeded)}).ok());
  absl::StatusOr<ClaimBatch> second = store_->Claim(10, absl::Seconds(30), DispatchStore::Suspects::kOneAlone);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->deliveries.size(), 1u);
  EXPECT_NE(second->deliveries[0].id, first->deliveries[0].id);
  EXPECT_TRUE(second->deliveries[0].suspect);
}

TEST_F(DispatchStoreFaultsTest, ARedeliverDuringTheSendMakesItDueWhenTheResultIsWritten) {
  const ClaimedDelivery d = ClaimOne(ids_[0]);
  Exec(absl::StrCat("UPDATE deliveries SET redeliver_requested = true WHERE id = '", d.id, "'"));
  ASSERT_TRUE(store_->WriteResults({Result(d, 200, DecisionKind::kSucceeded)}).ok());
  EXPECT_EQ(Row(d.id), "pending 1 200 - true");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT (next_attempt_at <= now() AND NOT redeliver_requested)::text FROM deliveries"
                                " WHERE id = '", d.id, "'")),
            "true");
}

TEST_F(DispatchStoreFaultsTest, ALockedRowHoldsBackOnlyItsOwnResult) {
  absl::StatusOr<ClaimBatch> batch = store_->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->deliveries.size(), 2u);
  const ClaimedDelivery& locked = batch->deliveries[0];
  const ClaimedDelivery& free = batch->deliveries[1];
  pqxx::connection other(db_->conninfo());
  pqxx::work lock(other);
  lock.exec(absl::StrCat("SELECT 1 FROM deliveries WHERE id = '", locked.id, "' FOR UPDATE"));
  const std::vector<DeliveryResult> results = {Result(locked, 200, DecisionKind::kSucceeded),
                                               Result(free, 200, DecisionKind::kSucceeded)};
  const absl::Status status = store_->WriteResults(results);
  EXPECT_TRUE(absl::IsAborted(status)) << status;  // transient: written again later
  EXPECT_EQ(Row(free.id), "succeeded 1 200 - true");
  lock.commit();
  ASSERT_TRUE(store_->WriteResults(results).ok());
  EXPECT_EQ(Row(locked.id), "succeeded 1 200 - true");
  EXPECT_EQ(Attempts(free.id), "1:200");
}

// Ordered delivery: the resource row of an ordered result (held here by
// another session, as an enqueue of that resource holds it) holds back that
// result only; the unordered one beside it is written.
TEST_F(DispatchStoreFaultsTest, ALockedResourceRowHoldsBackOnlyItsOwnResult) {
  const std::string resource = Scalar(absl::StrCat(
      "INSERT INTO ordered_resources (webhook_id, resource_kind, resource_key, last_sequence) VALUES ('", webhook_,
      "', 'booking', 'b0', 1) RETURNING id::text"));
  Exec(absl::StrCat("UPDATE deliveries SET ordered_resource_id = ", resource,
                    ", sequence = 1, ordered_at = now() WHERE id = '", ids_[0], "'"));
  absl::StatusOr<ClaimBatch> batch = store_->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->deliveries.size(), 2u);
  const bool first_is_ordered = batch->deliveries[0].id == ids_[0];
  const ClaimedDelivery ordered = batch->deliveries[first_is_ordered ? 0 : 1];
  const ClaimedDelivery unordered = batch->deliveries[first_is_ordered ? 1 : 0];
  pqxx::connection other(db_->conninfo());
  pqxx::work lock(other);
  lock.exec(absl::StrCat("SELECT 1 FROM ordered_resources WHERE id = ", resource, " FOR UPDATE"));
  const std::vector<DeliveryResult> results = {Result(ordered, 200, DecisionKind::kSucceeded),
                                               Result(unordered, 200, DecisionKind::kSucceeded)};
  const absl::Status status = store_->WriteResults(results);
  EXPECT_TRUE(absl::IsAborted(status)) << status;  // transient: written again later
  EXPECT_EQ(Row(unordered.id), "succeeded 1 200 - true");
  EXPECT_EQ(Row(ordered.id), "pending 0 - - false");
  lock.commit();
  ASSERT_TRUE(store_->WriteResults(results).ok());
  EXPECT_EQ(Row(ordered.id), "succeeded 1 200 - true");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT (in_flight_until IS NULL)::text FROM ordered_resources WHERE id = ", resource)),
            "true");
}

// Ordered delivery: a result write and a redeliver of its delivery take the
// resource row and the delivery row in one order (resource first), so they
// wait for each other instead of deadlocking (40P01). The barrier: a third
// session holds the resource row while the redeliver, then the writer, queue
// for it; a writer that locked the delivery first would then hold it while
// waiting behind the redeliver, which waits for that delivery row.
TEST_F(DispatchStoreFaultsTest, AResultAndARedeliverOfItsDeliveryTakeTheRowsInOneOrder) {
  Exec(absl::StrCat("UPDATE webhooks SET ordered = true WHERE id = '", webhook_, "'"));
  const std::string resource = Scalar(absl::StrCat(
      "INSERT INTO ordered_resources (webhook_id, resource_kind, resource_key, last_sequence) VALUES ('", webhook_,
      "', 'booking', 'b0', 1) RETURNING id::text"));
  Exec(absl::StrCat("UPDATE deliveries SET ordered_resource_id = ", resource,
                    ", sequence = 1, ordered_at = now() WHERE id = '", ids_[0], "'"));
  const ClaimedDelivery d = ClaimOne(ids_[0]);
  ASSERT_EQ(d.ordered_resource_id, std::stoll(resource));
  DeliveryResult result = Result(d, 200, DecisionKind::kSucceeded);
  result.ordered_resource_id = d.ordered_resource_id;
  const std::string connection = Scalar("SELECT id::text FROM connections");

  DispatchStoreOptions o = Options();
  o.lock_timeout = absl::Seconds(30);  // waits through the barrier
  auto writer = PgDispatchStore::Connect(db_->conninfo(), o);
  ASSERT_TRUE(writer.ok()) << writer.status();
  absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(db_->conninfo(), 2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  absl::StatusOr<std::unique_ptr<PgOperationsStore>> ops = PgOperationsStore::Create(pool->get());
  ASSERT_TRUE(ops.ok()) << ops.status();

  pqxx::connection other(db_->conninfo());
  pqxx::work hold(other);
  hold.exec(absl::StrCat("SELECT 1 FROM ordered_resources WHERE id = ", resource, " FOR UPDATE"));
  std::future<absl::Status> redeliver = std::async(std::launch::async, [&] {
    return (*ops)->Redeliver(connection, webhook_, d.id).status();
  });
  ASSERT_TRUE(WaitingReaches(1)) << "the redeliver never waited for the resource row";
  std::future<absl::Status> write =
      std::async(std::launch::async, [&] { return (*writer)->WriteResults({result}); });
  ASSERT_TRUE(WaitingReaches(2)) << "the result write never waited";
  hold.commit();

  const absl::Status redelivered = redeliver.get();
  const absl::Status written = write.get();
  EXPECT_TRUE(redelivered.ok()) << redelivered;
  // In a deadlock the writer is the one PostgreSQL aborts (40P01, ABORTED):
  // its wait began first, so its deadlock_timeout runs out first.
  EXPECT_TRUE(written.ok()) << written;
  // The redeliver came first: the delivery was in flight, so its result
  // makes it due again, and the resource is free for it.
  EXPECT_EQ(Row(d.id), "pending 1 200 - true");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT (next_attempt_at <= now() AND NOT redeliver_requested)::text"
                                " FROM deliveries WHERE id = '", d.id, "'")),
            "true");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT (in_flight_until IS NULL)::text FROM ordered_resources WHERE id = ", resource)),
            "true");
}

// After a lock timeout the fallback write keeps the lock order too: the
// resources of the webhooks whose pending deliveries it cancels (a 410)
// are taken, waiting, before any delivery row. It took the delivery rows
// first (never waiting), then waited for those resources: a redeliver
// holding the resource and waiting for the delivery deadlocked with it.
// The barrier: a third session holds the resource row; the redeliver, then
// the writer queue for it; the writer's first try times out there, and its
// fallback queues again. Then the row is released.
TEST_F(DispatchStoreFaultsTest, TheFallbackWriteOfAGoneTakesTheResourcesBeforeTheDeliveries) {
  Exec(absl::StrCat("UPDATE webhooks SET ordered = true WHERE id = '", webhook_, "'"));
  const std::string resource = Scalar(absl::StrCat(
      "INSERT INTO ordered_resources (webhook_id, resource_kind, resource_key, last_sequence) VALUES ('", webhook_,
      "', 'booking', 'b0', 1) RETURNING id::text"));
  Exec(absl::StrCat("UPDATE deliveries SET ordered_resource_id = ", resource,
                    ", sequence = 1, ordered_at = now() WHERE id = '", ids_[0], "'"));
  const ClaimedDelivery d = ClaimOne(ids_[0]);
  DeliveryResult result = Result(d, 410, DecisionKind::kGone);
  result.ordered_resource_id = d.ordered_resource_id;
  const std::string connection = Scalar("SELECT id::text FROM connections");

  DispatchStoreOptions o = Options();
  o.lock_timeout = absl::Seconds(2);  // the first try times out behind the redeliver
  auto writer = PgDispatchStore::Connect(db_->conninfo() + " application_name=fallback_writer", o);
  ASSERT_TRUE(writer.ok()) << writer.status();
  absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(db_->conninfo(), 2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  absl::StatusOr<std::unique_ptr<PgOperationsStore>> ops = PgOperationsStore::Create(pool->get());
  ASSERT_TRUE(ops.ok()) << ops.status();

  pqxx::connection other(db_->conninfo());
  pqxx::work hold(other);
  hold.exec(absl::StrCat("SELECT 1 FROM ordered_resources WHERE id = ", resource, " FOR UPDATE"));
  std::future<absl::Status> redeliver = std::async(std::launch::async, [&] {
    return (*ops)->Redeliver(connection, webhook_, d.id).status();
  });
  ASSERT_TRUE(WaitingReaches(1)) << "the redeliver never waited for the resource row";
  std::future<absl::Status> write =
      std::async(std::launch::async, [&] { return (*writer)->WriteResults({result}); });
  const std::string first_try = WaitingTransaction("fallback_writer", "");
  ASSERT_FALSE(first_try.empty()) << "the result write never waited";
  ASSERT_FALSE(WaitingTransaction("fallback_writer", first_try).empty()) << "the fallback write never waited";
  hold.commit();

  const absl::Status redelivered = redeliver.get();
  const absl::Status written = write.get();
  EXPECT_TRUE(redelivered.ok()) << redelivered;
  // Before, the writer was aborted (40P01: ABORTED), or the redeliver was
  // and the write then held the delivery back (ABORTED too).
  EXPECT_TRUE(written.ok()) << written;
  // The redeliver came first: the 410's result made the delivery due again,
  // and the same write cancelled it with the webhook's other pending ones.
  EXPECT_EQ(Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = '", webhook_, "'")), "disabled");
  EXPECT_EQ(Row(d.id), "cancelled 1 410 - true");
  EXPECT_EQ(Row(ids_[1]), "cancelled 0 - - false");  // claimed with it: its send's lease stays
  EXPECT_EQ(Scalar(absl::StrCat("SELECT (in_flight_until IS NULL)::text FROM ordered_resources WHERE id = ", resource)),
            "true");
}

TEST_F(DispatchStoreFaultsTest, AStatementTimeoutIsTransient) {
  // The statement timeout comes with the conninfo (the layer's
  // --pg_statement_timeout); the lock wait outlasts it.
  PgConnectionOptions pg;
  pg.statement_timeout = absl::Milliseconds(100);
  pg.lock_timeout = absl::Seconds(30);
  const absl::StatusOr<std::string> conninfo = PgConninfo(db_->conninfo(), pg);
  ASSERT_TRUE(conninfo.ok()) << conninfo.status();
  DispatchStoreOptions o = Options();
  o.lock_timeout = absl::ZeroDuration();
  auto store = PgDispatchStore::Connect(*conninfo, o);
  ASSERT_TRUE(store.ok());
  const ClaimedDelivery d = ClaimOne(ids_[0]);
  pqxx::connection other(db_->conninfo());
  pqxx::work lock(other);
  lock.exec(absl::StrCat("SELECT 1 FROM deliveries WHERE id = '", d.id, "' FOR UPDATE"));
  const absl::Status status = (*store)->WriteResults({Result(d, 200, DecisionKind::kSucceeded)});
  EXPECT_TRUE(absl::IsAborted(status)) << status;  // SQLSTATE 57014: retried, not given up
  lock.commit();
  EXPECT_TRUE((*store)->WriteResults({Result(d, 200, DecisionKind::kSucceeded)}).ok());
  EXPECT_EQ(Row(d.id), "succeeded 1 200 - true");
}

}  // namespace
}  // namespace octo::delivery
