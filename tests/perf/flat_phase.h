#pragma once
// The flat phase of octo-bench (--phases=flat, scripts/bench.sh --flat):
// does the service stay as fast with months of history stored? In one run:
//   1. the batched throughput phase and the latency phase (at
//      --flat_latency_rate events/s) on the database as it is (empty);
//   2. --flat_attempt_rows attempt rows stored (flat_fill.h) for the bench
//      tenant and --flat_tenants other tenants, then VACUUM ANALYZE;
//   3. the same two measurements again, and their ratios to step 1;
//   4. the attempt log at that size, as operators and partners read it:
//      SubscriptionService.GetDelivery (a delivery with its attempts) and
//      ListDeliveries (a webhook's newest page, and its failed ones) for
//      random deliveries and webhooks of the history, --flat_page_requests
//      sequential calls each, p50/p99/max;
//   5. the ordered phase (ordered_phase.h) at that size: ordered / unordered.
// Every count of steps 1 and 3 is narrowed to the bench tenant's new
// deliveries (db_probe.h), so that the probe costs the same at both sizes.
#include <string>

#include <boost/json.hpp>

#include "absl/status/status.h"
#include "tests/perf/bench_config.h"
#include "tests/perf/bench_phases.h"
#include "tests/perf/bench_stack.h"
#include "tests/perf/bench_workload.h"

namespace octo::perf {

// Prints every step and the flat summary; adds json["flat"]. A status when
// a step could not run (a setup call, the fill, a measurement that failed
// outright); goals not met are reported, not errors.
absl::Status RunFlat(Bench& bench, BenchStack& stack, DbProbe& db, const Config& config, const Tenant& tenant,
                     boost::json::object& json);

}  // namespace octo::perf
