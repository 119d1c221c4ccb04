#pragma once
// octo-bench's configuration: every flag (bench_config.cc defines them),
// checked and gathered into one Config that the phases read.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/perf/bench_stack.h"
#include "tests/perf/wrk_runner.h"

namespace octo::perf {

struct Config {
  BenchStackOptions stack;
  std::vector<std::string> phases;
  int events = 0;
  int webhooks = 0;
  std::vector<std::string> capabilities;
  int batch = 0;
  int publishers = 0;
  int resources = 0;
  int ordered_resources = 1000;
  std::chrono::seconds throughput_timeout{};
  int rate = 0;
  std::vector<int> latency_rates;
  int rate_seconds = 0;
  int rate_interval_ms = 0;
  int rate_workers = 0;
  std::chrono::seconds drain_timeout{};
  WrkOptions wrk;
  int wrk_seconds = 0;
  std::string json_out;
  int single_clients = 0;
  int single_events = 0;
  int top_statements = 10;
  bool scope_probe = false;
  int backlog_deliveries = 0;
  int offer_rate = 0;
  int offer_batch = 0;
  int offer_seconds = 0;
  int fanout_webhooks = 0;
  int fanout_events = 0;
  int long_rate = 0;
  int long_seconds = 0;
  // The flat phase (flat_phase.h).
  std::int64_t flat_attempt_rows = 10'000'000;
  int flat_latency_rate = 200;
  int flat_tenants = 20;
  int flat_chunk_rows = 250'000;
  std::chrono::seconds flat_fill_timeout{};
  int flat_page_requests = 2000;
  std::chrono::seconds flat_page_timeout{};
};

// Reads and checks the flags: INVALID_ARGUMENT naming the flag at fault.
absl::StatusOr<Config> ConfigFromFlags();

}  // namespace octo::perf
