// Hand-off at enqueue against a real PostgreSQL (OCTO_TEST_PG): the
// enqueue inserts as many unordered deliveries as the dispatcher has slots
// for already leased to it, exactly as a claim leases a row, and hands them
// over after the commit with the lease token stored; the rest are claimed
// as before. A handed-off delivery whose process never reports is claimed
// again once its lease ran out, its lost attempt recorded `interrupted`.
// Leases are expired by SQL, not by waiting.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "octo/webhooks/v1/events.pb.h"
#include "services/common/pg_pool.h"
#include "services/delivery/event_validation.h"
#include "services/delivery/handoff.h"
#include "services/delivery/store.h"
#include "tests/faults/dispatch_store_faults_fixture.h"

namespace octo::delivery {
namespace {

// A dispatcher's hand-off with `free` slots: records what it is given.
class RecordingHandoff final : public DeliveryHandoff {
 public:
  explicit RecordingHandoff(int free) : free_(free) {}
  int Reserve(int wanted) override {
    absl::MutexLock lock(&mu_);
    const int n = std::max(0, std::min(wanted, free_));
    free_ -= n;
    reserved_ += n;
    return n;
  }
  void Unreserve(int count) override {
    absl::MutexLock lock(&mu_);
    free_ += count;
    reserved_ -= count;
  }
  void Dispatch(ClaimBatch batch) override {
    absl::MutexLock lock(&mu_);
    reserved_ -= static_cast<int>(batch.deliveries.size());
    batches_.push_back(std::move(batch));
  }
  absl::Duration lease() const override { return absl::Seconds(30); }
  absl::Time Now() const override { return absl::Now(); }

  std::vector<ClaimBatch> batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  int reserved() const {  // held by no enqueue any more: 0
    absl::MutexLock lock(&mu_);
    return reserved_;
  }

 private:
  mutable absl::Mutex mu_;
  int free_;
  int reserved_ = 0;
  std::vector<ClaimBatch> batches_;
};

class HandoffEnqueueTest : public DispatchStoreFaultsTest {
 protected:
  void SetUp() override {
    DispatchStoreFaultsTest::SetUp();
    if (HasFatalFailure()) return;
    Exec("DELETE FROM deliveries");  // the fixture's: only what the enqueue stores is claimed here
    auto pool = PgPool::Create(db_->conninfo(), 2);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    events_ = std::make_unique<PgEventStore>(pool_.get());
    supplier_ = Scalar("SELECT id::text FROM suppliers");
  }

  // One booking_update of the fixture's supplier, stored through the enqueue.
  std::vector<StoredEvent> Publish(const std::string& key) {
    webhooks::v1::PublishEventRequest e;
    e.set_idempotency_key(key);
    e.set_supplier_id(supplier_);
    e.set_event("booking_update");
    e.set_resource_json(R"({"uuid":"b-)" + key + R"(","status":"CONFIRMED"})");
    e.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
    absl::StatusOr<ValidEvent> valid = ValidateEvent(e);
    EXPECT_TRUE(valid.ok()) << valid.status();
    if (!valid.ok()) return {};
    EventToStore s;
    s.supplier_id = e.supplier_id();
    s.idempotency_key = e.idempotency_key();
    s.event = e.event();
    s.resource_json = e.resource_json();
    s.valid = &*valid;
    EnqueueResult stored = events_->Enqueue({s});
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? *stored : std::vector<StoredEvent>{};
  }

  std::string Micros(const std::string& column, const std::string& id) {
    return Scalar(absl::StrCat("SELECT (extract(epoch FROM ", column, ") * 1000000)::bigint FROM deliveries WHERE id = '",
                               id, "'"));
  }
  std::string Claim(const std::string& id) {
    return Scalar(absl::StrCat("SELECT COALESCE(claimed_attempt::text, '-') || ' ' || attempt_count || ' ' ||"
                               " unreported_claims FROM deliveries WHERE id = '", id, "'"));
  }

  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<PgEventStore> events_;
  std::string supplier_;
};

// Two webhooks, one free slot: one delivery is inserted leased and handed
// over (its token the stored lease, its webhook and event as a claim reads
// them), the other unleased; a claim finds only that one.
TEST_F(HandoffEnqueueTest, RowsAreInsertedLeasedWithinTheFreeSlotsAndHandedOverWithTheirToken) {
  const std::string second = Scalar(
      "INSERT INTO webhooks (connection_id, event, url, secret) SELECT id, 'booking_update', "
      "'http://127.0.0.1:9/second', 'whsec_' || repeat('B', 43) || '=' FROM connections RETURNING id::text");
  RecordingHandoff handoff(1);
  events_->SetHandoff(&handoff);
  const std::vector<StoredEvent> stored = Publish("two");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].delivery_count, 2);
  const std::vector<ClaimBatch> batches = handoff.batches();
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0].deliveries.size(), 1u);
  EXPECT_TRUE(batches[0].claimed_at <= absl::Now());
  const ClaimedDelivery& d = batches[0].deliveries[0];
  EXPECT_EQ(std::to_string(d.lease_us), Micros("lease_expires_at", d.id));
  EXPECT_EQ(std::to_string(d.created_us), Micros("created_at", d.id));
  EXPECT_EQ(Claim(d.id), "1 0 0");  // attempt 1 reserved, as by a claim
  EXPECT_EQ(d.attempt_count, 0);
  EXPECT_EQ(d.event_id, stored[0].event_id);
  EXPECT_EQ(d.url, Scalar(absl::StrCat("SELECT url FROM webhooks WHERE id = '", d.webhook_id, "'")));
  EXPECT_EQ(d.secret, Scalar(absl::StrCat("SELECT secret FROM webhooks WHERE id = '", d.webhook_id, "'")));
  EXPECT_EQ(d.supplier_id, supplier_);
  EXPECT_TRUE(d.webhook_enabled);
  EXPECT_FALSE(d.suspect);
  ASSERT_TRUE(batches[0].events.contains(d.event_id));
  const ClaimedEvent& e = batches[0].events.at(d.event_id);
  EXPECT_EQ(e.resource_json, Scalar(absl::StrCat("SELECT resource::text FROM events WHERE id = '", d.event_id, "'")));
  EXPECT_EQ(e.diff_json, Scalar(absl::StrCat("SELECT COALESCE(diff::text, '[]') FROM events WHERE id = '", d.event_id, "'")));
  EXPECT_EQ(handoff.reserved(), 0);  // every slot handed over or given back

  absl::StatusOr<ClaimBatch> claimed = store_->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->deliveries.size(), 1u);
  EXPECT_NE(claimed->deliveries[0].id, d.id);
  EXPECT_EQ(claimed->deliveries[0].webhook_id, d.webhook_id == webhook_ ? second : webhook_);

  // The handed-off delivery's result is written under its token.
  ASSERT_TRUE(store_->WriteResults({Result(d, 200, DecisionKind::kSucceeded)}).ok());
  EXPECT_EQ(Row(d.id), "succeeded 1 200 - true");
  EXPECT_EQ(Claim(d.id), "- 1 0");
}

// No free slot, or a duplicate (no delivery): nothing leased, nothing held.
TEST_F(HandoffEnqueueTest, WithoutFreeSlotsEveryDeliveryIsClaimedAsBefore) {
  RecordingHandoff handoff(0);
  events_->SetHandoff(&handoff);
  ASSERT_EQ(Publish("none").size(), 1u);
  ASSERT_EQ(Publish("none").size(), 1u);  // a duplicate
  EXPECT_TRUE(handoff.batches().empty());
  EXPECT_EQ(Scalar("SELECT count(*) || ' ' || count(lease_expires_at) FROM deliveries"), "1 0");
  absl::StatusOr<ClaimBatch> claimed = store_->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_EQ(claimed->deliveries.size(), 1u);
}

// Its process died after the commit (kill -9 before the result was
// written): the lease runs out, the next claim takes it, records attempt 1
// as `interrupted` and counts it toward quarantine, as after any claim.
TEST_F(HandoffEnqueueTest, AHandedOffDeliveryNeverReportedIsClaimedAfterItsLeaseAsInterrupted) {
  RecordingHandoff handoff(10);
  events_->SetHandoff(&handoff);
  ASSERT_EQ(Publish("lost").size(), 1u);
  ASSERT_EQ(handoff.batches().size(), 1u);
  const ClaimedDelivery lost = handoff.batches()[0].deliveries.at(0);
  absl::StatusOr<ClaimBatch> early = store_->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_TRUE(early->deliveries.empty()) << "a live hand-off's lease was claimed";

  ExpireLeases();
  const ClaimedDelivery again = ClaimOne(lost.id);
  EXPECT_EQ(again.attempt_count, 1);  // attempt 1 is lost; this claim reserved 2
  EXPECT_FALSE(again.suspect);
  EXPECT_EQ(Attempts(lost.id), "1:interrupted");
  EXPECT_EQ(Claim(lost.id), "2 1 1");
  // The hand-off's late result still counts (another claim holds the row):
  // its 2xx finishes the delivery, as any late result does.
  ASSERT_TRUE(store_->WriteResults({Result(lost, 200, DecisionKind::kSucceeded)}).ok());
  EXPECT_EQ(Attempts(lost.id), "1:200");
}

}  // namespace
}  // namespace octo::delivery
