#pragma once
// What the cluster test (cluster_test.cc) measures beside the fault
// fixture's checks: a REST client polling one gateway and timing its
// failures, a paced publisher spreading batches over the subscription
// replicas, a /metrics reader, and the peak concurrency the receiver saw.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "octo/webhooks/v1/events.grpc.pb.h"
#include "tests/support/receiver.h"

namespace octo::faults {

// The sum of every series of metric `name` on 127.0.0.1:`port`/metrics
// whose labels include `label` (e.g. grpc_method="Enqueue"; "" = every
// series); -1 when it cannot be read (the process is gone).
double MetricSum(int port, std::string_view name, std::string_view label = "");

// The most requests the receiver was answering at once, each taken to last
// from when it was read until `answer_delay` later (the receiver's scripted
// delay; the answer itself takes microseconds more).
int PeakConcurrency(const std::vector<testing::ReceivedRequest>& requests, std::chrono::milliseconds answer_delay);

// GET `path` with a bearer key on one gateway, every `interval` on a thread
// of its own, each on a new connection with a kPollTimeout timeout, until
// Stop(). A failure is a 5xx or no answer (refused, reset, timed out). An
// outage is a run of at least two consecutive failures: its window runs
// from the first failed poll's send time to the next answered poll's send
// time (or Stop()). One failed poll between answered ones (a slow answer
// on a loaded 2-core machine, a call in flight on a replica killed under
// it) is counted as an isolated failure, not as an outage.
class RestPoller {
 public:
  // Generous: on the 2-core machine running seven services, builds and
  // this test, a healthy gateway's answer may be delayed by seconds, and a
  // timed-out poll counts as a failure.
  static constexpr std::chrono::milliseconds kPollTimeout{5000};

  RestPoller(int port, std::string api_key, std::string path, std::chrono::milliseconds interval);
  ~RestPoller();  // stops
  RestPoller(const RestPoller&) = delete;
  RestPoller& operator=(const RestPoller&) = delete;

  void Start();
  void Stop();

  struct Figures {
    int requests = 0;
    int answered_2xx = 0;
    int answered_4xx = 0;  // none expected: a 4xx is a wrong answer, not an outage
    int failures = 0;      // 5xx or no answer
    int isolated_failures = 0;  // failures with an answered poll on each side
    double longest_failure_window_ms = 0;  // of runs of ≥ 2 failures
  };
  // After Stop().
  Figures figures() const { return figures_; }

 private:
  void Run();

  const int port_;
  const std::string api_key_;
  const std::string path_;
  const std::chrono::milliseconds interval_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  Figures figures_;
};

// Publishes `events` booking updates (built by `make_batch(first, count)`,
// each with a unique idempotency key) in batches of `batch` at about
// `events_per_second`, batch i to subscription replica i % stubs.size(). A
// refused batch (a replica or the delivery replica behind it went away) is
// sent again unchanged, to the next replica (after a 200-ms pause once
// every replica refused it): the idempotency keys make a batch stored
// before its answer was lost count once. On its own thread; Stop() (or the
// destructor, e.g. after a failed ASSERT) ends it after the call in flight.
class PacedPublisher {
 public:
  using BatchMaker = std::function<webhooks::v1::PublishEventsRequest(int first, int count)>;
  PacedPublisher(std::vector<std::unique_ptr<webhooks::v1::EventService::Stub>> stubs, BatchMaker make_batch,
                 int events, int batch, int events_per_second);
  ~PacedPublisher();  // stops and joins
  PacedPublisher(const PacedPublisher&) = delete;
  PacedPublisher& operator=(const PacedPublisher&) = delete;

  void Start();
  void Join();
  void Stop();

  // Events answered as accepted so far (each batch once).
  int accepted() const { return accepted_.load(); }
  // Calls refused or failed (and sent again).
  int retried_calls() const { return retried_.load(); }
  // Batches given up after 20 tries (a test failure).
  int lost_batches() const { return lost_.load(); }
  double seconds() const { return seconds_; }

 private:
  void Run();
  // Sleeps until `t` or Stop(); false when stopped.
  bool SleepUntil(std::chrono::steady_clock::time_point t);

  std::vector<std::unique_ptr<webhooks::v1::EventService::Stub>> stubs_;
  BatchMaker make_batch_;
  const int events_;
  const int batch_;
  const int events_per_second_;
  std::atomic<int> accepted_{0};
  std::atomic<int> retried_{0};
  std::atomic<int> lost_{0};
  std::atomic<bool> stop_{false};
  double seconds_ = 0;
  std::thread thread_;
};

}  // namespace octo::faults
