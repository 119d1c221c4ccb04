// The stores under database faults, on a real PostgreSQL: a session the
// server ends while a store's transaction runs (rerun on a new connection) or
// while it commits (UNKNOWN: the outcome is unknown, never rerun).
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "services/common/crypto.h"
#include "services/common/pg_status.h"
#include "services/subscription/operator_store.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {
namespace {

using ::testing::HasSubstr;

// ------------------------------------------------------------- enqueue --

TEST_F(DeliveryTest, EnqueueLosingItsConnectionBeforeTheCommitIsRerunOnANewOne) {
  NewWebhook(connection_a_);
  KillFirstSessionWriting("events", /*at_commit=*/false);
  pb::PublishEventResponse r;
  ASSERT_THAT(EnqueueOne(Booking("k-lost", R"({"uuid":"b-1"})"), &r), GrpcIsOk());
  EXPECT_EQ(r.delivery_count(), 1);
  EXPECT_EQ(KilledRuns(), 2);  // the killed run and its rerun
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 1);
}

TEST_F(DeliveryTest, EnqueueLosingItsConnectionDuringTheCommitIsUnknownAndNotRerun) {
  NewWebhook(connection_a_);
  KillFirstSessionWriting("events", /*at_commit=*/true);
  pb::PublishEventResponse r;
  const grpc::Status s = EnqueueOne(Booking("k-doubt", R"({"uuid":"b-1"})"), &r);
  EXPECT_THAT(s, GrpcStatusIs(grpc::StatusCode::UNKNOWN, "the outcome of the commit is unknown"));
  EXPECT_EQ(KilledRuns(), 1);  // never rerun blindly
  EXPECT_EQ(StoredRows(), 0);  // here the server rolled it back
  // Publishing again with the same key is what the caller does: stored once.
  ASSERT_THAT(EnqueueOne(Booking("k-doubt", R"({"uuid":"b-1"})"), &r), GrpcIsOk());
  EXPECT_FALSE(r.duplicate());
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);
}

// ------------------------------------------------------ operator store --

TEST_F(DeliveryTest, OperatorStoreRerunsAfterALostConnectionAndReportsACommitInDoubt) {
  subscription::OperatorStore operators(pool_.get());
  KillFirstSessionWriting("operators", /*at_commit=*/false);
  ASSERT_THAT(operators.CreateOperator(supplier_id_, "alice", crypto::Sha256("pw")), IsOk());
  EXPECT_EQ(KilledRuns(), 2);
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec("DROP TRIGGER octo_test_kill ON operators");
    txn.exec("ALTER SEQUENCE octo_test_kills RESTART");
    txn.exec(
        "CREATE CONSTRAINT TRIGGER octo_test_kill AFTER INSERT ON operators"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION octo_test_kill()");
    txn.commit();
  }
  const absl::StatusOr<subscription::OperatorRecord> doubt =
      operators.CreateOperator(supplier_id_, "bob", crypto::Sha256("pw"));
  EXPECT_THAT(doubt, StatusIs(absl::StatusCode::kUnknown, HasSubstr("outcome of the commit")));
  EXPECT_TRUE(IsCommitInDoubt(doubt.status()));
  EXPECT_FALSE(IsTransient(doubt.status()));
  EXPECT_EQ(KilledRuns(), 1);
}

}  // namespace
}  // namespace octo::testing
