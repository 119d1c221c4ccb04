// The dispatcher assembled on fakes (Dispatcher::Assemble): its threads run
// the whole walk claim -> admit -> render -> sign -> send -> record against
// the in-memory store and transport. Waits are on events (a result written,
// a request submitted), never on time.
#include "services/delivery/dispatcher.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/clock.h"

#include "tests/fakes/claims.h"
#include "tests/fakes/fake_dispatch_store.h"
#include "tests/fakes/fake_transport.h"
#include "tests/fakes/simulated_clock.h"

namespace octo::delivery {
namespace {

using octo::testing::Answered;
using octo::testing::Claims;
using octo::testing::FakeDispatchStore;
using octo::testing::FakeTransport;
using octo::testing::SimulatedClock;
using octo::testing::TestDelivery;

// A notification source the test fires.
class ManualNotifications final : public NotificationSource {
 public:
  explicit ManualNotifications(std::function<void()>* fire) : fire_(fire) {}
  void Start(std::function<void()> on_notify) override { *fire_ = std::move(on_notify); }

 private:
  std::function<void()>* fire_;
};

class AssembledDispatcherTest : public ::testing::Test {
 protected:
  void Start(DispatcherOptions o = {}) {
    auto claim_store = std::make_unique<FakeDispatchStore>();
    auto write_store = std::make_unique<FakeDispatchStore>();
    auto transport = std::make_unique<FakeTransport>();
    claims_ = claim_store.get();
    writes_ = write_store.get();
    transport_ = transport.get();
    for (auto& batch : pending_claims_) claims_->AddClaim(std::move(batch));
    if (responder_) transport_->SetResponder(responder_);
    DispatcherParts parts;
    parts.claim_store = std::move(claim_store);
    for (auto& more : more_claim_stores_) parts.more_claim_stores.push_back(std::move(more));
    parts.write_stores.push_back(std::move(write_store));
    parts.transport = std::move(transport);
    parts.notifications = std::make_unique<ManualNotifications>(&notify_);
    parts.clock = &clock_;
    o.poll_interval = std::chrono::hours(1);  // only the first claim and notifications claim
    absl::StatusOr<std::unique_ptr<Dispatcher>> d = Dispatcher::Assemble(o, std::move(parts));
    ASSERT_TRUE(d.ok()) << d.status();
    dispatcher_ = std::move(*d);
  }

  SimulatedClock clock_;
  std::vector<std::unique_ptr<DispatchStore>> more_claim_stores_;  // further claimers
  std::vector<ClaimBatch> pending_claims_;
  FakeTransport::Responder responder_;
  std::function<void()> notify_;
  FakeDispatchStore* claims_ = nullptr;
  FakeDispatchStore* writes_ = nullptr;
  FakeTransport* transport_ = nullptr;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST(Assemble, RefusesMissingPartsAndBadOptions) {
  DispatcherOptions o;
  EXPECT_EQ(Dispatcher::Assemble(o, DispatcherParts{}).status().code(), absl::StatusCode::kInvalidArgument);
  o.claim_batch = 0;
  DispatcherParts parts;
  parts.claim_store = std::make_unique<FakeDispatchStore>();
  parts.write_stores.push_back(std::make_unique<FakeDispatchStore>());
  parts.transport = std::make_unique<FakeTransport>();
  EXPECT_EQ(Dispatcher::Assemble(o, std::move(parts)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AssembledDispatcherTest, ClaimsSendsAndRecordsThenClaimsAgainOnANotification) {
  responder_ = [](const OutgoingRequest&) { return Answered(200); };
  pending_claims_.push_back(Claims({TestDelivery(1, "http://a.example/"), TestDelivery(2, "http://b.example/")}));
  DispatcherOptions o;
  o.request_timeout = std::chrono::milliseconds(4000);
  o.lease_margin = std::chrono::milliseconds(1000);
  Start(o);
  ASSERT_TRUE(writes_->WaitForWritten(2));
  EXPECT_EQ(claims_->last_lease(), absl::Seconds(5));  // request timeout + margin
  for (const DeliveryResult& r : writes_->written()) EXPECT_EQ(r.decision.kind, DecisionKind::kSucceeded);
  claims_->AddClaim(Claims({TestDelivery(3, "http://a.example/")}));
  notify_();
  ASSERT_TRUE(writes_->WaitForWritten(3));
  dispatcher_->Stop();
  dispatcher_->Stop();  // idempotent
}

// Stop: running transfers end (the fake aborts them as the real transport
// does at its deadline) and are recorded; unstarted claims are released.
TEST_F(AssembledDispatcherTest, StopRecordsRunningTransfersAndReleasesUnstartedOnes) {
  std::vector<ClaimedDelivery> batch;
  for (int i = 1; i <= 5; ++i) batch.push_back(TestDelivery(i, "http://a.example/"));
  pending_claims_.push_back(Claims(batch));
  DispatcherOptions o;
  o.max_per_host = 1;
  Start(o);
  ASSERT_TRUE(transport_->WaitForSubmitted(1));
  dispatcher_->Stop();
  const std::vector<DeliveryResult> written = writes_->written();
  ASSERT_EQ(written.size(), 5u);  // all written before Stop returned
  int attempts = 0, released = 0;
  for (const DeliveryResult& r : written) {
    if (r.action == DeliveryResult::Action::kAttempt) ++attempts;
    if (r.action == DeliveryResult::Action::kRelease) ++released;
  }
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(released, 4);
  EXPECT_EQ(transport_->submitted().size(), 1u);
}

// Waits until `n` slots are free and keeps them reserved (the dispatcher's
// first claim holds slots while it runs).
bool ReserveAll(DeliveryHandoff* handoff, int n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    const int got = handoff->Reserve(n);
    if (got == n) return true;
    handoff->Unreserve(got);
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

// Hand-off (handoff.h): a batch the enqueue leased at insert goes through
// the walk without a claim, within the free slots; the unused reservations
// and, once written, the sent ones' slots come back.
TEST_F(AssembledDispatcherTest, AHandedOffBatchIsSentWithoutAClaimWithinTheFreeSlots) {
  responder_ = [](const OutgoingRequest&) { return Answered(200); };
  DispatcherOptions o;
  o.max_in_flight = 4;
  o.claim_batch = 4;
  o.request_timeout = std::chrono::milliseconds(4000);
  o.lease_margin = std::chrono::milliseconds(1000);
  Start(o);
  DeliveryHandoff* handoff = dispatcher_->handoff();
  EXPECT_EQ(handoff->lease(), absl::Seconds(5));  // a claim's lease
  EXPECT_EQ(handoff->Now(), clock_.Now());
  ASSERT_TRUE(ReserveAll(handoff, 4));
  EXPECT_EQ(handoff->Reserve(1), 0);  // never beyond max_in_flight
  handoff->Unreserve(2);              // the enqueue leased 2 of its 4
  handoff->Dispatch(Claims({TestDelivery(1, "http://a.example/"), TestDelivery(2, "http://b.example/")}));
  ASSERT_TRUE(writes_->WaitForWritten(2));
  for (const DeliveryResult& r : writes_->written()) {
    EXPECT_EQ(r.action, DeliveryResult::Action::kAttempt);
    EXPECT_EQ(r.decision.kind, DecisionKind::kSucceeded);
  }
  EXPECT_EQ(transport_->submitted().size(), 2u);
  EXPECT_LE(claims_->claim_limits().size(), 1u);  // the start-up claim only
  ASSERT_TRUE(ReserveAll(handoff, 4));            // every slot came back
  handoff->Unreserve(4);
  dispatcher_->Stop();
  EXPECT_EQ(handoff->Reserve(1), 0);  // stopped: nothing more is handed off
}

}  // namespace
}  // namespace octo::delivery

namespace octo::delivery {
namespace {

// Two claimers, each with its own store: both claim, everything claimed is
// sent and recorded, and only the first may claim a suspect delivery (the
// other's batch could hold one beside the first's, not yet dispatched).
TEST_F(AssembledDispatcherTest, TwoClaimersBothClaimAndOnlyTheFirstTakesSuspects) {
  responder_ = [](const OutgoingRequest&) { return Answered(200); };
  pending_claims_.push_back(Claims({TestDelivery(1, "http://a.example/"), TestDelivery(2, "http://a.example/")}));
  auto second = std::make_unique<FakeDispatchStore>();
  FakeDispatchStore* second_store = second.get();
  second_store->AddClaim(Claims({TestDelivery(3, "http://b.example/"), TestDelivery(4, "http://b.example/")}));
  more_claim_stores_.push_back(std::move(second));
  DispatcherOptions o;
  o.claim_batch = 2;  // a full batch: more may be due, another claim follows
  Start(o);
  // A claim that finds less than it asked for waits for a notification;
  // which claimer takes it is up to the threads.
  for (int i = 0; i < 2000 && !writes_->WaitForWritten(4, absl::Milliseconds(10)); ++i) notify_();
  ASSERT_TRUE(writes_->WaitForWritten(4));
  dispatcher_->Stop();
  for (DispatchStore::Suspects s : claims_->claim_suspects()) EXPECT_EQ(s, DispatchStore::Suspects::kOneAlone);
  ASSERT_FALSE(second_store->claim_suspects().empty());
  for (DispatchStore::Suspects s : second_store->claim_suspects()) EXPECT_EQ(s, DispatchStore::Suspects::kNone);
}

}  // namespace
}  // namespace octo::delivery
