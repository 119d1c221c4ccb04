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
// 15,000 requests in 120 s after its third restart). The horizon of a
// destination that answers is now a minute at most.
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

TEST(RestartBacklogTest, KillsAfterASlowSpellDoNotStallOnSlotsOfTheOldPace) {
  const absl::Time start = absl::FromUnixSeconds(1767225600);
  const absl::Time fast_from = start + absl::Seconds(30);
  DispatchSimulation sim(KillTestOptions(), [&](absl::Time now) {
    return now < fast_from ? absl::Milliseconds(300) : absl::Milliseconds(2);
  });
  sim.Add(kDeliveries);
  sim.RunUntil([] { return false; }, fast_from - sim.clock().Now());
  const int64_t base = sim.Received();
  ASSERT_LT(base, kDeliveries - kKills * kKillEvery) << "the load should outlast the kills";
  // A segment of 15,000 requests takes about a second once the destination
  // is fast and its deliveries are due; a parked slot is at most a minute
  // away (before the fix: up to ten).
  absl::Duration slowest;
  for (int k = 1; k <= kKills; ++k) {
    const absl::Time segment = sim.clock().Now();
    ASSERT_TRUE(sim.RunUntil([&] { return sim.Received() >= base + k * kKillEvery; }, absl::Seconds(120)))
        << "stalled before kill " << k << " " << Figures(sim, fast_from);
    slowest = std::max(slowest, sim.clock().Now() - segment);
    sim.Kill();
  }
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Succeeded() == kDeliveries; }, absl::Minutes(10)))
      << Figures(sim, fast_from);
  std::cerr << "slowest segment " << absl::FormatDuration(slowest) << "; all succeeded "
            << Figures(sim, fast_from) << "\n";
  EXPECT_LE(slowest, DestinationAdmission::kMinBacklogHorizon + absl::Seconds(5));
  EXPECT_LE(sim.clock().Now() - fast_from, absl::Minutes(2));
  // Not bought with claims: each delivery claimed at most twice on average.
  EXPECT_LE(sim.Claimed(), 2 * kDeliveries);
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
