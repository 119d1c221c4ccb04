#pragma once
// The benchmark's workload and probes:
//   - CreateTenant: a supplier, a connection and W webhooks on the sink,
//     over the real AdminService / SubscriptionService gRPC API;
//   - EventFactory: booking_update events (~1.6 KB resources) carrying their
//     publish time in "benchPublishedAtNs" (CLOCK_REALTIME ns) for the sink;
//   - Publisher: worker threads sending batches with EventService.PublishEvents;
//   - SinkClient (GET /stats, /reset); DbProbe (counts in PostgreSQL) is in db_probe.h.
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "tests/perf/db_probe.h"
#include "tests/perf/latency_histogram.h"
#include "tests/support/http_client.h"

namespace octo::perf {

struct Tenant {
  std::string supplier_id;
  std::string connection_id;
  std::vector<std::string> webhook_ids;
};

// A new supplier and connection with `webhooks` booking_update webhooks to
// http://127.0.0.1:<sink_port>/hook/<i>, with the given capabilities
// (ordered delivery per resource when `ordered`).
absl::StatusOr<Tenant> CreateTenant(const std::shared_ptr<grpc::Channel>& channel, int sink_port,
                                    int webhooks, const std::vector<std::string>& capabilities,
                                    bool ordered = false);

// Builds the events of one run. Thread-safe (const).
class EventFactory {
 public:
  // `resources`: distinct bookings cycled through (0: every event its own
  // booking, so every diff is the first one, []).
  EventFactory(std::string supplier_id, std::string run_id, int resources)
      : supplier_id_(std::move(supplier_id)), run_id_(std::move(run_id)), resources_(resources) {}

  // Event `index` of phase `phase` (one letter), published at `published_ns`.
  void Fill(char phase, std::int64_t index, std::int64_t published_ns,
            webhooks::v1::PublishEventRequest& event) const;
  const std::string& run_id() const { return run_id_; }

 private:
  std::string supplier_id_;
  std::string run_id_;
  int resources_;
};

struct PublishStats {
  std::uint64_t batches_ok = 0;
  std::uint64_t batches_failed = 0;
  std::uint64_t retries = 0;
  std::uint64_t events = 0;      // accepted
  std::uint64_t deliveries = 0;  // sum of delivery_count
  std::uint64_t duplicates = 0;
  std::int64_t max_queue_wait_us = 0;  // how late a batch left after its scheduled time
  LatencyHistogram::Summary rpc_latency;  // PublishEvents round trip
  std::string first_error;
};

// Sends batches from `workers` threads, each with one synchronous
// PublishEvents in flight; a failed RPC is retried (same idempotency keys)
// up to 7 times over ~5 s unless INVALID_ARGUMENT. Thread-safe.
class Publisher {
 public:
  Publisher(std::shared_ptr<grpc::Channel> channel, const EventFactory& factory, int workers,
            std::chrono::milliseconds rpc_timeout);
  ~Publisher();  // Finish()

  // Queues events [first, first + count) of `phase`. They carry
  // `scheduled_ns` as their publish time, or, when 0, the time the batch is
  // sent.
  void Submit(char phase, std::int64_t first, int count, std::int64_t scheduled_ns);
  // Waits until every queued batch was answered, then stops the workers.
  void Finish();
  // Drops the batches not yet sent (after a failure or a timeout).
  void Abandon();
  PublishStats Stats() const;
  bool failed() const;

 private:
  struct Batch {
    char phase;
    std::int64_t first;
    int count;
    std::int64_t scheduled_ns;
  };
  void Work();
  void Send(const Batch& batch, webhooks::v1::EventService::Stub& stub);

  std::shared_ptr<grpc::Channel> channel_;
  const EventFactory& factory_;
  const std::chrono::milliseconds rpc_timeout_;
  LatencyHistogram rpc_latency_;
  mutable absl::Mutex mu_;
  std::deque<Batch> queue_ ABSL_GUARDED_BY(mu_);
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  PublishStats stats_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;
};

struct SinkStats {
  std::uint64_t requests = 0;
  std::uint64_t body_bytes = 0;
  std::uint64_t responses_2xx = 0;
  std::uint64_t unmarked = 0;
  std::uint64_t bad_requests = 0;
  std::uint64_t connections = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  LatencyHistogram::Summary latency;
};

// The sink's GET /stats and GET /reset. Not thread-safe.
class SinkClient {
 public:
  explicit SinkClient(int port);
  absl::StatusOr<SinkStats> Stats();
  absl::Status Reset();

 private:
  testing::HttpClient http_;
};

}  // namespace octo::perf
