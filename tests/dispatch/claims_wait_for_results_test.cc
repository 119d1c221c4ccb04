// The claimer waits while a result writer holds results through a lost
// database connection: those deliveries' leases may run out meanwhile, and
// a claim could send them again. The recorder's writer thread runs against
// the in-memory store; waits are on events (a signal, a claim), never on
// time.
#include <condition_variable>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "services/delivery/claim_loop.h"
#include "services/delivery/result_recorder.h"
#include "tests/fakes/claims.h"
#include "tests/fakes/fake_dispatch_store.h"
#include "tests/fakes/simulated_clock.h"

namespace octo::delivery {
namespace {

using octo::testing::Claims;
using octo::testing::FakeDispatchStore;
using octo::testing::SimulatedClock;
using octo::testing::TestDelivery;

// What the recorder signalled, in order, and waits for it.
class HeldSignals {
 public:
  void Add(bool held) {
    std::lock_guard lock(mu_);
    signals_.push_back(held);
    cv_.notify_all();
  }
  bool WaitFor(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return signals_.size() >= n; });
  }
  std::vector<bool> signals() {
    std::lock_guard lock(mu_);
    return signals_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> signals_;
};

DeliveryResult Succeeded(const ClaimedDelivery& d) {
  DeliveryResult r;
  r.delivery_id = d.id;
  r.webhook_id = d.webhook_id;
  r.lease_us = d.lease_us;
  r.attempt_number = d.attempt_count + 1;
  r.action = DeliveryResult::Action::kAttempt;
  r.attempt.http_status = 200;
  r.decision.kind = DecisionKind::kSucceeded;
  return r;
}

class ClaimsWaitForResultsTest : public ::testing::Test {
 protected:
  ClaimsWaitForResultsTest()
      : scheduler_({.claim_batch = 10, .max_in_flight = 100, .poll_interval = absl::Hours(1)}, clock_),
        recorder_({.batch = 500,
                   .on_results_held =
                       [this](bool held) {
                         scheduler_.ResultsHeld(held);
                         signals_.Add(held);
                       }},
                  [this](std::size_t count, const std::vector<DeliveryResult>&) {
                    scheduler_.Finished(static_cast<int>(count), {});
                  }) {}

  // One delivery claimed (its slot held until its result is written).
  void ClaimOne() {
    ASSERT_EQ(scheduler_.TakeClaim(), 10);
    scheduler_.Claimed(10, 1);
  }

  SimulatedClock clock_;
  HeldSignals signals_;
  ClaimScheduler scheduler_;
  FakeDispatchStore writes_;
  ResultRecorder recorder_;
};

TEST_F(ClaimsWaitForResultsTest, NoClaimWhileResultsAreHeldThroughAnOutageThenClaimsOnceWritten) {
  ClaimOne();
  writes_.FailWritesWith(absl::UnavailableError("connection lost"));
  recorder_.StartWriters({&writes_});
  recorder_.Add({Succeeded(TestDelivery(1, "http://a.example/hook"))});
  ASSERT_TRUE(signals_.WaitFor(1));
  EXPECT_EQ(signals_.signals(), std::vector<bool>{true});

  // Woken (NOTIFY) with free slots: still no claim.
  scheduler_.Wake();
  EXPECT_EQ(scheduler_.TakeClaim(), 0);

  // The claim loop, started during the outage, claims only after the held
  // result was written.
  FakeDispatchStore claims;
  claims.AddClaim(Claims({TestDelivery(2, "http://a.example/hook")}));
  std::mutex mu;
  std::condition_variable cv;
  bool dispatched = false;
  std::size_t written_at_claim = 0;
  ClaimLoop loop(scheduler_, claims, absl::Seconds(30),
                 [&](const ClaimBatch&) {
                   std::lock_guard lock(mu);
                   written_at_claim = writes_.written().size();
                   dispatched = true;
                   cv.notify_all();
                 },
                 nullptr);
  loop.Start();
  writes_.FailWritesWith(absl::OkStatus());  // the database is back
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return dispatched; }));
  }
  EXPECT_EQ(written_at_claim, 1u);
  EXPECT_EQ(signals_.signals(), (std::vector<bool>{true, false}));
  scheduler_.Stop();
  loop.Join();
  recorder_.Stop(absl::Now());
}

// A refusal that is not a lost connection (a row lock timed out, a
// deadlock: ABORTED) holds back only its results; claims go on.
TEST_F(ClaimsWaitForResultsTest, ARowLockDoesNotHoldClaims) {
  ClaimOne();
  writes_.FailNextWrites({absl::AbortedError("lock timeout")});
  recorder_.StartWriters({&writes_});
  recorder_.Add({Succeeded(TestDelivery(1, "http://a.example/hook"))});
  ASSERT_TRUE(writes_.WaitForWritten(1));
  recorder_.Stop(absl::Now() + absl::Seconds(10));
  EXPECT_EQ(writes_.write_sizes(), (std::vector<int>{1, 1}));  // refused once, then written
  EXPECT_TRUE(signals_.signals().empty());
  scheduler_.Wake();
  EXPECT_EQ(scheduler_.TakeClaim(), 10);
}

}  // namespace
}  // namespace octo::delivery
