// The kill test's load on the dispatch simulation (dispatch_simulation.h):
// 100,000 deliveries to one destination, 64 connections, a kill -9 after
// every 15,000 requests, claims, admission, backlog releases and leases as
// the dispatcher runs them, on a simulated clock (a few seconds of CPU).
//
// While the events were published the destination answered in 300 ms:
// most of the due backlog was released into later slots spaced at that
// pace. Once it answered at once, those slots still held: the deliveries
// could not be claimed before them, and the restarted processes found
// nothing due (the 100,000-delivery kill run that received fewer than
// 15,000 requests in 120 s after its third restart). The horizon is now 200
// of the destination's paces (at least a minute, at most ten): a minute for
// one answering in 300 ms, 200 s for one answering in 1 s. And once the
// destination has spare capacity again its parked backlog is pulled
// forward (DestinationAdmission::TakePulls, DispatchStore::PullForward), so
// the slots no longer hold it at all.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"

#include "tests/dispatch/dispatch_simulation.h"

namespace octo::delivery::simulation {
namespace {

constexpr int kDeliveries = 100000;
constexpr int kKillEvery = 15000;
constexpr int kKills = 5;

// The kill test's flags: lease 1 s + 1 s (a line waits at most 500 ms),
// poll 100 ms, 200 claimed per process, 64 per host.
SimulationOptions KillTestOptions() {
  SimulationOptions o;
  o.claim = {.claim_batch = 200, .max_in_flight = 200, .poll_interval = absl::Milliseconds(100)};
  o.admission = {.max_per_host = 64, .max_queued_per_host = 4 * 64, .max_queue_wait = absl::Milliseconds(500)};
  o.lease = absl::Seconds(2);
  return o;
}

std::string Figures(DispatchSimulation& sim, absl::Time since) {
  return absl::StrCat("after ", absl::FormatDuration(sim.clock().Now() - since), ": ", sim.Received(),
                      " requests, ", sim.Succeeded(), " succeeded, ", sim.Claimed(), " claims, ", sim.Released(),
                      " released; farthest parked ", absl::FormatDuration(sim.FarthestRelease()), " ahead");
}

struct RestartRun {
  absl::Duration slowest;        // the slowest 15,000-request segment after the destination became fast
  absl::Duration all_succeeded;  // from the destination becoming fast
  int64_t claimed = 0;
};

// 300 ms answers for the first 30 s (the load is claimed and parked into
// slots up to a minute ahead), then 2 ms, and a kill after every 15,000
// requests from then on.
RestartRun KillsAfterASlowSpell(bool pull_forward) {
  absl::Time fast_from = absl::InfiniteFuture();  // set from the simulation's clock
  SimulationOptions options = KillTestOptions();
  options.pull_forward = pull_forward;
  DispatchSimulation sim(options, [&](absl::Time now) {
    return now < fast_from ? absl::Milliseconds(300) : absl::Milliseconds(2);
  });
  fast_from = sim.clock().Now() + absl::Seconds(30);
  sim.Add(kDeliveries);
  sim.RunUntil([] { return false; }, fast_from - sim.clock().Now());
  const int64_t base = sim.Received();
  EXPECT_LT(base, kDeliveries - kKills * kKillEvery) << "the load should outlast the kills";
  RestartRun run;
  for (int k = 1; k <= kKills; ++k) {
    const absl::Time segment = sim.clock().Now();
    EXPECT_TRUE(sim.RunUntil([&] { return sim.Received() >= base + k * kKillEvery; }, absl::Seconds(120)))
        << "stalled before kill " << k << " " << Figures(sim, fast_from);
    run.slowest = std::max(run.slowest, sim.clock().Now() - segment);
    sim.Kill();
  }
  EXPECT_TRUE(sim.RunUntil([&] { return sim.Succeeded() == kDeliveries; }, absl::Minutes(10)))
      << Figures(sim, fast_from);
  run.all_succeeded = sim.clock().Now() - fast_from;
  run.claimed = sim.Claimed();
  std::cerr << (pull_forward ? "with" : "without") << " pull-forward: slowest segment "
            << absl::FormatDuration(run.slowest) << "; all succeeded " << Figures(sim, fast_from) << "; "
            << sim.Pulls() << " pulls made " << sim.Pulled() << " parked deliveries due\n";
  return run;
}

TEST(RestartBacklogTest, KillsAfterASlowSpellDoNotStallOnSlotsOfTheOldPace) {
  // A restarted process knows nothing of the slots; once the destination
  // answers fast with spare capacity the parked backlog is pulled forward
  // (decision 111: before, the slots held; the slowest segment took 31 s
  // and everything succeeded 38.5 s after the destination became fast).
  const RestartRun run = KillsAfterASlowSpell(/*pull_forward=*/true);
  EXPECT_LE(run.slowest, absl::Seconds(8));
  EXPECT_LE(run.all_succeeded, absl::Seconds(30));
  // Not bought with claims: each delivery claimed at most 2.5 times on
  // average (2.03 measured, as before the pull-forward: decision 104).
  EXPECT_LE(run.claimed, 5 * kDeliveries / 2);
}

// Without the pull-forward the backlog waits for its slots: a segment may
// take up to the backlog horizon (a minute at the 300-ms pace; before
// decision 97, ten).
TEST(RestartBacklogTest, WithoutPullForwardTheSlotsOfTheOldPaceHold) {
  const RestartRun run = KillsAfterASlowSpell(/*pull_forward=*/false);
  EXPECT_LE(run.slowest, DestinationAdmission::kMinBacklogHorizon + absl::Seconds(5));
  EXPECT_GE(run.slowest, absl::Seconds(15));
  EXPECT_LE(run.all_succeeded, absl::Minutes(2));
}

// Without a slow spell the same kills cost a few seconds each.
TEST(RestartBacklogTest, KillsUnderAFastDestination) {
  DispatchSimulation sim(KillTestOptions(), [](absl::Time) { return absl::Milliseconds(2); });
  const absl::Time start = sim.clock().Now();
  sim.Add(kDeliveries);
  for (int k = 1; k <= kKills; ++k) {
    ASSERT_TRUE(sim.RunUntil([&] { return sim.Received() >= k * kKillEvery; }, absl::Seconds(30)))
        << Figures(sim, start);
    sim.Kill();
  }
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Succeeded() == kDeliveries; }, absl::Minutes(1))) << Figures(sim, start);
  EXPECT_LE(sim.Received() - kDeliveries, kKills * 200) << "duplicates: at most what was claimed at a kill";
}

}  // namespace
}  // namespace octo::delivery::simulation
