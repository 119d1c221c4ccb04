#pragma once
// octo-bench's report: each phase printed (and as JSON), the goals and the
// product's performance table at the end of a run.
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <boost/json.hpp>

#include "tests/perf/bench_config.h"
#include "tests/perf/bench_phases.h"
#include "tests/perf/fanout_phase.h"
#include "tests/perf/latency_histogram.h"
#include "tests/perf/wrk_runner.h"

namespace octo::perf {

// What a run measured, for the summary.
struct RunResults {
  std::optional<PhaseResult> throughput, latency, single, offer, long_run;
  std::map<int, PhaseResult> latency_by_rate;
  std::optional<FanoutResult> fanout;
  std::optional<std::pair<PhaseResult, PhaseResult>> backlog;
  std::optional<WrkResult> wrk;
  std::string wrk_problem;
};

boost::json::object LatencyJson(const LatencyHistogram::Summary& l);
void PrintPhase(const PhaseResult& r, const Config& c);
boost::json::object PhaseJson(const PhaseResult& r);
// Prints the fan-out phase; its JSON.
boost::json::object PrintFanout(const FanoutResult& r);
// "NOT MEASURED", "MET" or "NOT MET".
const char* Verdict(bool measured, bool met);
// The goals and the performance table; adds json["summary"].
void PrintSummary(const RunResults& results, const Config& config, boost::json::object& json);

}  // namespace octo::perf
