#pragma once
// Single-event publishing, as a booking engine does it: `clients` threads,
// each with one EventService.PublishEvent (one event) in flight, sending
// events [0, events) of a phase until all were answered or `time_limit`
// passed. Each event carries its send time for the sink's latency. The
// answer is a PublishStats (bench_workload.h): events accepted, deliveries,
// RPC round-trip percentiles, failures (a failed RPC is not retried).
#include <chrono>
#include <memory>

#include <grpcpp/grpcpp.h>

#include "tests/perf/bench_workload.h"

namespace octo::perf {

struct SinglePublishOptions {
  int clients = 64;
  int events = 20000;
  std::chrono::seconds time_limit{120};
  std::chrono::milliseconds rpc_timeout{30000};
};

// Blocks until done; `*seconds` is the time from the first send to the last
// answer.
PublishStats PublishOneAtATime(const std::shared_ptr<grpc::Channel>& channel,
                               const EventFactory& factory, char phase,
                               const SinglePublishOptions& options, double* seconds);

}  // namespace octo::perf
