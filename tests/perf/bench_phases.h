#pragma once
// The measured phases of octo-bench that publish through EventService and
// wait for the sink and delivery_attempts: throughput, latency (open loop),
// split/backlog (enqueue only, then dispatch only) and single-event
// publishing. Each returns a PhaseResult; bench_report.h prints it.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/perf/bench_config.h"
#include "tests/perf/bench_stack.h"
#include "tests/perf/bench_workload.h"
#include "tests/perf/proc_stats.h"

namespace octo::perf {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
inline double Ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }

struct PhaseResult {
  std::string name;
  int rate = 0;           // latency phase: events/s offered
  int seconds = 0;        // latency phase: how long
  int batch_events = 0;   // latency phase: events per PublishEvents call
  bool complete = false;  // every accepted delivery received and recorded
  std::string problem;    // why not
  std::uint64_t events_accepted = 0;
  std::uint64_t deliveries_expected = 0;
  std::uint64_t received = 0;
  std::int64_t recorded = 0;  // delivery_attempts rows added
  double publish_seconds = 0;
  double received_seconds = 0;  // first publish -> last received
  double recorded_seconds = 0;  // first publish -> every attempt recorded
  double steady_rate = 0;       // deliveries/s received between 10 % and 90 %
  double avg_body_bytes = 0;
  PublishStats publish;
  SinkStats sink;
  DbCounts db;
  CpuTimes cpu;  // CPU seconds per process during the phase
  double wall_seconds = 0;  // the phase, start to the end of its checks
  std::vector<StatementStat> statements;  // pg_stat_statements, top by time

  double AcceptedPerSecond() const {
    return publish_seconds > 0 ? static_cast<double>(events_accepted) / publish_seconds : 0;
  }
  double DeliveriesPerSecond() const {
    return recorded_seconds > 0 ? static_cast<double>(deliveries_expected) / recorded_seconds : 0;
  }
};

class Bench {
 public:
  Bench(const Config& config, BenchStack& stack, DbProbe& db, const EventFactory& factory)
      : config_(config), stack_(stack), db_(db), factory_(factory), sink_(stack.sink_port()) {}

  // `factory` (default: the run's) publishes the events, as phase `letter`.
  absl::StatusOr<PhaseResult> Throughput(const std::string& name = "throughput",
                                         const EventFactory* factory = nullptr, char letter = 't');
  // Open loop: `rate` events/s for `seconds`, a batch every `interval_ms`.
  absl::StatusOr<PhaseResult> Latency(const std::string& name, int rate, int seconds,
                                      int interval_ms);
  // Enqueue only, then dispatch only (restarts octo-delivery twice).
  absl::StatusOr<std::pair<PhaseResult, PhaseResult>> Split(int events, const std::string& name);
  // Single-event publishing of `factory`'s events (a one-webhook tenant).
  absl::StatusOr<PhaseResult> Single(const EventFactory& factory);

 private:
  // Polls the sink until `received >= want()` (want() may grow while
  // publishing) and `done()`, or the deadline. Records (time, count) samples.
  absl::Status WaitReceived(PhaseResult& r, Clock::time_point t0, Clock::time_point deadline,
                            const std::function<bool()>& done,
                            const std::function<std::uint64_t()>& want,
                            std::vector<std::pair<double, std::uint64_t>>* samples);
  absl::Status WaitRecorded(PhaseResult& r, std::int64_t baseline, Clock::time_point t0);
  void ResetStatements() {
    absl::Status s = db_.ResetStatements();
    if (!s.ok() && statements_note_) {
      std::printf("   (no PostgreSQL statement profile: %s)\n", std::string(s.message()).c_str());
      statements_note_ = false;
    }
    statements_ = s.ok();
  }
  absl::Status Finish(PhaseResult& r, const DbCounts& before, const CpuTimes& cpu_before,
                      Clock::time_point t0);
  // CPU times of the stack and of the benchmark's own PostgreSQL cluster
  // (its postmaster found once, through the probe's backend): not the other
  // clusters a shared machine runs.
  CpuTimes SampleStackCpu() {
    if (postmaster_ < 0) {
      absl::StatusOr<int> backend = db_.BackendPid();
      postmaster_ = backend.ok() ? ParentPid(*backend) : 0;
    }
    return SampleCpu(stack_.Pids(), postmaster_);
  }

  const Config& config_;
  BenchStack& stack_;
  DbProbe& db_;
  const EventFactory& factory_;
  SinkClient sink_;
  char latency_phase_letter_ = 'A';  // per latency run: 'A', 'B', ...
  bool statements_ = false;  // pg_stat_statements available
  pid_t postmaster_ = -1;    // -1: not looked up yet; 0: unknown (every postgres counted)
  bool statements_note_ = true;
};

}  // namespace octo::perf
