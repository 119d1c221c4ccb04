#include "tests/perf/ordered_phase.h"

#include <cstdio>
#include <utility>

#include "tests/perf/bench_report.h"
#include "tests/perf/bench_workload.h"

namespace octo::perf {

absl::StatusOr<OrderedResult> RunOrdered(Bench& bench, BenchStack& stack, DbProbe& db, const Config& config,
                                         const std::string& run_id, bool scoped, boost::json::object& json) {
  std::printf("\n== ordered phase: N=%d events cycling through %d bookings, W=%d webhooks; unordered, then ordered\n",
              config.events, config.ordered_resources, config.webhooks);
  std::fflush(stdout);
  OrderedResult result;
  for (int ordered = 0; ordered < 2; ++ordered) {
    absl::StatusOr<Tenant> t = CreateTenant(stack.SubscriptionChannel(), stack.sink_port(), config.webhooks,
                                            config.capabilities, ordered == 1);
    if (!t.ok()) return t.status();
    if (scoped) db.ScopeTo(t->webhook_ids);
    EventFactory f(t->supplier_id, run_id, config.ordered_resources);
    absl::StatusOr<PhaseResult> r =
        bench.Throughput(ordered == 1 ? "ordered" : "ordered_baseline", &f, ordered == 1 ? 'o' : 'u');
    if (scoped) db.ScopeTo({});
    if (!r.ok()) return r.status();
    PrintPhase(*r, config);
    json[r->name] = PhaseJson(*r);
    (ordered == 1 ? result.ordered : result.unordered) = *std::move(r);
  }
  const double base = result.unordered.DeliveriesPerSecond();
  result.ratio = base > 0 ? result.ordered.DeliveriesPerSecond() / base : 0;
  std::printf("   ordered / unordered deliveries/s (publish -> every attempt recorded): %.0f / %.0f = %.3f%s\n",
              result.ordered.DeliveriesPerSecond(), base, result.ratio,
              result.complete() ? "" : "  (INCOMPLETE: see the problems above)");
  json["ordered_ratio"] = result.ratio;
  return result;
}

}  // namespace octo::perf
