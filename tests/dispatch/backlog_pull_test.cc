// Pulling a parked backlog forward (DestinationAdmission::TakePulls,
// ClaimLoop, DispatchStore::PullForward): a destination that parked its
// backlog into slots while it was slow, and answers fast again, gets the
// parked deliveries back at once rather than at the old slots' pace; a
// delivery waiting for its retry keeps its time; a destination still slow
// or hanging is not pulled. On the dispatch simulation
// (dispatch_simulation.h) and on DestinationAdmission alone.
#include <gtest/gtest.h>

#include <iostream>

#include "absl/strings/str_cat.h"

#include "tests/dispatch/admission_test_support.h"
#include "tests/dispatch/dispatch_simulation.h"

namespace octo::delivery::simulation {
namespace {

// The kill test's flags: lease 1 s + 1 s (a line waits at most 500 ms),
// poll 100 ms, 200 claimed per process, 64 per host.
SimulationOptions Options(bool pull_forward = true) {
  SimulationOptions o;
  o.claim = {.claim_batch = 200, .max_in_flight = 200, .poll_interval = absl::Milliseconds(100)};
  o.admission = {.max_per_host = 64, .max_queued_per_host = 4 * 64, .max_queue_wait = absl::Milliseconds(500)};
  o.lease = absl::Seconds(2);
  o.pull_forward = pull_forward;
  return o;
}

// 20,000 deliveries to a destination answering in `slow` for `slow_for`,
// then in 2 ms, in one process: how long after it became fast everything
// had succeeded.
absl::Duration RecoveryTime(absl::Duration slow, absl::Duration slow_for, bool pull_forward, int64_t* pulled) {
  absl::Time fast_from = absl::InfiniteFuture();
  DispatchSimulation sim(Options(pull_forward), [&](absl::Time now) {
    return now < fast_from ? slow : absl::Milliseconds(2);
  });
  fast_from = sim.clock().Now() + slow_for;
  sim.Add(20000);
  sim.RunUntil([] { return false; }, slow_for);
  const absl::Duration parked = sim.FarthestRelease();
  EXPECT_TRUE(sim.RunUntil([&] { return sim.Succeeded() == 20000; }, absl::Minutes(15)));
  const absl::Duration took = sim.clock().Now() - fast_from;
  std::cerr << (pull_forward ? "with" : "without") << " pull-forward, " << absl::FormatDuration(slow) << " for "
            << absl::FormatDuration(slow_for) << " (parked up to " << absl::FormatDuration(parked)
            << " ahead): all succeeded " << absl::FormatDuration(took) << " after it answered fast; "
            << sim.Claimed() << " claims, " << sim.Released() << " released, " << sim.Pulls() << " pulls made "
            << sim.Pulled() << " due\n";
  *pulled = sim.Pulled();
  return took;
}

TEST(BacklogPullTest, ARecoveredDestinationsParkedBacklogIsBackWithinSeconds) {
  int64_t pulled = 0;
  const absl::Duration with = RecoveryTime(absl::Milliseconds(300), absl::Seconds(30), true, &pulled);
  EXPECT_GT(pulled, 0);
  EXPECT_LE(with, absl::Seconds(5));
  int64_t none = 0;
  const absl::Duration without = RecoveryTime(absl::Milliseconds(300), absl::Seconds(30), false, &none);
  EXPECT_GE(without, absl::Seconds(30)) << "the slots of the 300-ms pace reach about a minute ahead";
}

// A hang parks the backlog up to ten minutes ahead; once the hung requests
// have ended (those started just before the recovery run 15 s more) and a
// few fast answers have taught the new pace, it is pulled.
TEST(BacklogPullTest, ADestinationRecoveredFromAHangGetsItsBacklogBackWithinSeconds) {
  int64_t pulled = 0;
  const absl::Duration with = RecoveryTime(absl::Seconds(15), absl::Seconds(65), true, &pulled);
  EXPECT_GT(pulled, 0);
  EXPECT_LE(with, absl::Seconds(40));
}

// A destination that stays slow is never pulled: pulled deliveries could
// only be parked again (a claim and a release each).
TEST(BacklogPullTest, ASlowOrHangingDestinationIsNotPulled) {
  for (absl::Duration pace : {absl::Seconds(1), absl::Seconds(15)}) {
    DispatchSimulation sim(Options(), [pace](absl::Time) { return pace; });
    sim.Add(20000);
    sim.RunUntil([] { return false; }, absl::Minutes(3));
    EXPECT_EQ(sim.Pulled(), 0) << absl::FormatDuration(pace);
  }
}

// Deliveries waiting for their retry (an attempt failed, or the receiver
// said Retry-After) are not parked: they keep their time while the
// destination's parked backlog is pulled forward around them.
TEST(BacklogPullTest, ARetryScheduledDeliveryKeepsItsTime) {
  absl::Time fast_from = absl::InfiniteFuture();
  DispatchSimulation sim(Options(), [&](absl::Time now) {
    return now < fast_from ? absl::Milliseconds(300) : absl::Milliseconds(2);
  });
  const absl::Time start = sim.clock().Now();
  fast_from = start + absl::Seconds(20);
  sim.Add(20000);
  const int first_retry = sim.AddRetries(50, absl::Seconds(40));
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Succeeded() >= 20000; }, absl::Seconds(40)));
  EXPECT_GT(sim.Pulled(), 0);
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Succeeded() == 20050; }, start + absl::Seconds(45) - sim.clock().Now()));
  for (int id = first_retry; id < first_retry + 50; ++id) {
    EXPECT_GE(sim.FirstSent(id), start + absl::Seconds(40)) << id;
    EXPECT_LE(sim.FirstSent(id), start + absl::Seconds(41)) << id;
  }
}

}  // namespace
}  // namespace octo::delivery::simulation

namespace octo::delivery::admission_test {
namespace {

// A destination with a learned fast pace and an empty line is pulled, at
// most once per kPullEvery, with the webhooks it was asked for, as many as
// its free slots start within 3/4 of max_queue_wait. Not known to have a
// parked backlog, it is probed less and less often while pulls find
// nothing; known (a delivery of it came due at its parked slot, or it
// refused one as backlog), at once. A slow one is not pulled.
TEST_F(AdmissionTest, TakePullsOffersOnlyADestinationWithSpareCapacity) {
  DestinationAdmission a = Make(8, 32, absl::Milliseconds(400));
  EXPECT_TRUE(a.TakePulls().empty()) << "nothing known";
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1, kDest, "hook-a"), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Milliseconds(10), true, kOpenedKept);
  clock_.Advance(absl::Seconds(1));
  std::vector<BacklogPull> probe = a.TakePulls();
  ASSERT_EQ(probe.size(), 1u) << "probed: it may have a backlog parked by another process";
  a.PullDone(probe[0], 0);
  for (absl::Duration wait : {absl::Milliseconds(100), absl::Milliseconds(200), absl::Milliseconds(400)}) {
    clock_.Advance(wait / 2);
    EXPECT_TRUE(a.TakePulls().empty()) << "the probes back off: " << wait;
    clock_.Advance(wait / 2);
    probe = a.TakePulls();
    ASSERT_EQ(probe.size(), 1u) << wait;
    a.PullDone(probe[0], 0);
  }
  clock_.Advance(DestinationAdmission::kPullEvery);
  EXPECT_TRUE(a.TakePulls().empty()) << "the next probe is 800 ms away";
  // A delivery of it came due at its parked slot: pulled without waiting.
  AdmissionAsk parked = Ask(2, kDest, "hook-a");
  parked.parked = true;
  ASSERT_EQ(a.Admit(parked, deferred).verdict, Admission::kStart);
  a.Finished(2, absl::Milliseconds(10), true, kOpenedKept);
  clock_.Advance(DestinationAdmission::kPullEvery);
  std::vector<BacklogPull> pulls = a.TakePulls();
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].destination, kDest);
  EXPECT_EQ(pulls[0].webhook_ids, std::vector<std::string>{"hook-a"});
  EXPECT_EQ(pulls[0].limit, 8 * 30);  // 300 ms / 10 ms per slot
  EXPECT_TRUE(a.TakePulls().empty()) << "at most one per kPullEvery";
  clock_.Advance(DestinationAdmission::kPullEvery);
  pulls = a.TakePulls();
  ASSERT_EQ(pulls.size(), 1u);
  a.PullDone(pulls[0], pulls[0].limit);  // as many as asked: more may be parked
  clock_.Advance(DestinationAdmission::kPullEvery);
  pulls = a.TakePulls();
  ASSERT_EQ(pulls.size(), 1u);
  a.PullDone(pulls[0], 0);  // none: nothing more is parked, probed from now on
  // Slow now: 400 ms answers teach a pace that drains less than one per
  // slot within 300 ms.
  for (uint64_t t = 10; t < 30; ++t) {
    ASSERT_EQ(a.Admit(Ask(t, kDest, "hook-a"), deferred).verdict, Admission::kStart);
    a.Finished(t, absl::Milliseconds(400), true, kOpenedKept);
  }
  clock_.Advance(DestinationAdmission::kPullEvery);
  EXPECT_TRUE(a.TakePulls().empty()) << "a slow destination is not pulled";
}

TEST_F(AdmissionTest, TakePullsWaitsWhileTheDestinationIsBusyOrRefusing) {
  DestinationAdmission a = Make(2, 2, absl::Milliseconds(400));
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1, kDest, "hook-a"), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Milliseconds(10), true, kOpenedKept);
  // Both slots running: more than half of max_per_host.
  ASSERT_EQ(a.Admit(Ask(2, kDest, "hook-a"), deferred).verdict, Admission::kStart);
  ASSERT_EQ(a.Admit(Ask(3, kDest, "hook-a"), deferred).verdict, Admission::kStart);
  clock_.Advance(absl::Milliseconds(5));
  EXPECT_TRUE(a.TakePulls().empty()) << "running above half of max_per_host";
  // Full: refused as backlog.
  std::vector<OutgoingRequest> started;
  AdmitAndQueue(a, Ask(4, kDest, "hook-a"), &started);
  AdmitAndQueue(a, Ask(5, kDest, "hook-a"), &started);
  ASSERT_TRUE(a.Admit(Ask(6, kDest, "hook-a"), deferred).backlogged);
  for (uint64_t t = 2; t <= 5; ++t) a.Finished(t, absl::Milliseconds(10), true, kOpenedKept);
  clock_.Advance(DestinationAdmission::kPullEvery);
  EXPECT_TRUE(a.TakePulls().empty()) << "refused as backlog within kPullAfterRefusal";
  clock_.Advance(DestinationAdmission::kPullAfterRefusal);
  EXPECT_EQ(a.TakePulls().size(), 1u);
  clock_.Advance(DestinationAdmission::kWarmFor + absl::Milliseconds(1));
  EXPECT_TRUE(a.TakePulls().empty()) << "no answer for kWarmFor";
}

}  // namespace
}  // namespace octo::delivery::admission_test
