// A destination's large backlog must not hold back another destination's
// deliveries, on the dispatch simulation (dispatch_simulation.h: the real
// ClaimScheduler and DestinationAdmission, claims oldest next_attempt_at
// first as PostgreSQL makes them). The backlog is released into slots up to
// its horizon ahead and comes back due before deliveries published after
// it; what a user accepts from the neighbour is seconds, not minutes.
#include <gtest/gtest.h>

#include <iostream>

#include "absl/strings/str_cat.h"

#include "tests/dispatch/dispatch_simulation.h"

namespace octo::delivery::simulation {
namespace {

// The kill test's flags: lease 1 s + 1 s, poll 100 ms, 200 claimed per
// process, 64 per host.
SimulationOptions Options() {
  SimulationOptions o;
  o.claim = {.claim_batch = 200, .max_in_flight = 200, .poll_interval = absl::Milliseconds(100)};
  o.admission = {.max_per_host = 64, .max_queued_per_host = 4 * 64, .max_queue_wait = absl::Milliseconds(500)};
  o.lease = absl::Seconds(2);
  return o;
}

// 100,000 deliveries to a destination answering in `pace` (64 connections
// drain 213 a second at 300 ms: minutes of backlog), and every 7 s five
// deliveries to a neighbour answering at once, across several returns of
// the parked backlog (its horizon: 1 min at 300 ms, 200 s at 1 s, 10 min
// for one that hangs).
void NeighbourWaitsSeconds(absl::Duration pace, absl::Duration run_for) {
  DispatchSimulation sim(Options(), [pace](absl::Time) { return pace; });
  const absl::Time start = sim.clock().Now();
  sim.Add(100000);
  int added = 0;
  while (sim.clock().Now() - start < run_for) {
    sim.RunUntil([] { return false; }, absl::Seconds(7));
    sim.AddOther(5);
    added += 5;
  }
  ASSERT_TRUE(sim.RunUntil([&] { return sim.OtherSucceeded() == added; }, absl::Minutes(15)));
  std::cerr << "pace " << absl::FormatDuration(pace) << ": the neighbour's longest wait "
            << absl::FormatDuration(sim.OtherLongestWait()) << "; " << sim.Succeeded() << " succeeded, "
            << sim.Claimed() << " claims, " << sim.Released() << " released, " << sim.Pulls() << " pulls made "
            << sim.Pulled() << " due in "
            << absl::FormatDuration(sim.clock().Now() - start) << "\n";
  EXPECT_LE(sim.OtherLongestWait(), absl::Seconds(5));
}

TEST(BacklogNeighbourTest, AnAnsweringDestinationsBacklogDoesNotStarveANeighbour) {
  NeighbourWaitsSeconds(absl::Milliseconds(300), absl::Minutes(4));
}

TEST(BacklogNeighbourTest, ASlowDestinationsBacklogDoesNotStarveANeighbour) {
  NeighbourWaitsSeconds(absl::Seconds(1), absl::Minutes(8));
}

TEST(BacklogNeighbourTest, AHangingDestinationsBacklogDoesNotStarveANeighbour) {
  NeighbourWaitsSeconds(absl::Seconds(15), absl::Minutes(12));
}

}  // namespace
}  // namespace octo::delivery::simulation
