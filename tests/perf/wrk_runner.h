#pragma once
// Runs wrk (Debian package `wrk`) against the sink: the HTTP ceiling of this
// machine for the benchmark's ratio. POST with a body of `body_bytes`
// through a Lua script written to the work directory.
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace octo::perf {

struct WrkOptions {
  std::string wrk_bin = "/usr/bin/wrk";
  int port = 0;  // on 127.0.0.1
  std::string path = "/wrk";
  int threads = 2;
  int connections = 64;
  int seconds = 10;
  int body_bytes = 2048;
  std::string work_dir;
};

struct WrkResult {
  double requests_per_second = 0;
  std::uint64_t requests = 0;
  std::uint64_t non_2xx = 0;
  std::string socket_errors;  // wrk's "Socket errors:" line, if any
  std::string latency;        // wrk's "Latency" line (avg, stdev, max)
  std::string command;
};

// NOT_FOUND when wrk is missing; DEADLINE_EXCEEDED when it runs 30 s past
// its duration; INTERNAL when its output has no "Requests/sec:".
absl::StatusOr<WrkResult> RunWrk(const WrkOptions& options);

}  // namespace octo::perf
