// ClaimScheduler on a simulated clock: when to claim and how many, without
// a database or sleeps.
#include "services/delivery/claim_loop.h"

#include <gtest/gtest.h>

#include "tests/fakes/simulated_clock.h"

namespace octo::delivery {
namespace {

using octo::testing::SimulatedClock;

class ClaimSchedulerTest : public ::testing::Test {
 protected:
  SimulatedClock clock_;
};

TEST_F(ClaimSchedulerTest, ClaimsAtOnceThenOnlyWhenWokenOrAtThePoll) {
  ClaimScheduler s({.claim_batch = 200, .max_in_flight = 1000, .poll_interval = absl::Seconds(1)}, clock_);
  EXPECT_EQ(s.TakeClaim(), 200);
  s.Claimed(200, 10);  // 10 found: nothing more due now
  EXPECT_EQ(s.InFlight(), 10);
  EXPECT_EQ(s.TakeClaim(), 0);
  EXPECT_EQ(s.NextCheck(), clock_.Now() + absl::Seconds(1));
  clock_.Advance(absl::Milliseconds(999));
  EXPECT_EQ(s.TakeClaim(), 0);
  s.Wake();  // NOTIFY
  EXPECT_EQ(s.TakeClaim(), 200);
  s.Claimed(200, 0);
  clock_.Advance(absl::Seconds(1));  // the poll, one interval after the last claim
  EXPECT_EQ(s.TakeClaim(), 200);
}

TEST_F(ClaimSchedulerTest, AFullBatchClaimsAgainAtOnce) {
  ClaimScheduler s({.claim_batch = 50, .max_in_flight = 1000, .poll_interval = absl::Seconds(1)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 50);
  s.Claimed(50, 50);
  EXPECT_EQ(s.TakeClaim(), 50);
}

// A delivery holds a slot from its claim until its result is written: never
// more claimed than max_in_flight, and no claim for less than a quarter batch.
TEST_F(ClaimSchedulerTest, NeverMoreInFlightThanTheCap) {
  ClaimScheduler s({.claim_batch = 40, .max_in_flight = 100, .poll_interval = absl::Seconds(1)}, clock_);
  int claimed = 0;
  for (int i = 0; i < 3; ++i) {
    const int n = s.TakeClaim();
    claimed += n;
    s.Claimed(n, n);
  }
  EXPECT_EQ(claimed, 100);  // 40 + 40 + 20
  EXPECT_EQ(s.TakeClaim(), 0);
  s.Finished(9, {});
  EXPECT_EQ(s.TakeClaim(), 0);  // 9 free: less than a quarter batch (10)
  s.Finished(1, {});
  EXPECT_EQ(s.TakeClaim(), 10);
}

// Claims follow what admission can dispose of: a batch some of which
// admission released unsent (their destination could not start them within
// the lease) is not followed at once by another, though it was full and
// slots are free; the next waits for the poll and takes the slots freed
// since the last claim, sent or released (at least a sixteenth of a batch).
// A batch admission took whole ends that.
TEST_F(ClaimSchedulerTest, WhileAdmissionReleasesBacklogClaimsFollowWhatFreedASlot) {
  ClaimScheduler s({.claim_batch = 200, .max_in_flight = 1000, .poll_interval = absl::Seconds(1)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 200);
  s.Claimed(200, 200);  // full: more is due
  s.Admitted(200, 120);
  EXPECT_EQ(s.TakeClaim(), 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(s.TakeClaim(), 12);  // nothing freed yet: a sixteenth of a batch
  s.Claimed(12, 12);
  s.Admitted(12, 6);
  s.Finished(132, {});  // the released ones, written
  EXPECT_EQ(s.TakeClaim(), 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(s.TakeClaim(), 132);
  s.Claimed(132, 132);
  s.Finished(30, {});
  s.Admitted(132, 0);  // all taken: claims as before
  EXPECT_EQ(s.TakeClaim(), 200);
}

// While backlogged a NOTIFY waits for the poll (it is not lost: the claim at
// the poll serves it).
TEST_F(ClaimSchedulerTest, WhileBackloggedAWakeWaitsForThePoll) {
  ClaimScheduler s({.claim_batch = 200, .max_in_flight = 1000, .poll_interval = absl::Seconds(1)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 200);
  s.Claimed(200, 200);
  s.Admitted(200, 50);
  s.Wake();
  EXPECT_EQ(s.TakeClaim(), 0);
  EXPECT_EQ(s.NextCheck(), clock_.Now() + absl::Seconds(1));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(s.TakeClaim(), 12);
}

// Slots freed while the claim's SQL ran (between TakeClaim and Admitted)
// count toward the next claim.
TEST_F(ClaimSchedulerTest, SlotsFreedDuringTheClaimCountForTheNext) {
  ClaimScheduler s({.claim_batch = 200, .max_in_flight = 1000, .poll_interval = absl::Seconds(1)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 200);
  s.Claimed(200, 200);
  s.Admitted(200, 150);
  clock_.Advance(absl::Seconds(1));
  ASSERT_EQ(s.TakeClaim(), 12);
  s.Finished(40, {});  // written while the claim ran
  s.Claimed(12, 12);
  s.Admitted(12, 6);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(s.TakeClaim(), 40);
}

// A batch admission refused whole only moved a due backlog into its later
// slots: the next claim comes at once, a whole batch, so that what is due
// behind the backlog (other destinations' deliveries) is reached at the
// speed of claims, not of polls (backlog_neighbour_test.cc).
TEST_F(ClaimSchedulerTest, ABatchRefusedWholeIsFollowedAtOnce) {
  ClaimScheduler s({.claim_batch = 200, .max_in_flight = 1000, .poll_interval = absl::Seconds(1)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 200);
  s.Claimed(200, 200);
  s.Admitted(200, 120);
  EXPECT_EQ(s.TakeClaim(), 0);  // partly taken: the poll
  clock_.Advance(absl::Seconds(1));
  ASSERT_EQ(s.TakeClaim(), 12);
  s.Claimed(12, 12);
  s.Admitted(12, 12);  // all refused
  EXPECT_EQ(s.NextCheck(), absl::InfiniteFuture());
  EXPECT_EQ(s.TakeClaim(), 200);  // at once, a whole batch (its room freed or not)
  s.Claimed(200, 200);
  s.Admitted(200, 100);  // partly taken again: back to the poll
  EXPECT_EQ(s.TakeClaim(), 0);
}

// Retry hints within one kRetryHintStep make one claim, not one each; the
// claim never comes before a retry is due.
TEST_F(ClaimSchedulerTest, RetryHintsCoalescePerStep) {
  ClaimScheduler s({.claim_batch = 10, .max_in_flight = 100, .poll_interval = absl::Seconds(60)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 10);
  s.Claimed(10, 5);
  std::vector<absl::Duration> due;
  for (int ms = 1001; ms <= 1009; ++ms) due.push_back(absl::Milliseconds(ms));
  s.Finished(5, due);
  const absl::Time first = s.NextCheck();
  EXPECT_GE(first, clock_.Now() + absl::Milliseconds(1009));
  EXPECT_LE(first, clock_.Now() + absl::Milliseconds(1009) + ClaimScheduler::kRetryHintStep);
  clock_.Set(first);
  EXPECT_EQ(s.TakeClaim(), 10);
  s.Claimed(10, 0);
  EXPECT_EQ(s.NextCheck(), first + absl::Seconds(60));  // one claim used them all: only the poll is left
}

// A claim that finds nothing due ends the backlog: a wake claims at once.
TEST_F(ClaimSchedulerTest, AnEmptyClaimEndsTheBacklog) {
  ClaimScheduler s({.claim_batch = 200, .max_in_flight = 1000, .poll_interval = absl::Seconds(1)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 200);
  s.Claimed(200, 200);
  s.Admitted(200, 10);
  clock_.Advance(absl::Seconds(1));
  ASSERT_EQ(s.TakeClaim(), 12);
  s.Claimed(12, 0);
  s.Wake();
  EXPECT_EQ(s.TakeClaim(), 200);
}

TEST_F(ClaimSchedulerTest, ARetryThisProcessScheduledIsClaimedWhenDueNotAtThePoll) {
  ClaimScheduler s({.claim_batch = 10, .max_in_flight = 100, .poll_interval = absl::Seconds(60)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 10);
  s.Claimed(10, 1);
  s.Finished(1, {absl::Milliseconds(250)});  // written: retry in 250 ms
  EXPECT_EQ(s.NextCheck(), clock_.Now() + absl::Milliseconds(250));
  clock_.Advance(absl::Milliseconds(249));
  EXPECT_EQ(s.TakeClaim(), 0);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(s.TakeClaim(), 10);
  s.Claimed(10, 0);
  EXPECT_EQ(s.NextCheck(), clock_.Now() + absl::Seconds(60));  // the hint was used up
}

TEST_F(ClaimSchedulerTest, AReleaseWithoutDelayWakesTheClaimer) {
  ClaimScheduler s({.claim_batch = 10, .max_in_flight = 100, .poll_interval = absl::Seconds(60)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 10);
  s.Claimed(10, 1);
  s.Finished(1, {absl::ZeroDuration()});
  EXPECT_EQ(s.TakeClaim(), 10);
}

TEST_F(ClaimSchedulerTest, AFailedClaimGivesItsSlotsBackAndTriesAgain) {
  ClaimScheduler s({.claim_batch = 10, .max_in_flight = 100, .poll_interval = absl::Seconds(60)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 10);
  s.Claimed(10, -1);
  EXPECT_EQ(s.InFlight(), 0);
  EXPECT_EQ(s.TakeClaim(), 10);
}

TEST_F(ClaimSchedulerTest, StopEndsAwaitClaim) {
  ClaimScheduler s({.claim_batch = 10, .max_in_flight = 100, .poll_interval = absl::Seconds(60)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 10);
  s.Claimed(10, 0);
  s.Stop();
  EXPECT_EQ(s.AwaitClaim(), 0);
  EXPECT_FALSE(s.SleepUnlessStopped(absl::Hours(1)));
}

// Hand-off (handoff.h): slots for deliveries leased at their insert are
// taken at once from the free ones, never beyond max_in_flight, and the
// unused ones come back. While a claim is due but short of room, a quarter
// batch is left for it.
TEST_F(ClaimSchedulerTest, HandOffReservesOnlyFreeSlotsAndGivesBackTheUnusedOnes) {
  ClaimScheduler s({.claim_batch = 40, .max_in_flight = 100, .poll_interval = absl::Seconds(1)}, clock_);
  ASSERT_EQ(s.TakeClaim(), 40);
  s.Claimed(40, 30);  // 30 in flight
  EXPECT_EQ(s.Reserve(100), 40);  // at most a claim batch at once
  EXPECT_EQ(s.Reserve(100), 30);
  EXPECT_EQ(s.InFlight(), 100);
  EXPECT_EQ(s.Reserve(1), 0);  // never beyond the cap
  s.Unreserve(50);             // handed over 20 of 70
  EXPECT_EQ(s.InFlight(), 50);
  s.Finished(20, {});          // their results written
  EXPECT_EQ(s.InFlight(), 30);
  EXPECT_EQ(s.Reserve(5), 5);
  s.Stop();
  EXPECT_EQ(s.Reserve(5), 0);  // stopping: nothing
}

TEST_F(ClaimSchedulerTest, HandOffLeavesAQuarterBatchForAClaimWaitingForRoom) {
  ClaimScheduler s({.claim_batch = 100, .max_in_flight = 100, .poll_interval = absl::Seconds(1)}, clock_);
  ASSERT_EQ(s.Reserve(95), 95);
  s.Wake();                     // NOTIFY: deliveries are due
  EXPECT_EQ(s.TakeClaim(), 0);  // 5 free: less than a quarter batch (25)
  s.Finished(40, {});           // 45 free
  EXPECT_EQ(s.Reserve(100), 20);  // 25 left for the claim
  EXPECT_EQ(s.TakeClaim(), 25);
}

// While admission releases backlog, new deliveries go to the queue, where
// claims follow what admission disposes of: no hand-off while the last
// claimed batch had backlog, nor for a poll interval after a handed-off one.
TEST_F(ClaimSchedulerTest, HandOffPausesWhileAdmissionReleasesBacklog) {
  ClaimScheduler s({.claim_batch = 40, .max_in_flight = 100, .poll_interval = absl::Seconds(1)}, clock_);
  s.HandoffBacklogged();
  EXPECT_EQ(s.Reserve(10), 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(s.Reserve(10), 10);
  s.Unreserve(10);
  ASSERT_EQ(s.TakeClaim(), 40);
  s.Claimed(40, 40);
  s.Admitted(40, 10);
  EXPECT_EQ(s.Reserve(10), 0);
  clock_.Advance(absl::Seconds(1));
  const int n = s.TakeClaim();  // the poll
  ASSERT_GT(n, 0);
  s.Claimed(n, n);
  s.Admitted(n, 0);  // admission took the whole batch: the backlog ended
  EXPECT_EQ(s.Reserve(10), 10);
}

}  // namespace

// A delivery sent while a writer holds results through a lost connection
// could not have its result written before its lease ran out: no hand-off
// then, as no claim.
TEST_F(ClaimSchedulerTest, HandOffWaitsWhileResultsAreHeld) {
  ClaimScheduler s({.claim_batch = 40, .max_in_flight = 100, .poll_interval = absl::Seconds(1)}, clock_);
  s.ResultsHeld(true);
  EXPECT_EQ(s.Reserve(10), 0);
  s.ResultsHeld(false);
  EXPECT_EQ(s.Reserve(10), 10);
}

}  // namespace
