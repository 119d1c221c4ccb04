#pragma once
// The fan-out phase of octo-bench: ONE event to many webhooks of one
// connection. A tenant of its own with --fanout_webhooks booking_update
// webhooks on the sink; then --fanout_events events are published one at a
// time with EventService.PublishEvent, each timed from the call to its
// answer (the time to accept: validation, the one transaction that stores
// the event and a delivery per webhook, the commit), and each drained (every
// delivery received by the sink and its attempt recorded) before the next,
// so that every event is accepted by a quiet service.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "tests/perf/bench_workload.h"

namespace octo::perf {

struct FanoutOptions {
  int webhooks = 10000;
  int events = 5;
  std::vector<std::string> capabilities;
  std::string run_id;  // keeps the idempotency keys of runs apart
  std::chrono::seconds drain_timeout{120};
};

struct FanoutResult {
  int webhooks = 0;
  double setup_seconds = 0;          // creating the tenant and its webhooks
  std::vector<double> accept_ms;     // per event: PublishEvent round trip
  std::vector<double> received_ms;   // per event: publish -> every delivery received
  std::vector<double> recorded_ms;   // per event: publish -> every attempt recorded
  std::string problem;               // empty when every event was accepted and drained
  bool complete() const { return problem.empty(); }
};

// Runs the phase against the stack (provisioning over `admin_channel`,
// publishing over `publisher_channel`) and the sink on
// `sink_port`; `db` counts the recorded attempts. A status for a setup
// failure; a failure while publishing or draining is the result's problem.
absl::StatusOr<FanoutResult> RunFanout(const std::shared_ptr<grpc::Channel>& admin_channel,
                                       const std::shared_ptr<grpc::Channel>& publisher_channel, int sink_port,
                                       DbProbe& db, const FanoutOptions& options);

// The median of `values` (0 when empty).
double Median(std::vector<double> values);

}  // namespace octo::perf
