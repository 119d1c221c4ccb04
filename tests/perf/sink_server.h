#pragma once
// The benchmark sink: a small, fast HTTP/1.1 server on 127.0.0.1 that
// receives webhook deliveries, counts them and measures publish->receive
// latency. Written for tests/perf/bench.
//
// - epoll, one event loop per thread, each with its own SO_REUSEPORT
//   listening socket on the same port; keep-alive and pipelining; requests
//   with Content-Length (and `Expect: 100-continue`); no chunked bodies.
// - POST to any path answers 204, counted. The path may script the answer:
//     /delay/<ms>/...    answer after <ms> milliseconds (a slow endpoint)
//     /status/<code>/... answer <code> instead of 204
//   (combinable: /delay/50/status/503/x).
// - Latency: a body holding `"benchPublishedAtNs":<CLOCK_REALTIME ns>` (the
//   benchmark puts it in the resource) is measured as receive time minus that
//   time; found with one memmem, no JSON parsing.
// - GET /stats answers the counters and latency percentiles as JSON;
//   GET /reset zeroes them; GET /healthz answers 200. These are not counted.
//
// Example:
//   auto sink = SinkServer::Start({.listen_port = 0, .threads = 2});
//   int port = (*sink)->port();
//   ...                                  // POST http://127.0.0.1:<port>/hook
//   std::string json = (*sink)->StatsJson();
//   (*sink)->Stop();
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace octo::perf {

// The JSON key the sink looks for in a delivered body.
inline constexpr char kPublishedAtKey[] = "\"benchPublishedAtNs\":";

struct SinkOptions {
  int listen_port = 0;  // 0: the kernel chooses (read port())
  int threads = 2;      // event loops
};

class SinkServer {
 public:
  // Binds 127.0.0.1:<listen_port> and starts the event loops. UNAVAILABLE
  // when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<SinkServer>> Start(SinkOptions options);
  virtual ~SinkServer() = default;

  virtual int port() const = 0;
  // The body of GET /stats. Thread-safe.
  virtual std::string StatsJson() const = 0;
  virtual void ResetStats() = 0;
  // Stops the loops and closes every connection. Idempotent.
  virtual void Stop() = 0;
};

// Current CLOCK_REALTIME in nanoseconds (what benchPublishedAtNs holds).
std::int64_t RealtimeNs();

}  // namespace octo::perf
