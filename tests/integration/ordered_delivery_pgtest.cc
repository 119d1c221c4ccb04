// Ordered delivery at the store level (docs/delivery.md, "Ordered
// delivery"), on a real PostgreSQL: events enqueued through DeliveryService,
// claims and results through PgDispatchStore, redeliver through
// PgOperationsStore. Only the first unfinished delivery of a resource is
// ever claimed; a retrying one holds back its own resource only; finishing
// it (succeeded or failed) releases the next; a redelivered older delivery
// goes before the resource's pending ones; sequence numbers count from 1
// per (webhook, resource) in publish order.
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/delivery/dispatch_store.h"
#include "tests/fakes/claims.h"
#include "services/delivery/operations_store.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {
namespace {

using delivery::ClaimedDelivery;
using delivery::DecisionKind;
using delivery::DeliveryResult;
using delivery::PgDispatchStore;
using delivery::PgOperationsStore;

class OrderedDeliveryTest : public DeliveryTest {
 protected:
  void SetUp() override {
    DeliveryTest::SetUp();
    if (HasFatalFailure()) return;
    subscription::NewWebhook w;
    w.connection_id = connection_a_;
    w.event = "booking_update";
    w.url = "https://hooks.example.com/ordered";
    w.secret = crypto::NewSigningSecret();
    w.ordered = true;
    auto created = repo_->CreateWebhook(w);
    ASSERT_THAT(created, IsOk());
    ASSERT_TRUE(created->ordered);
    ordered_ = created->id;
    unordered_ = NewWebhook(connection_a_);
    auto store = PgDispatchStore::Connect(db_->conninfo());
    ASSERT_THAT(store, IsOk());
    dispatch_ = *std::move(store);
    auto ops = PgOperationsStore::Create(pool_.get());
    ASSERT_THAT(ops, IsOk());
    ops_ = *std::move(ops);
  }

  // Update `n` of booking `uuid`, occurred `occurred` seconds after At().
  void Publish(const std::string& uuid, int n, int occurred) {
    pb::PublishEventRequest e =
        Booking(absl::StrCat(uuid, "-", n, "-", occurred), absl::StrCat(R"({"uuid":")", uuid, R"(","n":)", n, "}"));
    *e.mutable_occurred_at() = At(occurred);
    pb::PublishEventResponse result;
    ASSERT_THAT(EnqueueOne(e, &result), GrpcIsOk());
    ASSERT_EQ(result.delivery_count(), 2);
  }

  // The deliveries of the ordered webhook claimed now, by
  // "<booking>#<n>/<sequence>"; the unordered webhook's are counted apart.
  std::map<std::string, ClaimedDelivery> Claim(int* unordered = nullptr, int limit = 100) {
    absl::StatusOr<delivery::ClaimBatch> batch = dispatch_->Claim(limit, absl::Seconds(30));
    EXPECT_THAT(batch, IsOk());
    std::map<std::string, ClaimedDelivery> out;
    if (!batch.ok()) return out;
    for (const ClaimedDelivery& d : batch->deliveries) {
      if (d.webhook_id != ordered_) {
        EXPECT_EQ(d.sequence, 0) << "an unordered delivery has a sequence";
        if (unordered != nullptr) ++*unordered;
        continue;
      }
      const std::string& json = batch->events.at(d.event_id).resource_json;  // {"uuid":"a","n":1}
      const std::string uuid = json.substr(9, json.find('"', 9) - 9);
      const std::string n = json.substr(json.rfind(':') + 1);
      out.emplace(absl::StrCat(uuid, "#", n.substr(0, n.size() - 1), "/", d.sequence), d);
    }
    return out;
  }
  static std::set<std::string> Keys(const std::map<std::string, ClaimedDelivery>& claimed) {
    std::set<std::string> keys;
    for (const auto& [key, d] : claimed) keys.insert(key);
    return keys;
  }
  using Set = std::set<std::string>;

  void Write(const ClaimedDelivery& d, int status, DecisionKind kind) {
    ASSERT_THAT(dispatch_->WriteResults({testing::AttemptResult(d, status, kind, absl::Seconds(60))}), IsOk());
  }

  void Exec(const std::string& sql) {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec0(sql);
    txn.commit();
  }

  std::unique_ptr<PgDispatchStore> dispatch_;
  std::unique_ptr<PgOperationsStore> ops_;
  std::string ordered_;
  std::string unordered_;
};

TEST_F(OrderedDeliveryTest, OnlyTheFirstDeliveryOfEachResourceIsClaimedAndNumbersCountPerResource) {
  for (int n = 1; n <= 3; ++n) Publish("a", n, n);
  Publish("b", 1, 10);
  int unordered = 0;
  EXPECT_EQ(Keys(Claim(&unordered)), (Set{"a#1/1", "b#1/1"}));
  EXPECT_EQ(unordered, 4) << "the unordered webhook's deliveries are all claimed at once";
  EXPECT_EQ(Keys(Claim()), Set{}) << "the heads are in flight; nothing else may go";
  EXPECT_EQ(Text(absl::StrCat("SELECT string_agg(sequence::text, ',' ORDER BY sequence) FROM deliveries"
                              " WHERE webhook_id = '", ordered_, "'")),
            "1,1,2,3");
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = '", unordered_,
                               "' AND (sequence IS NOT NULL OR ordered_resource_id IS NOT NULL)")),
            0);
}

TEST_F(OrderedDeliveryTest, ARetryingHeadHoldsBackItsResourceOnlyAndAFinishedOneReleasesTheNext) {
  for (int n = 1; n <= 3; ++n) Publish("a", n, n);
  for (int n = 1; n <= 2; ++n) Publish("b", n, n);
  auto heads = Claim();
  ASSERT_EQ(Keys(heads), (Set{"a#1/1", "b#1/1"}));
  Write(heads["a#1/1"], 503, DecisionKind::kRetry);  // a's head retries in 60 s
  Write(heads["b#1/1"], 200, DecisionKind::kSucceeded);
  EXPECT_EQ(Keys(Claim()), Set{"b#2/2"}) << "b goes on; a waits for its head";
  // a's head falls due again: it, not a#2, is claimed; then it fails for good.
  Exec(absl::StrCat("UPDATE deliveries SET next_attempt_at = now() WHERE id = '", heads["a#1/1"].id, "'"));
  auto again = Claim();
  ASSERT_EQ(Keys(again), Set{"a#1/1"});
  Write(again["a#1/1"], 500, DecisionKind::kFailed);
  auto a2 = Claim();
  ASSERT_EQ(Keys(a2), Set{"a#2/2"}) << "a failed head releases the next";
  Write(a2["a#2/2"], 200, DecisionKind::kSucceeded);
  EXPECT_EQ(Keys(Claim()), Set{"a#3/3"});
}

TEST_F(OrderedDeliveryTest, ResourcesAreSentInTheOrderTheirEventsOccurred) {
  Publish("c", 1, 20);
  Publish("c", 2, 5);   // published later, occurred earlier: goes first
  Publish("c", 3, 20);  // as old as the first: publish order
  auto got = Claim();
  ASSERT_EQ(Keys(got), Set{"c#2/2"});
  Write(got["c#2/2"], 200, DecisionKind::kSucceeded);
  got = Claim();
  ASSERT_EQ(Keys(got), Set{"c#1/1"});
  Write(got["c#1/1"], 200, DecisionKind::kSucceeded);
  EXPECT_EQ(Keys(Claim()), Set{"c#3/3"});
}

TEST_F(OrderedDeliveryTest, ARedeliveredOlderDeliveryGoesFirstAndTheResourceWaitsBehindIt) {
  for (int n = 1; n <= 3; ++n) Publish("d", n, n);
  auto got = Claim();
  ASSERT_EQ(Keys(got), Set{"d#1/1"});
  const ClaimedDelivery d1 = got["d#1/1"];
  Write(d1, 200, DecisionKind::kSucceeded);
  got = Claim();
  ASSERT_EQ(Keys(got), Set{"d#2/2"});
  const ClaimedDelivery d2 = got["d#2/2"];
  Write(d2, 503, DecisionKind::kRetry);
  // d#1 redelivered while d#2 retries: d#1 is due, and d#2 waits behind it
  // even when its own retry falls due.
  ASSERT_THAT(ops_->Redeliver(connection_a_, ordered_, d1.id), IsOk());
  Exec(absl::StrCat("UPDATE deliveries SET next_attempt_at = now() WHERE id = '", d2.id, "'"));
  got = Claim();
  ASSERT_EQ(Keys(got), Set{"d#1/1"});
  EXPECT_EQ(Keys(Claim()), Set{});
  Write(got["d#1/1"], 200, DecisionKind::kSucceeded);
  got = Claim();
  ASSERT_EQ(Keys(got), Set{"d#2/2"});
  // A redeliver of d#1 while d#2 is in flight waits for d#2's result.
  ASSERT_THAT(ops_->Redeliver(connection_a_, ordered_, d1.id), IsOk());
  EXPECT_EQ(Keys(Claim()), Set{}) << "one delivery of a resource in flight at a time";
  Write(got["d#2/2"], 200, DecisionKind::kSucceeded);
  EXPECT_EQ(Keys(Claim()), Set{"d#1/1"});
}

TEST_F(OrderedDeliveryTest, AClaimTakesItsResourceSoASecondDeliveryOfItIsNotClaimedMeanwhile) {
  for (int n = 1; n <= 2; ++n) Publish("f", n, n);
  auto got = Claim();
  ASSERT_EQ(Keys(got), Set{"f#1/1"});
  EXPECT_EQ(Count("SELECT count(*) FROM ordered_resources WHERE in_flight_until > now()"), 1);
  // What a claim whose snapshot missed f#1's lease would see: f#2 due and
  // f#1 apparently done. The resource is taken: f#2 is not claimed.
  Exec(absl::StrCat("UPDATE deliveries SET next_attempt_at = now() WHERE sequence = 2 AND webhook_id = '",
                    ordered_, "'"));
  Exec(absl::StrCat("UPDATE deliveries SET state = 'succeeded', completed_at = now(), attempt_count = 1,"
                    " last_http_status = 200 WHERE id = '", got["f#1/1"].id, "'"));
  EXPECT_EQ(Keys(Claim()), Set{});
  // Its result frees the resource: f#2 goes.
  Write(got["f#1/1"], 200, DecisionKind::kSucceeded);
  EXPECT_EQ(Count("SELECT count(*) FROM ordered_resources WHERE in_flight_until IS NOT NULL"), 0);
  EXPECT_EQ(Keys(Claim()), Set{"f#2/2"});
}

// Replica A's lease on g#1 runs out and B claims g#1 again; A's success
// then arrives late (it finishes g#1). B's send of g#1 still runs: g#2 must
// wait for B's result, not go beside it.
TEST_F(OrderedDeliveryTest, ALateSuccessFromAnExpiredClaimDoesNotFreeTheResourceOfTheClaimSendingNow) {
  for (int n = 1; n <= 2; ++n) Publish("g", n, n);
  auto by_a = Claim();
  ASSERT_EQ(Keys(by_a), Set{"g#1/1"});
  Exec(absl::StrCat("UPDATE deliveries SET lease_expires_at = now() - interval '1 second'"
                    " WHERE lease_expires_at IS NOT NULL AND webhook_id = '", ordered_, "'"));
  Exec("UPDATE ordered_resources SET in_flight_until = now() - interval '1 second'"
       " WHERE in_flight_until IS NOT NULL");
  auto by_b = Claim();
  ASSERT_EQ(Keys(by_b), Set{"g#1/1"});
  Write(by_a["g#1/1"], 200, DecisionKind::kSucceeded);  // late: not the claim that holds g#1
  EXPECT_EQ(Text(absl::StrCat("SELECT state FROM deliveries WHERE id = '", by_a["g#1/1"].id, "'")), "succeeded");
  EXPECT_EQ(Keys(Claim()), Set{}) << "B's send of g#1 is in flight: g#2 waits";
  Write(by_b["g#1/1"], 200, DecisionKind::kSucceeded);
  EXPECT_EQ(Keys(Claim()), Set{"g#2/2"});
}

// A webhook's pending deliveries are cancelled (it was disabled) while h#1
// is being sent; re-enabled, it gets h#2 before h#1's send ended: h#2 waits.
TEST_F(OrderedDeliveryTest, ACancelledDeliveryStillBeingSentHoldsItsResourceUntilItsResult) {
  Publish("h", 1, 1);
  auto got = Claim();
  ASSERT_EQ(Keys(got), Set{"h#1/1"});
  Exec(absl::StrCat("UPDATE deliveries SET state = 'cancelled', completed_at = now()"
                    " WHERE state = 'pending' AND webhook_id = '", ordered_, "'"));  // as kCancelPending
  Publish("h", 2, 2);
  EXPECT_EQ(Keys(Claim()), Set{}) << "h#1 is still in flight";
  Write(got["h#1/1"], 200, DecisionKind::kSucceeded);
  EXPECT_EQ(Text(absl::StrCat("SELECT state FROM deliveries WHERE id = '", got["h#1/1"].id, "'")), "cancelled");
  EXPECT_EQ(Keys(Claim()), Set{"h#2/2"});
}

// Resources a, b and c are taken by sends still running (their deliveries
// were cancelled meanwhile), and their next deliveries are due: those heads
// wait for the sends' results. A claim of seven (as many as the due rows
// that are not held) must not spend its places on them: x#1 and y#1, due
// after them, are claimed beside the unordered webhook's five.
TEST_F(OrderedDeliveryTest, HeadsHeldByTheirResourcesSendDoNotFillAClaimBatch) {
  for (const char* r : {"a", "b", "c"}) Publish(r, 1, 1);
  auto sending = Claim();
  ASSERT_EQ(Keys(sending), (Set{"a#1/1", "b#1/1", "c#1/1"}));
  Exec(absl::StrCat("UPDATE deliveries SET state = 'cancelled', completed_at = now()"
                    " WHERE state = 'pending' AND webhook_id = '", ordered_, "'"));  // as kCancelPending
  for (const char* r : {"a", "b", "c"}) Publish(r, 2, 2);  // due now, held by their resource's send
  for (const char* r : {"x", "y"}) Publish(r, 1, 1);       // due a moment later
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries WHERE state = 'pending' AND next_attempt_at <= now()"
                  " AND lease_expires_at IS NULL"),
            10);
  int unordered = 0;
  EXPECT_EQ(Keys(Claim(&unordered, 7)), (Set{"x#1/1", "y#1/1"}));
  EXPECT_EQ(unordered, 5);
  // The sends end: the held heads go.
  for (const auto& [key, d] : sending) Write(d, 200, DecisionKind::kSucceeded);
  EXPECT_EQ(Keys(Claim()), (Set{"a#2/2", "b#2/2", "c#2/2"}));
}

TEST_F(OrderedDeliveryTest, AQuarantinedHeadReleasesTheNext) {
  for (int n = 1; n <= 2; ++n) Publish("e", n, n);
  // Three claims that never report (the process dies each time).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Keys(Claim()), Set{"e#1/1"}) << i;
    // Its lease, and with it the resource's, ran out.
    Exec(absl::StrCat("UPDATE deliveries SET lease_expires_at = now() - interval '1 second'"
                      " WHERE lease_expires_at IS NOT NULL AND webhook_id = '", ordered_, "'"));
    Exec("UPDATE ordered_resources SET in_flight_until = now() - interval '1 second'"
         " WHERE in_flight_until IS NOT NULL");
  }
  // The fourth claim quarantines e#1 (failed), which makes e#2 due.
  EXPECT_EQ(Keys(Claim()), Set{});
  EXPECT_EQ(Text(absl::StrCat("SELECT state FROM deliveries WHERE sequence = 1 AND webhook_id = '", ordered_, "'")),
            "failed");
  EXPECT_EQ(Keys(Claim()), Set{"e#2/2"});
}

// The promotion finds each resource's next delivery with its partition key
// and reads only the weeks between the earliest and the latest of them: a
// result batch whose resources' next deliveries lie in two weeks promotes
// them all (resource f's deliveries moved a week back, g's left in this one).
TEST_F(OrderedDeliveryTest, NextDeliveriesInDifferentWeeksArePromotedByOneResultBatch) {
  for (int n = 1; n <= 2; ++n) Publish("f", n, n);
  for (int n = 1; n <= 2; ++n) Publish("g", n, n);
  Exec(absl::StrCat("UPDATE deliveries SET created_at = created_at - interval '7 days' WHERE webhook_id = '",
                    ordered_, "' AND ordered_resource_id = (SELECT id FROM ordered_resources WHERE resource_key = 'f')"));
  ASSERT_EQ(Count(absl::StrCat("SELECT count(DISTINCT date_trunc('week', created_at)) FROM deliveries"
                               " WHERE webhook_id = '", ordered_, "'")),
            2);
  auto heads = Claim();
  ASSERT_EQ(Keys(heads), (Set{"f#1/1", "g#1/1"}));
  ASSERT_THAT(dispatch_->WriteResults({testing::AttemptResult(heads["f#1/1"], 200, DecisionKind::kSucceeded),
                                       testing::AttemptResult(heads["g#1/1"], 200, DecisionKind::kSucceeded)}),
              IsOk());
  EXPECT_EQ(Keys(Claim()), (Set{"f#2/2", "g#2/2"}));
}

}  // namespace
}  // namespace octo::testing
