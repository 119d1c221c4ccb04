#pragma once
// The ordered phase of octo-bench: the throughput phase twice, on two new
// tenants of W webhooks each on the same sink, the events cycling through
// --ordered_resources bookings: first unordered webhooks (the baseline), then
// ordered ones (one delivery per booking at a time). The ratio ordered /
// unordered deliveries/s is the cost of ordering.
#include <string>

#include <boost/json.hpp>

#include "absl/status/statusor.h"
#include "tests/perf/bench_config.h"
#include "tests/perf/bench_phases.h"
#include "tests/perf/bench_stack.h"

namespace octo::perf {

struct OrderedResult {
  PhaseResult unordered;
  PhaseResult ordered;
  double ratio = 0;  // ordered / unordered deliveries per second
  bool complete() const { return unordered.complete && ordered.complete; }
};

// Prints both runs and the ratio, adds them to `json` ("ordered_baseline",
// "ordered", "ordered_ratio"). With `scoped`, `db`'s counts are narrowed to
// each run's tenant (db_probe.h) and left unscoped afterwards. A status when
// a tenant could not be created or a run could not be measured.
absl::StatusOr<OrderedResult> RunOrdered(Bench& bench, BenchStack& stack, DbProbe& db, const Config& config,
                                         const std::string& run_id, bool scoped, boost::json::object& json);

}  // namespace octo::perf
