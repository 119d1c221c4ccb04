// A large due backlog for one destination across kill -9 restarts, on the
// dispatch simulation (tests/dispatch/dispatch_simulation.h): claims,
// admission, backlog releases and leases as the dispatcher runs them, on a
// simulated clock.
#include <gtest/gtest.h>

#include <iostream>

#include "tests/dispatch/dispatch_simulation.h"

namespace octo::delivery::simulation {
namespace {

SimulationOptions KillTestOptions(int max_in_flight) {
  SimulationOptions o;
  o.claim = {.claim_batch = 200, .max_in_flight = max_in_flight, .poll_interval = absl::Milliseconds(100)};
  o.admission = {.max_per_host = 64,
                 .max_queued_per_host = std::max(4 * 64, max_in_flight / 2 - 64),
                 .max_queue_wait = absl::Milliseconds(500)};
  return o;
}

void Report(DispatchSimulation& sim, const char* what, absl::Time t0) {
  std::cerr << what << ": t=" << absl::FormatDuration(sim.clock().Now() - t0) << " received=" << sim.Received()
            << " succeeded=" << sim.Succeeded() << " claimed=" << sim.Claimed() << " released=" << sim.Released()
            << " farthest=" << absl::FormatDuration(sim.FarthestRelease()) << "\n";
}

TEST(RestartBacklogTest, Explore) {
  for (int in_flight : {200, 1000}) {
    for (auto [slow_ms, fast_ms] : std::vector<std::pair<int, int>>{{0, 2}, {500, 2}, {0, 20}, {0, 50}, {0, 100}}) {
      const absl::Time t0 = absl::FromUnixSeconds(1767225600);
      const absl::Time fast_from = t0 + absl::Seconds(slow_ms > 0 ? 30 : 0);
      DispatchSimulation sim(KillTestOptions(in_flight), [&](absl::Time now) {
        return now < fast_from ? absl::Milliseconds(slow_ms) : absl::Milliseconds(fast_ms);
      });
      std::cerr << "--- max_in_flight=" << in_flight << " slow=" << slow_ms << "ms for 30s, then " << fast_ms << "ms\n";
      sim.Add(100000);
      sim.RunUntil([] { return false; }, fast_from - sim.clock().Now());
      Report(sim, "fast from", t0);
      const int64_t base = sim.Received();
      for (int k = 1; k <= 5; ++k) {
        const bool ok = sim.RunUntil([&] { return sim.Received() >= base + 15000 * k; }, absl::Seconds(120));
        Report(sim, ok ? "kill" : "STALL", t0);
        if (!ok) break;
        sim.Kill();
      }
      sim.RunUntil([&] { return sim.Succeeded() == 100000; }, absl::Minutes(15));
      Report(sim, "end", t0);
    }
  }
}

}  // namespace
}  // namespace octo::delivery::simulation
