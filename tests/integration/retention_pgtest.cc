// Retention by time partitions (docs/delivery.md, "Retention"; migration
// 0013) on a real PostgreSQL: events enqueued through DeliveryService,
// claims and results through PgDispatchStore, the attempt log, redeliver and
// replay through PgOperationsStore, and the maintenance pass
// (RunRetentionPass) as octo-delivery runs it. Rows are moved into older
// weeks by updating their partition keys (PostgreSQL moves them between
// partitions), as if they had been published then.
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/delivery/retention.h"
#include "tests/integration/retention_fixture.h"

namespace octo::testing {
namespace {

TEST_F(RetentionTest, PartitionsAreCreatedAheadForAllThreeTables) {
  // The migration made this week and the next.
  for (const char* table : {"events", "deliveries", "delivery_attempts"}) {
    EXPECT_NE(Text(PartitionFor(table, 0)), "<null>") << table;
    EXPECT_NE(Text(PartitionFor(table, 7)), "<null>") << table;
    EXPECT_EQ(Text(PartitionFor(table, 28)), "<null>") << table;
  }
  const RetentionPass pass = Pass(30, /*ahead_days=*/28);
  EXPECT_TRUE(pass.ran);
  EXPECT_GE(pass.partitions_created, 6);  // two or three weeks more, three tables each
  for (const char* table : {"events", "deliveries", "delivery_attempts"}) {
    EXPECT_NE(Text(PartitionFor(table, 28)), "<null>") << table;
  }
  EXPECT_EQ(Pass(30, 28).partitions_created, 0);  // nothing missing now
  // Start-up creation (octo-delivery calls it before serving).
  RetentionOptions options;
  options.ahead = absl::Hours(24 * 42);
  ASSERT_THAT(delivery::CreatePartitionsAhead(db_->conninfo(), options), IsOk());
  EXPECT_NE(Text(PartitionFor("deliveries", 42)), "<null>");
  // The deliveries partitions have room for a claim of each row (HOT) and
  // are vacuumed after a fixed number of dead rows (0016), new and old alike.
  const std::string reloptions =
      "fillfactor=50,autovacuum_vacuum_scale_factor=0,autovacuum_vacuum_threshold=10000,vacuum_index_cleanup=on";
  EXPECT_EQ(Text(absl::StrCat("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = (",
                              PartitionFor("deliveries", 42), ")::regclass")),
            reloptions);
  EXPECT_EQ(Text(absl::StrCat("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = (",
                              PartitionFor("deliveries", 0), ")::regclass")),
            reloptions);
}

TEST_F(RetentionTest, ExpiredSlicesAreDroppedButAPendingDeliveryKeepsItsSliceAndStillDelivers) {
  const std::string retrying = Publish("retrying");
  Send(retrying, 503, DecisionKind::kRetry);  // attempt 1 failed, pending
  const std::string done = Publish("done");
  Send(done, 200, DecisionKind::kSucceeded);
  const std::string recent = Publish("recent");
  MoveBack(retrying, 60);
  MoveBack(done, 45);
  ASSERT_EQ(Rows(retrying), 3);
  ASSERT_EQ(Rows(done), 3);

  RetentionPass pass = Pass(30);
  EXPECT_TRUE(pass.ran);
  EXPECT_EQ(pass.slices_dropped, 1);  // the finished delivery's week
  EXPECT_EQ(pass.slices_held, 1);     // the retrying one's
  EXPECT_GT(pass.oldest_slice_age_seconds, 60 * 86400.0);
  EXPECT_EQ(Rows(done), 0);
  EXPECT_EQ(Rows(retrying), 3);  // the delivery, its event and its attempt
  EXPECT_EQ(Rows(recent), 2);

  // It is still sent, and its attempt log is whole.
  Exec(absl::StrCat("UPDATE deliveries SET next_attempt_at = now() WHERE id = '", retrying, "'"));
  const ClaimedDelivery claim = ClaimOne(retrying);
  EXPECT_EQ(claim.attempt_count, 1);
  Write(claim, 204, DecisionKind::kSucceeded);
  const pb::Delivery sent = Get(retrying);
  EXPECT_EQ(sent.state(), pb::DELIVERY_STATE_SUCCEEDED);
  ASSERT_EQ(sent.attempts_size(), 2);
  EXPECT_EQ(sent.attempts(0).http_status(), 503);
  EXPECT_EQ(sent.attempts(1).http_status(), 204);

  // Finished, it no longer holds its slice.
  pass = Pass(30);
  EXPECT_EQ(pass.slices_dropped, 1);
  EXPECT_EQ(pass.slices_held, 0);
  EXPECT_EQ(Rows(retrying), 0);
  EXPECT_EQ(Rows(recent), 2);
  EXPECT_LT(pass.oldest_slice_age_seconds, 15 * 86400.0);  // last week's, made by the migration
  EXPECT_EQ(Count("SELECT count(*) FROM octo_retention_slices() AS w WHERE w < now() - interval '30 days'"), 0);
}

TEST_F(RetentionTest, AttemptLogRedeliverAndReplayWorkAcrossPartitions) {
  const std::string old_one = Publish("old");
  Send(old_one, 500, DecisionKind::kFailed);
  const std::string new_one = Publish("new");
  Send(new_one, 500, DecisionKind::kFailed);
  MoveBack(old_one, 10);
  ASSERT_NE(Text(absl::StrCat("SELECT tableoid::regclass::text FROM deliveries WHERE id = '", old_one, "'")),
            Text(absl::StrCat("SELECT tableoid::regclass::text FROM deliveries WHERE id = '", new_one, "'")));

  // The attempt log: newest first, over both weeks.
  absl::StatusOr<pb::ListDeliveriesResponse> list = ops_->List(connection_a_, webhook_, 10, std::nullopt, {});
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->deliveries_size(), 2);
  EXPECT_EQ(list->deliveries(0).id(), new_one);
  EXPECT_EQ(list->deliveries(1).id(), old_one);
  ASSERT_EQ(Get(old_one).attempts_size(), 1);

  // Replay takes both, each sent again into its own week.
  absl::StatusOr<pb::ReplayDeliveriesResponse> replay =
      ops_->Replay(connection_a_, webhook_, absl::Now() - absl::Hours(24 * 20), 10);
  ASSERT_THAT(replay, IsOk());
  EXPECT_EQ(replay->queued_count(), 2);
  std::map<std::string, ClaimedDelivery> claimed = ClaimAll();
  ASSERT_EQ(claimed.size(), 2u);
  Write(claimed.at(old_one), 200, DecisionKind::kSucceeded);
  Write(claimed.at(new_one), 200, DecisionKind::kSucceeded);
  for (const std::string& id : {old_one, new_one}) {
    const pb::Delivery d = Get(id);
    EXPECT_EQ(d.state(), pb::DELIVERY_STATE_SUCCEEDED) << id;
    ASSERT_EQ(d.attempts_size(), 2) << id;
    EXPECT_EQ(d.attempts(1).http_status(), 200) << id;
  }

  // Redeliver the old one: its third attempt lands in its own week.
  ASSERT_THAT(ops_->Redeliver(connection_a_, webhook_, old_one), IsOk());
  Send(old_one, 201, DecisionKind::kSucceeded);
  EXPECT_EQ(Get(old_one).attempts_size(), 3);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
                               " WHERE a.delivery_created_at = d.created_at AND d.webhook_id = '", webhook_, "'")),
            5);
  EXPECT_EQ(Count("SELECT count(DISTINCT tableoid) FROM delivery_attempts"), 2);
}

TEST_F(RetentionTest, OrderedResourcesIdleBeyondTheRetentionPeriodAreDeletedAndTheirNumberingRestarts) {
  subscription::NewWebhook w;
  w.connection_id = connection_b_;
  w.event = "booking_update";
  w.url = "https://hooks.example.com/ordered";
  w.secret = crypto::NewSigningSecret();
  w.ordered = true;
  auto created = repo_->CreateWebhook(w);
  ASSERT_THAT(created, IsOk());
  const std::string ordered = created->id;
  const auto sequence_of = [&](const std::string& key) {
    return Text(absl::StrCat("SELECT d.sequence FROM deliveries d JOIN events e ON e.id = d.event_id"
                             " WHERE e.idempotency_key = '", key, "' AND d.webhook_id = '", ordered, "'"));
  };
  const std::string first = Publish("b-1");
  const std::string second = Publish("b-1-second", "b-1");
  Publish("b-2");
  EXPECT_EQ(sequence_of("b-1"), "1");
  EXPECT_EQ(sequence_of("b-1-second"), "2");
  EXPECT_EQ(sequence_of("b-2"), "1");

  // Everything finished; both resources idle for 60 days. Booking b-1's
  // events were published 60 days ago, b-2's is recent (still stored).
  Exec("UPDATE deliveries SET state = 'cancelled', completed_at = now()");
  Exec("UPDATE ordered_resources SET last_enqueued_at = now() - interval '60 days'");
  MoveBack(first, 60);
  MoveBack(second, 60);

  const RetentionPass pass = Pass(30);
  EXPECT_EQ(pass.slices_dropped, 1);
  EXPECT_EQ(pass.resources_pruned, 1);  // b-1's row; b-2 still has a delivery
  EXPECT_EQ(Count("SELECT count(*) FROM ordered_resources WHERE resource_key = 'b-1'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM ordered_resources WHERE resource_key = 'b-2'"), 1);

  // b-1's next event starts its numbering again; b-2's goes on.
  Publish("b-1-third", "b-1");
  Publish("b-2-second", "b-2");
  EXPECT_EQ(sequence_of("b-1-third"), "1");
  EXPECT_EQ(sequence_of("b-2-second"), "2");
  EXPECT_EQ(Pass(30).resources_pruned, 0);  // just used again
}

}  // namespace
}  // namespace octo::testing
