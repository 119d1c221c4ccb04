// The stores under database faults, on a real PostgreSQL: a session the
// server ends while a store's transaction runs (rerun on a new connection) or
// while it commits (UNKNOWN: the outcome is unknown, never rerun), and the
// lock order of deleting a webhook against the result recorder's.
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <thread>

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

// ------------------------------------------------------ deleting a webhook --

// The lock order (docs/delivery.md, "Lock order"): a result write that
// writes a webhook's row (failing_since, disabling it) takes it first, then
// the webhook's delivery rows. This session does so; it would be the victim
// of any deadlock (its deadlock_timeout is the shorter), so it commits only
// if deleting the webhook takes the webhook's row before any delivery's
// (a delete that locked the deliveries first waited for the webhook row
// while holding the delivery this session then updates).
TEST_F(DeliveryTest, DeletingAWebhookTakesItsRowBeforeItsDeliveriesAsTheResultWriterDoes) {
  const std::string webhook = NewWebhook(connection_a_);
  pb::PublishEventResponse r;
  ASSERT_THAT(EnqueueOne(Booking("k-del", R"({"uuid":"b-1"})"), &r), GrpcIsOk());
  ASSERT_EQ(r.delivery_count(), 1);

  auto recorder = Raw();
  pqxx::work txn(*recorder);
  txn.exec("SET LOCAL deadlock_timeout = '10ms'");
  txn.exec(absl::StrCat("SELECT 1 FROM webhooks WHERE id = '", webhook, "' FOR NO KEY UPDATE"));

  std::optional<absl::StatusOr<subscription::WebhookRecord>> deleted;
  std::thread deleter([&] { deleted = repo_->DeleteWebhook(connection_a_, webhook); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
               " AND datname = current_database()") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  bool recorder_committed = false;
  try {
    txn.exec(absl::StrCat("UPDATE webhooks SET failing_since = now() WHERE id = '", webhook, "'"));
    txn.exec(absl::StrCat("UPDATE deliveries SET attempt_count = 1, last_http_status = 500"
                          " WHERE webhook_id = '", webhook, "'"));
    txn.commit();
    recorder_committed = true;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "the recorder's transaction failed: " << e.what();
  }
  deleter.join();
  EXPECT_TRUE(recorder_committed);
  ASSERT_TRUE(deleted.has_value());
  EXPECT_THAT(*deleted, IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM webhooks"), 0);
}

}  // namespace
}  // namespace octo::testing
