// octo-bench: the delivery benchmark. Not a test:
// scripts/bench.sh builds it and runs it against a throwaway PostgreSQL.
//
// Phases (--phases, in this order):
//   throughput  N events (booking_update) to W webhooks on the sink, published
//               as fast as the service accepts them in batches of --batch with
//               --publishers RPCs in flight; deliveries/s counted until every
//               delivery was received by the sink AND its attempt is a row in
//               delivery_attempts.
//   latency     --rate events/s for --rate_seconds, open loop (batches every
//               --rate_interval_ms, each event stamped with its scheduled
//               time); publish->received percentiles from the sink.
//   wrk         wrk against the same sink, 2 KB POST bodies, for as long as
//               the throughput phase took: the HTTP ceiling of this machine.
//   split       (on request) the two halves apart: octo-delivery restarted
//               with --dispatch=false, N events published (enqueue only),
//               then restarted normally and the backlog drained (dispatch
//               only); each half with its rate, CPU and SQL profile.
//   single      (on request) single-event publishing: --single_clients
//               threads each with one PublishEvent (one event) in flight, to
//               a tenant with ONE webhook; events/s accepted and RPC p50/p99.
//   backlog     (on request) the split phase with --backlog_deliveries
//               deliveries (events = deliveries / W): a large backlog drained.
//   offer       (on request) --offer_rate events/s offered in batches of
//               --offer_batch for --offer_seconds, open loop as the latency
//               phase: events/s accepted, RPC and publish->received p99.
//   fanout      (on request) ONE event to --fanout_webhooks webhooks of one
//               connection, --fanout_events times (fanout_phase.h): the time
//               to accept it, and to deliver and record the fan-out.
//   long        (on request) the latency phase at --long_rate events/s for
//               --long_seconds (10 minutes at 300 events/s).
//   ordered     (on request) the throughput phase twice, on two new tenants of
//               W webhooks each, the events cycling through
//               --ordered_resources bookings: first unordered webhooks (the
//               baseline), then ordered ones (one delivery per booking at a
//               time); prints both and the ratio ordered / unordered.
// --latency_rates=200,2000 runs the latency phase once per rate; --long_run
// makes it 10 minutes at 300 events/s.
// Every phase reports CPU microseconds per delivery per process.
// Everything on 127.0.0.1; every wait is bounded.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/common/net.h"
#include "tests/perf/bench_stack.h"
#include "tests/perf/bench_workload.h"
#include "tests/perf/fanout_phase.h"
#include "tests/perf/proc_stats.h"
#include "tests/perf/single_publish.h"
#include "tests/perf/sink_server.h"
#include "tests/perf/wrk_runner.h"

#ifndef OCTO_SUBSCRIPTION_BIN
#define OCTO_SUBSCRIPTION_BIN ""
#endif
#ifndef OCTO_DELIVERY_BIN
#define OCTO_DELIVERY_BIN ""
#endif
#ifndef OCTO_BENCH_SINK_BIN
#define OCTO_BENCH_SINK_BIN ""
#endif

ABSL_FLAG(std::string, database_url, "", "libpq conninfo of the (empty or migrated) database; required");
ABSL_FLAG(std::string, subscription_bin, OCTO_SUBSCRIPTION_BIN, "octo-subscription binary");
ABSL_FLAG(std::string, delivery_bin, OCTO_DELIVERY_BIN, "octo-delivery binary");
ABSL_FLAG(std::string, sink_bin, OCTO_BENCH_SINK_BIN, "octo-bench-sink binary");
ABSL_FLAG(std::string, subscription_flags, "", "extra flags for octo-subscription, space-separated");
ABSL_FLAG(std::string, delivery_flags, "", "extra flags for octo-delivery, space-separated");
ABSL_FLAG(std::string, delivery_wrapper, "",
          "command prefix for octo-delivery, space-separated, e.g. "
          "'valgrind --tool=callgrind --callgrind-out-file=/tmp/callgrind.out'");
ABSL_FLAG(std::string, subscription_wrapper, "", "command prefix for octo-subscription, as above");
ABSL_FLAG(std::string, subscription_target, "",
          "use a running octo-subscription (loopback host:port) wired to a running octo-delivery "
          "instead of starting both");
ABSL_FLAG(std::string, callers_dir, "",
          "with --subscription_target: the directory of the internal callers' tokens the running "
          "services accept (scripts/run.sh: <data dir>/grpc-callers)");
ABSL_FLAG(int, sink_port, 0, "use a running octo-bench-sink on 127.0.0.1:<port> instead of starting one");
ABSL_FLAG(int, sink_threads, 2, "event loops of the sink");
ABSL_FLAG(std::string, work_dir, "", "logs, port files, the wrk script; default: a new /tmp/octo-bench.*");
ABSL_FLAG(std::string, phases, "throughput,latency,single,wrk",
          "which phases to run, in this order: throughput, latency, offer, single, fanout, wrk, "
          "long, split, backlog, ordered");
ABSL_FLAG(int, events, 20000, "throughput phase: events to publish (N)");
ABSL_FLAG(int, webhooks, 5, "webhooks on the sink that want every event (W)");
ABSL_FLAG(std::string, capabilities, "octo/pricing", "capabilities of the webhooks, comma-separated");
ABSL_FLAG(int, batch, 500, "throughput phase: events per PublishEvents call (at most 500)");
ABSL_FLAG(int, publishers, 4, "throughput phase: PublishEvents calls in flight");
ABSL_FLAG(int, resources, 0,
          "distinct bookings the events cycle through (0: each event its own booking, so every "
          "computed diff is the first one)");
ABSL_FLAG(int, throughput_timeout_s, 300, "throughput phase: give up after this long");
ABSL_FLAG(int, rate, 2000, "latency phase: events per second");
ABSL_FLAG(int, rate_seconds, 10, "latency phase: how long to publish");
ABSL_FLAG(int, rate_interval_ms, 10, "latency phase: one PublishEvents batch every this often");
ABSL_FLAG(int, rate_workers, 16, "latency phase: PublishEvents calls in flight at most");
ABSL_FLAG(int, drain_timeout_s, 120, "how long to wait for the last deliveries after publishing");
ABSL_FLAG(std::string, wrk_bin, "/usr/bin/wrk", "wrk binary (Debian package wrk)");
ABSL_FLAG(int, wrk_seconds, 0, "wrk duration; 0: the throughput phase's duration (5..60 s)");
ABSL_FLAG(int, wrk_connections, 64, "wrk connections");
ABSL_FLAG(int, wrk_threads, 2, "wrk threads");
ABSL_FLAG(int, wrk_body_bytes, 2048, "wrk POST body size");
ABSL_FLAG(std::string, json_out, "", "if set, the results are also written here as JSON");
ABSL_FLAG(std::string, latency_rates, "200,2000",
          "latency phase: events/s, comma-separated, one run each; empty: --rate");
ABSL_FLAG(bool, long_run, false,
          "latency phase: 10 minutes at 300 events/s (--latency_rates=300 --rate_seconds=600)");
ABSL_FLAG(int, single_clients, 64, "single phase: concurrent PublishEvent clients, one event each");
ABSL_FLAG(int, single_events, 20000, "single phase: events to publish");
ABSL_FLAG(int, backlog_deliveries, 1000000,
          "backlog phase: deliveries stored with the dispatcher off, then drained");
ABSL_FLAG(int, offer_rate, 1000, "offer phase: events per second offered");
ABSL_FLAG(int, offer_batch, 10, "offer phase: events per PublishEvents call");
ABSL_FLAG(int, offer_seconds, 10, "offer phase: how long to offer");
ABSL_FLAG(int, fanout_webhooks, 10000, "fanout phase: webhooks of the one connection");
ABSL_FLAG(int, fanout_events, 5, "fanout phase: events published, one at a time");
ABSL_FLAG(int, long_rate, 300, "long phase: events per second");
ABSL_FLAG(int, long_seconds, 600, "long phase: how long to publish");
ABSL_FLAG(int, ordered_resources, 1000, "ordered phase: distinct bookings the events cycle through");

namespace octo::perf {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr double kGoalDeliveriesPerSecond = 20000;
constexpr double kGoalWrkRatio = 0.30;
constexpr double kGoalP99Ms = 25;
constexpr double kGoalRate = 2000;
constexpr double kGoalSingleEventsPerSecond = 5000;
constexpr double kGoalSingleP99Ms = 20;
constexpr double kGoalFanoutAcceptMs = 100;

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
  int backlog_deliveries = 0;
  int offer_rate = 0;
  int offer_batch = 0;
  int offer_seconds = 0;
  int fanout_webhooks = 0;
  int fanout_events = 0;
  int long_rate = 0;
  int long_seconds = 0;
};

std::vector<std::string> SplitWords(const std::string& s, char sep = ' ') {
  return absl::StrSplit(s, sep, absl::SkipWhitespace());
}

absl::Status Range(const char* name, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be in ", lo, "..", hi, ", got ", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ConfigFromFlags() {
  Config c;
  c.stack.database_url = absl::GetFlag(FLAGS_database_url);
  if (c.stack.database_url.empty()) return absl::InvalidArgumentError("--database_url is required");
  c.stack.subscription_bin = absl::GetFlag(FLAGS_subscription_bin);
  c.stack.delivery_bin = absl::GetFlag(FLAGS_delivery_bin);
  c.stack.sink_bin = absl::GetFlag(FLAGS_sink_bin);
  c.stack.subscription_flags = SplitWords(absl::GetFlag(FLAGS_subscription_flags));
  c.stack.delivery_flags = SplitWords(absl::GetFlag(FLAGS_delivery_flags));
  c.stack.delivery_wrapper = SplitWords(absl::GetFlag(FLAGS_delivery_wrapper));
  c.stack.subscription_wrapper = SplitWords(absl::GetFlag(FLAGS_subscription_wrapper));
  // Callgrind and friends slow the start and make the exit (the profile dump) long.
  if (!c.stack.delivery_wrapper.empty() || !c.stack.subscription_wrapper.empty()) {
    c.stack.start_timeout = std::chrono::seconds(300);
    c.stack.stop_timeout = std::chrono::seconds(300);
  }
  c.stack.subscription_target = absl::GetFlag(FLAGS_subscription_target);
  c.stack.callers_dir = absl::GetFlag(FLAGS_callers_dir);
  c.stack.sink_port = absl::GetFlag(FLAGS_sink_port);
  c.stack.sink_threads = absl::GetFlag(FLAGS_sink_threads);
  if (!c.stack.subscription_target.empty()) {
    absl::StatusOr<HostPort> hp = ParseHostPort(c.stack.subscription_target);
    if (!hp.ok() || !IsLoopbackHost(hp->host)) {
      return absl::InvalidArgumentError("--subscription_target must be a loopback host:port");
    }
    // A running stack authenticates its callers: without its callers'
    // directory the first AdminService call would fail with UNAUTHENTICATED.
    if (c.stack.callers_dir.empty()) {
      return absl::InvalidArgumentError(
          "--subscription_target needs --callers_dir: the running stack's callers' token "
          "directory (scripts/run.sh: <data dir>/grpc-callers)");
    }
  } else {
    if (c.stack.subscription_bin.empty() || c.stack.delivery_bin.empty()) {
      return absl::InvalidArgumentError(
          "--subscription_bin and --delivery_bin are required (or --subscription_target)");
    }
  }
  if (c.stack.sink_port == 0 && c.stack.sink_bin.empty()) {
    return absl::InvalidArgumentError("--sink_bin is required (or --sink_port)");
  }
  c.stack.work_dir = absl::GetFlag(FLAGS_work_dir);
  if (c.stack.work_dir.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "octo-bench.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    c.stack.work_dir = pattern;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(c.stack.work_dir, ec);
  }
  c.phases = SplitWords(absl::GetFlag(FLAGS_phases), ',');
  for (const std::string& p : c.phases) {
    if (p != "throughput" && p != "latency" && p != "wrk" && p != "split" && p != "single" &&
        p != "backlog" && p != "offer" && p != "fanout" && p != "long" &&
        p != "ordered") {
      return absl::InvalidArgumentError(absl::StrCat("--phases: unknown phase '", p, "'"));
    }
  }
  c.events = absl::GetFlag(FLAGS_events);
  c.webhooks = absl::GetFlag(FLAGS_webhooks);
  c.capabilities = SplitWords(absl::GetFlag(FLAGS_capabilities), ',');
  c.batch = absl::GetFlag(FLAGS_batch);
  c.publishers = absl::GetFlag(FLAGS_publishers);
  c.resources = absl::GetFlag(FLAGS_resources);
  c.ordered_resources = absl::GetFlag(FLAGS_ordered_resources);
  c.throughput_timeout = std::chrono::seconds(absl::GetFlag(FLAGS_throughput_timeout_s));
  c.rate = absl::GetFlag(FLAGS_rate);
  c.rate_seconds = absl::GetFlag(FLAGS_rate_seconds);
  c.rate_interval_ms = absl::GetFlag(FLAGS_rate_interval_ms);
  c.rate_workers = absl::GetFlag(FLAGS_rate_workers);
  c.drain_timeout = std::chrono::seconds(absl::GetFlag(FLAGS_drain_timeout_s));
  c.wrk.wrk_bin = absl::GetFlag(FLAGS_wrk_bin);
  c.wrk.threads = absl::GetFlag(FLAGS_wrk_threads);
  c.wrk.connections = absl::GetFlag(FLAGS_wrk_connections);
  c.wrk.body_bytes = absl::GetFlag(FLAGS_wrk_body_bytes);
  c.wrk.work_dir = c.stack.work_dir;
  c.wrk_seconds = absl::GetFlag(FLAGS_wrk_seconds);
  c.json_out = absl::GetFlag(FLAGS_json_out);
  c.single_clients = absl::GetFlag(FLAGS_single_clients);
  c.single_events = absl::GetFlag(FLAGS_single_events);
  c.backlog_deliveries = absl::GetFlag(FLAGS_backlog_deliveries);
  c.offer_rate = absl::GetFlag(FLAGS_offer_rate);
  c.offer_batch = absl::GetFlag(FLAGS_offer_batch);
  c.offer_seconds = absl::GetFlag(FLAGS_offer_seconds);
  c.fanout_webhooks = absl::GetFlag(FLAGS_fanout_webhooks);
  c.fanout_events = absl::GetFlag(FLAGS_fanout_events);
  c.long_rate = absl::GetFlag(FLAGS_long_rate);
  c.long_seconds = absl::GetFlag(FLAGS_long_seconds);
  for (const std::string& r : SplitWords(absl::GetFlag(FLAGS_latency_rates), ',')) {
    int rate = 0;
    if (!absl::SimpleAtoi(r, &rate) || rate < 1 || rate > 100'000) {
      return absl::InvalidArgumentError(absl::StrCat("--latency_rates: not a rate: '", r, "'"));
    }
    c.latency_rates.push_back(rate);
  }
  if (absl::GetFlag(FLAGS_long_run)) {
    c.latency_rates = {300};
    c.rate_seconds = 600;
  }
  if (c.latency_rates.empty()) c.latency_rates = {c.rate};
  for (absl::Status s : {
           Range("events", c.events, 1, 2'000'000),
           Range("webhooks", c.webhooks, 1, 100),
           Range("batch", c.batch, 1, 500),
           Range("publishers", c.publishers, 1, 64),
           Range("resources", c.resources, 0, 10'000'000),
           Range("ordered_resources", c.ordered_resources, 1, 10'000'000),
           Range("throughput_timeout_s", absl::GetFlag(FLAGS_throughput_timeout_s), 1, 3600),
           Range("rate", c.rate, 1, 100'000),
           Range("rate_seconds", c.rate_seconds, 1, 600),
           Range("rate_interval_ms", c.rate_interval_ms, 1, 1000),
           Range("rate_workers", c.rate_workers, 1, 256),
           Range("drain_timeout_s", absl::GetFlag(FLAGS_drain_timeout_s), 1, 3600),
           Range("wrk_seconds", c.wrk_seconds, 0, 600),
           Range("wrk_connections", c.wrk.connections, 1, 10'000),
           Range("wrk_threads", c.wrk.threads, 1, 64),
           Range("wrk_body_bytes", c.wrk.body_bytes, 0, 1 << 20),
           Range("sink_threads", c.stack.sink_threads, 1, 64),
           Range("sink_port", c.stack.sink_port, 0, 65535),
           Range("single_clients", c.single_clients, 1, 256),
           Range("single_events", c.single_events, 1, 2'000'000),
           Range("backlog_deliveries", c.backlog_deliveries, 1, 10'000'000),
           Range("offer_rate", c.offer_rate, 1, 100'000),
           Range("offer_batch", c.offer_batch, 1, 500),
           Range("offer_seconds", c.offer_seconds, 1, 600),
           Range("fanout_webhooks", c.fanout_webhooks, 1, 100'000),
           Range("fanout_events", c.fanout_events, 1, 100),
           Range("long_rate", c.long_rate, 1, 100'000),
           Range("long_seconds", c.long_seconds, 1, 3600),
           // One batch every offer_batch / offer_rate seconds: 1 ms .. 1 s.
           Range("offer_batch * 1000 / offer_rate", c.offer_batch * 1000 / c.offer_rate, 1, 1000),
       }) {
    if (!s.ok()) return s;
  }
  return c;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double Ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }

std::string RandomRunId() {
  std::random_device rd;
  return absl::StrFormat("%08x", rd());
}

boost::json::object LatencyJson(const LatencyHistogram::Summary& l) {
  return {{"count", l.count},     {"p50_ms", Ms(l.p50_us)},   {"p90_ms", Ms(l.p90_us)},
          {"p99_ms", Ms(l.p99_us)}, {"p999_ms", Ms(l.p999_us)}, {"max_ms", Ms(l.max_us)},
          {"mean_ms", l.mean_us / 1000.0}};
}

// ------------------------------------------------------------------ phases --

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

  const Config& config_;
  BenchStack& stack_;
  DbProbe& db_;
  const EventFactory& factory_;
  SinkClient sink_;
  char latency_phase_letter_ = 'A';  // per latency run: 'A', 'B', ...
  bool statements_ = false;  // pg_stat_statements available
  bool statements_note_ = true;
};

absl::Status Bench::WaitReceived(PhaseResult& r, Clock::time_point t0, Clock::time_point deadline,
                                 const std::function<bool()>& done,
                                 const std::function<std::uint64_t()>& want,
                                 std::vector<std::pair<double, std::uint64_t>>* samples) {
  for (;;) {
    absl::StatusOr<SinkStats> s = sink_.Stats();
    if (!s.ok()) return s.status();
    const auto now = Clock::now();
    r.received = s->requests;
    if (samples != nullptr) samples->emplace_back(Seconds(now - t0), s->requests);
    const bool published = done();
    if (published && s->requests >= want()) {
      r.received_seconds = Seconds(now - t0);
      return absl::OkStatus();
    }
    if (now > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the sink received ", s->requests, " of ", want(), " deliveries in time",
                       published ? "" : " (publishing had not finished)"));
    }
    std::this_thread::sleep_for(20ms);
  }
}

absl::Status Bench::WaitRecorded(PhaseResult& r, std::int64_t baseline, Clock::time_point t0) {
  const auto deadline = Clock::now() + config_.drain_timeout;
  for (;;) {
    absl::StatusOr<std::int64_t> n = db_.CountAttempts();
    if (!n.ok()) return n.status();
    const auto now = Clock::now();
    r.recorded = *n - baseline;
    if (r.recorded >= static_cast<std::int64_t>(r.deliveries_expected)) {
      r.recorded_seconds = Seconds(now - t0);
      return absl::OkStatus();
    }
    if (now > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(r.recorded, " of ", r.deliveries_expected,
                                                      " attempts recorded in delivery_attempts in time"));
    }
    std::this_thread::sleep_for(20ms);
  }
}

absl::Status Bench::Finish(PhaseResult& r, const DbCounts& before, const CpuTimes& cpu_before,
                           Clock::time_point t0) {
  r.cpu = CpuDelta(cpu_before, SampleCpu(stack_.Pids()));
  r.wall_seconds = Seconds(Clock::now() - t0);
  if (statements_) {
    absl::StatusOr<std::vector<StatementStat>> top = db_.TopStatements(8);
    if (top.ok()) r.statements = std::move(*top);
  }
  absl::StatusOr<SinkStats> s = sink_.Stats();
  if (!s.ok()) return s.status();
  r.sink = *s;
  r.received = s->requests;
  if (s->requests > 0) {
    r.avg_body_bytes = static_cast<double>(s->body_bytes) / static_cast<double>(s->requests);
  }
  absl::StatusOr<DbCounts> c = db_.Counts();
  if (!c.ok()) return c.status();
  r.db = *c;
  r.db.attempts -= before.attempts;
  r.db.ok_attempts -= before.ok_attempts;
  r.db.deliveries -= before.deliveries;
  r.db.succeeded -= before.succeeded;
  r.db.pending -= before.pending;
  r.db.failed -= before.failed;
  r.db.events -= before.events;
  return absl::OkStatus();
}

absl::StatusOr<PhaseResult> Bench::Throughput(const std::string& name, const EventFactory* factory,
                                              char letter) {
  PhaseResult r;
  r.name = name;
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  absl::StatusOr<DbCounts> before = db_.Counts();
  if (!before.ok()) return before.status();
  const CpuTimes cpu_before = SampleCpu(stack_.Pids());

  const int batches = (config_.events + config_.batch - 1) / config_.batch;
  Publisher publisher(stack_.PublisherChannel(), factory != nullptr ? *factory : factory_, config_.publishers,
                      60s);
  const auto t0 = Clock::now();
  for (int b = 0; b < batches; ++b) {
    const std::int64_t first = std::int64_t{b} * config_.batch;
    publisher.Submit(letter, first, static_cast<int>(std::min<std::int64_t>(config_.batch, config_.events - first)), 0);
  }
  std::optional<double> publish_seconds;
  auto done = [&] {
    const PublishStats p = publisher.Stats();
    if (p.batches_ok + p.batches_failed < static_cast<std::uint64_t>(batches)) return false;
    if (!publish_seconds) publish_seconds = Seconds(Clock::now() - t0);
    return true;
  };
  auto want = [&]() -> std::uint64_t {
    const PublishStats p = publisher.Stats();
    return p.batches_ok + p.batches_failed < static_cast<std::uint64_t>(batches)
               ? static_cast<std::uint64_t>(config_.events) * config_.webhooks
               : p.deliveries;
  };
  std::vector<std::pair<double, std::uint64_t>> samples;
  absl::Status received = WaitReceived(r, t0, t0 + config_.throughput_timeout, done, want, &samples);
  if (!received.ok()) publisher.Abandon();
  publisher.Finish();
  r.publish = publisher.Stats();
  r.publish_seconds = publish_seconds.value_or(Seconds(Clock::now() - t0));
  r.events_accepted = r.publish.events;
  r.deliveries_expected = r.publish.deliveries;
  absl::Status recorded = received.ok() ? WaitRecorded(r, before->attempts, t0) : received;
  // Steady rate: received between 10 % and 90 % of the expected deliveries.
  const double lo = 0.1 * static_cast<double>(r.deliveries_expected);
  const double hi = 0.9 * static_cast<double>(r.deliveries_expected);
  std::optional<std::pair<double, std::uint64_t>> a, b;
  for (const auto& sample : samples) {
    if (!a && static_cast<double>(sample.second) >= lo) a = sample;
    if (!b && static_cast<double>(sample.second) >= hi) b = sample;
  }
  if (a && b && b->first > a->first) {
    r.steady_rate = static_cast<double>(b->second - a->second) / (b->first - a->first);
  }
  if (absl::Status s = Finish(r, *before, cpu_before, t0); !s.ok()) return s;
  if (r.publish.batches_failed > 0) {
    r.problem = absl::StrCat(r.publish.batches_failed, " batches failed: ", r.publish.first_error);
  } else if (!recorded.ok()) {
    r.problem = std::string(recorded.message());
  } else if (r.deliveries_expected != static_cast<std::uint64_t>(config_.events) * config_.webhooks) {
    r.problem = absl::StrCat("the service reported ", r.deliveries_expected, " deliveries, not N*W = ",
                             static_cast<std::uint64_t>(config_.events) * config_.webhooks);
  }
  r.complete = r.problem.empty();
  return r;
}

absl::StatusOr<PhaseResult> Bench::Latency(const std::string& name, int rate, int seconds,
                                           int interval_ms) {
  PhaseResult r;
  r.name = name;
  r.rate = rate;
  r.seconds = seconds;
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  absl::StatusOr<DbCounts> before = db_.Counts();
  if (!before.ok()) return before.status();
  const CpuTimes cpu_before = SampleCpu(stack_.Pids());

  const auto interval = std::chrono::milliseconds(interval_ms);
  const int per_batch = std::max(1, static_cast<int>(std::lround(rate * interval_ms / 1000.0)));
  const int batches = std::max(1, seconds * 1000 / interval_ms);
  r.batch_events = per_batch;
  Publisher publisher(stack_.PublisherChannel(), factory_, config_.rate_workers, 30s);
  const auto t0 = Clock::now();
  const std::int64_t t0_ns = RealtimeNs();
  for (int k = 0; k < batches; ++k) {
    std::this_thread::sleep_until(t0 + k * interval);
    const std::int64_t scheduled_ns =
        t0_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(k * interval).count();
    publisher.Submit(latency_phase_letter_, std::int64_t{k} * per_batch, per_batch, scheduled_ns);
    if (publisher.failed()) break;
  }
  std::optional<double> publish_seconds;  // the first publish to the last answer
  auto done = [&] {
    const PublishStats p = publisher.Stats();
    if (p.batches_ok + p.batches_failed < static_cast<std::uint64_t>(batches) && p.batches_failed == 0) {
      return false;
    }
    if (!publish_seconds) publish_seconds = Seconds(Clock::now() - t0);
    return true;
  };
  auto want = [&]() -> std::uint64_t { return publisher.Stats().deliveries; };
  absl::Status received = WaitReceived(r, t0, Clock::now() + config_.drain_timeout, done, want, nullptr);
  ++latency_phase_letter_;  // the next latency run publishes other keys
  if (!received.ok()) publisher.Abandon();
  publisher.Finish();
  r.publish = publisher.Stats();
  r.publish_seconds = publish_seconds.value_or(Seconds(Clock::now() - t0));
  r.events_accepted = r.publish.events;
  r.deliveries_expected = r.publish.deliveries;
  absl::Status recorded = received.ok() ? WaitRecorded(r, before->attempts, t0) : received;
  if (absl::Status s = Finish(r, *before, cpu_before, t0); !s.ok()) return s;
  if (r.publish.batches_failed > 0) {
    r.problem = absl::StrCat(r.publish.batches_failed, " batches failed: ", r.publish.first_error);
  } else if (!recorded.ok()) {
    r.problem = std::string(recorded.message());
  }
  r.complete = r.problem.empty();
  return r;
}

absl::StatusOr<std::pair<PhaseResult, PhaseResult>> Bench::Split(int events,
                                                                   const std::string& name) {
  PhaseResult enqueue;
  enqueue.name = name + ": enqueue only";
  PhaseResult dispatch;
  dispatch.name = name + ": dispatch only";
  const char letter = name == "split" ? 's' : 'b';
  if (absl::Status s = stack_.RestartDelivery({"--dispatch=false"}); !s.ok()) return s;
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  absl::StatusOr<DbCounts> before = db_.Counts();
  if (!before.ok()) return before.status();
  CpuTimes cpu_before = SampleCpu(stack_.Pids());

  // 1. Publish everything; nothing is sent.
  const int batches = (events + config_.batch - 1) / config_.batch;
  const auto t0 = Clock::now();
  {
    Publisher publisher(stack_.PublisherChannel(), factory_, config_.publishers, 60s);
    for (int b = 0; b < batches; ++b) {
      const std::int64_t first = std::int64_t{b} * config_.batch;
      publisher.Submit(letter, first, static_cast<int>(std::min<std::int64_t>(config_.batch, events - first)), 0);
    }
    publisher.Finish();
    enqueue.publish = publisher.Stats();
  }
  enqueue.publish_seconds = Seconds(Clock::now() - t0);
  enqueue.recorded_seconds = enqueue.publish_seconds;
  enqueue.events_accepted = enqueue.publish.events;
  enqueue.deliveries_expected = enqueue.publish.deliveries;
  if (absl::Status s = Finish(enqueue, *before, cpu_before, t0); !s.ok()) return s;
  if (enqueue.publish.batches_failed > 0) {
    enqueue.problem = absl::StrCat(enqueue.publish.batches_failed, " batches failed: ", enqueue.publish.first_error);
  } else if (enqueue.db.pending != static_cast<std::int64_t>(enqueue.deliveries_expected)) {
    enqueue.problem = absl::StrCat(enqueue.db.pending, " deliveries pending, expected ", enqueue.deliveries_expected);
  }
  enqueue.complete = enqueue.problem.empty();

  // 2. Restart with the dispatcher: drain the backlog.
  dispatch.events_accepted = enqueue.events_accepted;
  dispatch.deliveries_expected = enqueue.deliveries_expected;
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  before = db_.Counts();
  if (!before.ok()) return before.status();
  const auto t1 = Clock::now();
  if (absl::Status s = stack_.RestartDelivery({}); !s.ok()) return s;
  cpu_before = SampleCpu(stack_.Pids());  // the new process: counted from its start
  cpu_before.erase("octo-delivery");
  std::vector<std::pair<double, std::uint64_t>> samples;
  absl::Status received = WaitReceived(
      dispatch, t1, t1 + config_.throughput_timeout, [] { return true; },
      [&] { return dispatch.deliveries_expected; }, &samples);
  absl::Status recorded = received.ok() ? WaitRecorded(dispatch, before->attempts, t1) : received;
  const double lo = 0.1 * static_cast<double>(dispatch.deliveries_expected);
  const double hi = 0.9 * static_cast<double>(dispatch.deliveries_expected);
  std::optional<std::pair<double, std::uint64_t>> a, b;
  for (const auto& sample : samples) {
    if (!a && static_cast<double>(sample.second) >= lo) a = sample;
    if (!b && static_cast<double>(sample.second) >= hi) b = sample;
  }
  if (a && b && b->first > a->first) {
    dispatch.steady_rate = static_cast<double>(b->second - a->second) / (b->first - a->first);
  }
  if (absl::Status s = Finish(dispatch, *before, cpu_before, t1); !s.ok()) return s;
  if (!recorded.ok()) dispatch.problem = std::string(recorded.message());
  dispatch.complete = dispatch.problem.empty();
  return std::make_pair(std::move(enqueue), std::move(dispatch));
}

absl::StatusOr<PhaseResult> Bench::Single(const EventFactory& factory) {
  PhaseResult r;
  r.name = "single";
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  absl::StatusOr<DbCounts> before = db_.Counts();
  if (!before.ok()) return before.status();
  const CpuTimes cpu_before = SampleCpu(stack_.Pids());
  const auto t0 = Clock::now();
  SinglePublishOptions options;
  options.clients = config_.single_clients;
  options.events = config_.single_events;
  options.time_limit = config_.throughput_timeout;
  r.publish = PublishOneAtATime(stack_.PublisherChannel(), factory, 'p', options,
                                &r.publish_seconds);
  r.events_accepted = r.publish.events;
  r.deliveries_expected = r.publish.deliveries;
  absl::Status received = WaitReceived(
      r, t0, Clock::now() + config_.drain_timeout, [] { return true; },
      [&] { return r.deliveries_expected; }, nullptr);
  absl::Status recorded = received.ok() ? WaitRecorded(r, before->attempts, t0) : received;
  if (absl::Status s = Finish(r, *before, cpu_before, t0); !s.ok()) return s;
  if (r.publish.batches_failed > 0) {
    r.problem = absl::StrCat(r.publish.batches_failed, " calls failed: ", r.publish.first_error);
  } else if (r.events_accepted < static_cast<std::uint64_t>(config_.single_events)) {
    r.problem = absl::StrCat("only ", r.events_accepted, " events published in the time limit");
  } else if (!recorded.ok()) {
    r.problem = std::string(recorded.message());
  }
  r.complete = r.problem.empty();
  return r;
}

// ------------------------------------------------------------------ report --

void PrintPhase(const PhaseResult& r, const Config& c) {
  std::printf("\n== %s phase%s\n", r.name.c_str(), r.complete ? "" : "  ** INCOMPLETE **");
  if (!r.problem.empty()) std::printf("   problem: %s\n", r.problem.c_str());
  std::printf("   events accepted        %llu (%llu batches ok, %llu failed, %llu retries, %llu duplicates)\n",
              static_cast<unsigned long long>(r.events_accepted),
              static_cast<unsigned long long>(r.publish.batches_ok),
              static_cast<unsigned long long>(r.publish.batches_failed),
              static_cast<unsigned long long>(r.publish.retries),
              static_cast<unsigned long long>(r.publish.duplicates));
  std::printf("   deliveries             %llu expected, %llu received by the sink (%llu 2xx), %lld attempts "
              "recorded\n",
              static_cast<unsigned long long>(r.deliveries_expected),
              static_cast<unsigned long long>(r.received),
              static_cast<unsigned long long>(r.sink.responses_2xx), static_cast<long long>(r.recorded));
  std::printf("   database (this phase)  %lld events, %lld deliveries: %lld succeeded, %lld pending, %lld "
              "failed; %lld attempts (%lld 2xx)\n",
              static_cast<long long>(r.db.events), static_cast<long long>(r.db.deliveries),
              static_cast<long long>(r.db.succeeded), static_cast<long long>(r.db.pending),
              static_cast<long long>(r.db.failed), static_cast<long long>(r.db.attempts),
              static_cast<long long>(r.db.ok_attempts));
  std::printf("   PublishEvents          %.2f s to publish; RPC p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
              r.publish_seconds, Ms(r.publish.rpc_latency.p50_us), Ms(r.publish.rpc_latency.p99_us),
              Ms(r.publish.rpc_latency.max_us));
  if (absl::EndsWith(r.name, ": enqueue only")) {
    std::printf("   ENQUEUE RATE           %.0f events/s = %.0f deliveries/s stored (dispatcher off)\n",
                r.publish_seconds > 0 ? static_cast<double>(r.events_accepted) / r.publish_seconds : 0,
                r.publish_seconds > 0 ? static_cast<double>(r.deliveries_expected) / r.publish_seconds : 0);
  } else if (absl::EndsWith(r.name, ": dispatch only")) {
    std::printf("   DISPATCH RATE          %.0f deliveries/s sent and recorded from a backlog (%.2f s, "
                "restart included); steady %.0f/s\n",
                r.DeliveriesPerSecond(), r.recorded_seconds, r.steady_rate);
  } else if (r.name == "single") {
    std::printf("   SINGLE-EVENT PUBLISH   %.0f events/s accepted (%d clients, one PublishEvent each in "
                "flight, 1 webhook); RPC p50 %.2f ms, p99 %.2f ms\n",
                r.publish_seconds > 0 ? static_cast<double>(r.events_accepted) / r.publish_seconds : 0,
                c.single_clients, Ms(r.publish.rpc_latency.p50_us), Ms(r.publish.rpc_latency.p99_us));
  } else if (r.name == "throughput") {
    std::printf("   time                   %.2f s first publish -> last received; %.2f s -> every attempt "
                "recorded\n",
                r.received_seconds, r.recorded_seconds);
    std::printf("   DELIVERIES/S           %.0f sustained (all received and recorded: %llu / %.2f s)\n",
                r.DeliveriesPerSecond(), static_cast<unsigned long long>(r.deliveries_expected),
                r.recorded_seconds);
    std::printf("   steady rate            %.0f deliveries/s received between 10 %% and 90 %%\n", r.steady_rate);
  } else {
    std::printf("   offered                %d events/s x %d s in %d-event batches (%d webhooks: %d "
                "deliveries/s); publisher lag max %.1f ms\n",
                r.rate, r.seconds, r.batch_events, c.webhooks, r.rate * c.webhooks,
                static_cast<double>(r.publish.max_queue_wait_us) / 1000.0);
    std::printf("   ACCEPTED               %.0f events/s (%llu events, first publish -> last answer "
                "%.2f s)\n",
                r.AcceptedPerSecond(), static_cast<unsigned long long>(r.events_accepted),
                r.publish_seconds);
  }
  // (Split: the dispatch half's latency is mostly the time the events waited.)
  if (r.sink.latency.count > 0 && !absl::EndsWith(r.name, ": dispatch only")) {
    std::printf("   publish->received      p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms "
                "(%llu samples)\n",
                Ms(r.sink.latency.p50_us), Ms(r.sink.latency.p90_us), Ms(r.sink.latency.p99_us),
                Ms(r.sink.latency.p999_us), Ms(r.sink.latency.max_us),
                static_cast<unsigned long long>(r.sink.latency.count));
    std::printf("   body                   %.0f bytes on average; %llu new sink connections\n", r.avg_body_bytes,
                static_cast<unsigned long long>(r.sink.connections));
  }
  std::string cpu;
  for (const auto& [name, seconds] : r.cpu) absl::StrAppendFormat(&cpu, "%s %.2f s, ", name, seconds);
  if (!cpu.empty()) cpu.resize(cpu.size() - 2);
  std::printf("   CPU time               %s (of %.1f s wall x %u CPUs)\n", cpu.c_str(), r.wall_seconds,
              std::thread::hardware_concurrency());
  if (r.deliveries_expected > 0) {
    std::string per;
    for (const auto& [name, seconds] : r.cpu) {
      absl::StrAppendFormat(&per, "%s %.1f, ", name,
                            seconds * 1e6 / static_cast<double>(r.deliveries_expected));
    }
    if (!per.empty()) per.resize(per.size() - 2);
    std::printf("   CPU us per delivery    %s (%llu deliveries)\n", per.c_str(),
                static_cast<unsigned long long>(r.deliveries_expected));
  }
  if (!r.statements.empty()) {
    std::printf("   PostgreSQL statements by execution time (pg_stat_statements):\n");
    std::printf("     %9s %10s %9s %9s  %s\n", "calls", "total ms", "mean ms", "rows", "query");
    for (const StatementStat& s : r.statements) {
      std::printf("     %9lld %10.0f %9.3f %9lld  %s\n", static_cast<long long>(s.calls), s.total_ms,
                  s.mean_ms, static_cast<long long>(s.rows), s.query.c_str());
    }
  }
}

boost::json::object PhaseJson(const PhaseResult& r) {
  boost::json::object cpu;
  boost::json::object cpu_per_delivery;
  for (const auto& [name, seconds] : r.cpu) {
    cpu[name] = seconds;
    if (r.deliveries_expected > 0) {
      cpu_per_delivery[name] = seconds * 1e6 / static_cast<double>(r.deliveries_expected);
    }
  }
  boost::json::array statements;
  for (const StatementStat& s : r.statements) {
    statements.push_back({{"calls", s.calls}, {"total_ms", s.total_ms}, {"mean_ms", s.mean_ms},
                          {"rows", s.rows}, {"query", s.query}});
  }
  return {{"complete", r.complete},
          {"problem", r.problem},
          {"events_accepted", r.events_accepted},
          {"deliveries_expected", r.deliveries_expected},
          {"received", r.received},
          {"recorded", r.recorded},
          {"publish_seconds", r.publish_seconds},
          {"received_seconds", r.received_seconds},
          {"recorded_seconds", r.recorded_seconds},
          {"deliveries_per_second", r.DeliveriesPerSecond()},
          {"steady_rate", r.steady_rate},
          {"latency", LatencyJson(r.sink.latency)},
          {"publish_rpc_latency", LatencyJson(r.publish.rpc_latency)},
          {"publisher_max_lag_ms", static_cast<double>(r.publish.max_queue_wait_us) / 1000.0},
          {"avg_body_bytes", r.avg_body_bytes},
          {"db",
           {{"events", r.db.events},
            {"deliveries", r.db.deliveries},
            {"succeeded", r.db.succeeded},
            {"pending", r.db.pending},
            {"failed", r.db.failed},
            {"attempts", r.db.attempts},
            {"ok_attempts", r.db.ok_attempts}}},
          {"rate", r.rate},
          {"cpu_seconds", cpu},
          {"cpu_us_per_delivery", cpu_per_delivery},
          {"wall_seconds", r.wall_seconds},
          {"statements", statements}};
}

// Prints the fan-out phase; its JSON.
boost::json::object PrintFanout(const FanoutResult& r) {
  std::printf("   setup                  %.1f s to create the tenant and its %d webhooks\n", r.setup_seconds,
              r.webhooks);
  if (!r.problem.empty()) std::printf("   problem: %s  ** INCOMPLETE **\n", r.problem.c_str());
  boost::json::array events;
  for (std::size_t i = 0; i < r.accept_ms.size(); ++i) {
    const double received = i < r.received_ms.size() ? r.received_ms[i] : 0;
    const double recorded = i < r.recorded_ms.size() ? r.recorded_ms[i] : 0;
    std::printf("   event %zu                accepted in %.1f ms; every delivery received after %.0f ms, "
                "recorded after %.0f ms\n",
                i + 1, r.accept_ms[i], received, recorded);
    events.push_back({{"accept_ms", r.accept_ms[i]}, {"received_ms", received}, {"recorded_ms", recorded}});
  }
  const double median = Median(r.accept_ms);
  const double max = r.accept_ms.empty() ? 0 : *std::max_element(r.accept_ms.begin(), r.accept_ms.end());
  std::printf("   TIME TO ACCEPT         median %.1f ms, max %.1f ms (%zu events)\n", median, max,
              r.accept_ms.size());
  return {{"webhooks", r.webhooks},      {"complete", r.complete()}, {"problem", r.problem},
          {"setup_seconds", r.setup_seconds}, {"accept_median_ms", median}, {"accept_max_ms", max},
          {"events", events}};
}

const char* Verdict(bool measured, bool met) { return !measured ? "NOT MEASURED" : met ? "MET" : "NOT MET"; }

int Run(const Config& config) {
  const MachineInfo machine = ReadMachineInfo();
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  std::printf("octo-bench %s\n", date);
  std::printf("machine: %d CPUs, %s, %.1f GiB, %s\n", machine.cpus, machine.cpu_model.c_str(),
              machine.memory_gib, machine.kernel.c_str());
  std::printf("load average before the run: %s%s\n", machine.loadavg.c_str(),
              machine.load1 > 0.5 ? "  (other work is using this machine: figures are lower than on an idle one)" : "");
  std::printf("work dir: %s\n", config.stack.work_dir.c_str());
  std::fflush(stdout);

  BenchStack stack(config.stack);
  if (absl::Status s = stack.Start(); !s.ok()) {
    std::fprintf(stderr, "octo-bench: the stack did not start: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<DbProbe>> db = DbProbe::Connect(config.stack.database_url);
  if (!db.ok()) {
    std::fprintf(stderr, "octo-bench: %s\n", db.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::string> settings = (*db)->Settings();
  std::printf("database: %s\n", settings.ok() ? settings->c_str() : settings.status().ToString().c_str());
  std::printf("stack: subscription %s, sink 127.0.0.1:%d (%d threads)%s\n",
              stack.subscription_target().c_str(), stack.sink_port(), config.stack.sink_threads,
              config.stack.delivery_wrapper.empty() ? "" : ", octo-delivery under a wrapper");

  absl::StatusOr<Tenant> tenant =
      CreateTenant(stack.SubscriptionChannel(), stack.sink_port(), config.webhooks, config.capabilities);
  if (!tenant.ok()) {
    std::fprintf(stderr, "octo-bench: setup: %s\n%s", tenant.status().ToString().c_str(),
                 stack.LogTails().c_str());
    return 1;
  }
  EventFactory factory(tenant->supplier_id, RandomRunId(), config.resources);
  std::printf("workload: N=%d booking_update events x W=%d webhooks (capabilities %s), batches of %d, "
              "%d publishers; latency phase %s events/s for %d s; run %s\n",
              config.events, config.webhooks, absl::StrJoin(config.capabilities, ",").c_str(), config.batch,
              config.publishers, absl::StrJoin(config.latency_rates, ",").c_str(), config.rate_seconds,
              factory.run_id().c_str());
  std::fflush(stdout);

  Bench bench(config, stack, **db, factory);
  boost::json::object json{{"date", date},
                           {"machine",
                            {{"cpus", machine.cpus},
                             {"cpu_model", machine.cpu_model},
                             {"memory_gib", machine.memory_gib},
                             {"kernel", machine.kernel},
                             {"loadavg_before", machine.loadavg}}},
                           {"database", settings.ok() ? *settings : ""},
                           {"events", config.events},
                           {"webhooks", config.webhooks}};
  std::optional<PhaseResult> throughput, latency, single, offer, long_run;
  std::map<int, PhaseResult> latency_by_rate;
  std::optional<FanoutResult> fanout;
  std::optional<std::pair<PhaseResult, PhaseResult>> backlog;
  std::optional<WrkResult> wrk;
  std::string wrk_problem;
  int rc = 0;
  for (const std::string& phase : config.phases) {
    if (phase == "split" || phase == "backlog") {
      const int events = phase == "split"
                             ? config.events
                             : std::max(1, config.backlog_deliveries / config.webhooks);
      absl::StatusOr<std::pair<PhaseResult, PhaseResult>> r = bench.Split(events, phase);
      if (!r.ok()) {
        std::fprintf(stderr, "octo-bench: %s phase: %s\n%s", phase.c_str(),
                     r.status().ToString().c_str(), stack.LogTails().c_str());
        rc = 1;
        break;
      }
      PrintPhase(r->first, config);
      PrintPhase(r->second, config);
      json[phase + "_enqueue"] = PhaseJson(r->first);
      json[phase + "_dispatch"] = PhaseJson(r->second);
      if (phase == "backlog") backlog = *std::move(r);
    } else if (phase == "ordered") {
      // Two tenants of W webhooks on the same sink, the same workload: the
      // baseline unordered, then ordered per booking.
      std::printf("\n== ordered phase: N=%d events cycling through %d bookings, W=%d webhooks; unordered, then ordered\n",
                  config.events, config.ordered_resources, config.webhooks);
      std::fflush(stdout);
      std::optional<PhaseResult> pair[2];
      for (int ordered = 0; ordered < 2; ++ordered) {
        absl::StatusOr<Tenant> t = CreateTenant(stack.SubscriptionChannel(), stack.sink_port(), config.webhooks,
                                                config.capabilities, ordered == 1);
        if (!t.ok()) {
          std::fprintf(stderr, "octo-bench: ordered phase: %s\n", t.status().ToString().c_str());
          rc = 1;
          break;
        }
        EventFactory f(t->supplier_id, factory.run_id(), config.ordered_resources);
        absl::StatusOr<PhaseResult> r =
            bench.Throughput(ordered == 1 ? "ordered" : "ordered_baseline", &f, ordered == 1 ? 'o' : 'u');
        if (!r.ok()) {
          std::fprintf(stderr, "octo-bench: ordered phase: %s\n%s", r.status().ToString().c_str(),
                       stack.LogTails().c_str());
          rc = 1;
          break;
        }
        PrintPhase(*r, config);
        json[r->name] = PhaseJson(*r);
        pair[ordered] = *std::move(r);
      }
      if (rc != 0) break;
      const double base = pair[0]->DeliveriesPerSecond();
      const double ratio = base > 0 ? pair[1]->DeliveriesPerSecond() / base : 0;
      std::printf("   ordered / unordered deliveries/s (publish -> every attempt recorded): %.0f / %.0f = %.3f%s\n",
                  pair[1]->DeliveriesPerSecond(), base, ratio,
                  pair[0]->complete && pair[1]->complete ? "" : "  (INCOMPLETE: see the problems above)");
      json["ordered_ratio"] = ratio;
    } else if (phase == "fanout") {
      FanoutOptions options{.webhooks = config.fanout_webhooks,
                            .events = config.fanout_events,
                            .capabilities = config.capabilities,
                            .run_id = factory.run_id(),
                            .drain_timeout = config.drain_timeout};
      std::printf("\n== fanout phase: one event to %d webhooks of one connection, %d times\n",
                  options.webhooks, options.events);
      std::fflush(stdout);
      absl::StatusOr<FanoutResult> r = RunFanout(stack.SubscriptionChannel(), stack.sink_port(), **db, options);
      if (!r.ok()) {
        std::fprintf(stderr, "octo-bench: fanout phase: %s\n%s", r.status().ToString().c_str(),
                     stack.LogTails().c_str());
        rc = 1;
        break;
      }
      json["fanout"] = PrintFanout(*r);
      fanout = *std::move(r);
    } else if (phase == "throughput" || phase == "latency" || phase == "single" || phase == "offer" ||
               phase == "long") {
      std::vector<absl::StatusOr<PhaseResult>> runs;
      if (phase == "throughput") runs.push_back(bench.Throughput());
      if (phase == "latency") {
        for (int rate : config.latency_rates) {
          runs.push_back(bench.Latency("latency", rate, config.rate_seconds, config.rate_interval_ms));
          if (!runs.back().ok()) break;
        }
      }
      if (phase == "offer") {
        runs.push_back(bench.Latency("offer", config.offer_rate, config.offer_seconds,
                                     config.offer_batch * 1000 / config.offer_rate));
      }
      if (phase == "long") {
        runs.push_back(bench.Latency("long", config.long_rate, config.long_seconds,
                                     config.rate_interval_ms));
      }
      if (phase == "single") {
        absl::StatusOr<Tenant> one = CreateTenant(stack.SubscriptionChannel(), stack.sink_port(), 1,
                                                  config.capabilities);
        if (!one.ok()) {
          runs.push_back(one.status());
        } else {
          EventFactory single_factory(one->supplier_id, factory.run_id(), config.resources);
          runs.push_back(bench.Single(single_factory));
        }
      }
      for (absl::StatusOr<PhaseResult>& r : runs) {
        if (!r.ok()) {
          std::fprintf(stderr, "octo-bench: %s phase: %s\n%s", phase.c_str(),
                       r.status().ToString().c_str(), stack.LogTails().c_str());
          rc = 1;
          break;
        }
        PrintPhase(*r, config);
        json[phase == "latency" ? absl::StrCat("latency_", r->rate) : phase] = PhaseJson(*r);
        if (phase == "latency") latency_by_rate[r->rate] = *r;
        (phase == "throughput" ? throughput
         : phase == "single"   ? single
         : phase == "offer"    ? offer
         : phase == "long"     ? long_run
                               : latency) = std::move(*r);
      }
      if (rc != 0) break;
    } else {
      WrkOptions w = config.wrk;
      w.port = stack.sink_port();
      w.seconds = config.wrk_seconds > 0 ? config.wrk_seconds
                  : throughput         ? std::clamp(static_cast<int>(std::lround(throughput->recorded_seconds)), 5, 60)
                                       : 10;
      std::printf("\n== wrk (ceiling): %d s, %d connections, %d threads, %d-byte POST bodies\n", w.seconds,
                  w.connections, w.threads, w.body_bytes);
      std::fflush(stdout);
      SinkClient sink(stack.sink_port());
      (void)sink.Reset();
      absl::StatusOr<WrkResult> r = RunWrk(w);
      if (!r.ok()) {
        wrk_problem = std::string(r.status().message());
        std::printf("   wrk failed: %s\n", wrk_problem.c_str());
        continue;
      }
      absl::StatusOr<SinkStats> s = sink.Stats();
      std::printf("   %s\n   REQUESTS/S             %.0f (%llu requests, %llu non-2xx%s%s); the sink counted %llu\n",
                  r->command.c_str(), r->requests_per_second, static_cast<unsigned long long>(r->requests),
                  static_cast<unsigned long long>(r->non_2xx), r->socket_errors.empty() ? "" : "; ",
                  r->socket_errors.c_str(), s.ok() ? static_cast<unsigned long long>(s->requests) : 0ULL);
      std::printf("   %s\n", r->latency.c_str());
      json["wrk"] = {{"command", r->command},
                     {"seconds", w.seconds},
                     {"requests_per_second", r->requests_per_second},
                     {"requests", r->requests},
                     {"non_2xx", r->non_2xx}};
      wrk = std::move(*r);
    }
    std::fflush(stdout);
  }

  // Goals.
  const bool have_t = throughput.has_value() && throughput->complete;
  const double dps = have_t ? throughput->DeliveriesPerSecond() : 0;
  const bool have_w = have_t && wrk.has_value() && wrk->requests_per_second > 0;
  const double ratio = have_w ? dps / wrk->requests_per_second : 0;
  const bool have_l = latency.has_value() && latency->complete;
  const double p99 = have_l ? Ms(latency->sink.latency.p99_us) : 0;
  std::printf("\n== summary\n");
  std::printf("   deliveries/s sustained, every attempt recorded: %.0f   goal >= %.0f: %s\n", dps,
              kGoalDeliveriesPerSecond, Verdict(have_t, dps >= kGoalDeliveriesPerSecond));
  std::printf("   ratio to wrk (%.0f requests/s): %.3f   goal >= %.2f: %s\n",
              wrk ? wrk->requests_per_second : 0.0, ratio, kGoalWrkRatio, Verdict(have_w, ratio >= kGoalWrkRatio));
  const int latency_rate = latency ? latency->rate : config.rate;
  std::printf("   p99 publish->received at %d events/s: %.2f ms   goal <= %.0f ms at %.0f events/s: %s\n",
              latency_rate, p99, kGoalP99Ms, kGoalRate,
              Verdict(have_l && latency_rate >= kGoalRate, p99 <= kGoalP99Ms));
  const bool have_s = single.has_value() && single->complete && single->publish_seconds > 0;
  const double single_rate =
      have_s ? static_cast<double>(single->events_accepted) / single->publish_seconds : 0;
  const double single_p99 = have_s ? Ms(single->publish.rpc_latency.p99_us) : 0;
  std::printf("   single-event publishing (%d clients): %.0f events/s, RPC p99 %.2f ms   goal >= %.0f "
              "events/s and p99 <= %.0f ms: %s\n",
              config.single_clients, single_rate, single_p99, kGoalSingleEventsPerSecond,
              kGoalSingleP99Ms,
              Verdict(have_s, single_rate >= kGoalSingleEventsPerSecond &&
                                  single_p99 <= kGoalSingleP99Ms));
  // The figures of the product's performance table beyond the goals above.
  auto p99_at = [&](int rate) -> std::optional<double> {
    auto it = latency_by_rate.find(rate);
    if (it == latency_by_rate.end() || !it->second.complete) return std::nullopt;
    return Ms(it->second.sink.latency.p99_us);
  };
  auto figure = [](std::optional<double> v, const char* unit) {
    return v ? absl::StrFormat("%.2f %s", *v, unit) : std::string("NOT MEASURED");
  };
  const bool have_offer = offer.has_value() && offer->complete;
  const bool have_fanout = fanout.has_value() && fanout->complete() && !fanout->accept_ms.empty();
  const double fanout_accept = have_fanout ? Median(fanout->accept_ms) : 0;
  const bool have_long = long_run.has_value() && long_run->complete;
  const bool have_backlog = backlog.has_value() && backlog->second.complete;
  std::printf("\n== the performance table\n");
  std::printf("   (1) deliveries/s, batched publish, every attempt recorded: %s\n",
              have_t ? absl::StrFormat("%.0f", dps).c_str() : "NOT MEASURED");
  std::printf("   (2) ratio to wrk on the same sink: %s\n",
              have_w ? absl::StrFormat("%.3f", ratio).c_str() : "NOT MEASURED");
  std::printf("   (3) p99 publish->received, 2,000 events/s x %d webhooks, 10-ms batches: %s\n",
              config.webhooks, figure(p99_at(2000), "ms").c_str());
  std::printf("   (4) p99 publish->received, 200 events/s x %d webhooks: %s\n", config.webhooks,
              figure(p99_at(200), "ms").c_str());
  if (have_offer) {
    std::printf("   (5) %d events/s offered in %d-event batches: %.0f events/s accepted, PublishEvents "
                "p99 %.2f ms, publish->received p99 %.2f ms\n",
                offer->rate, offer->batch_events, offer->AcceptedPerSecond(),
                Ms(offer->publish.rpc_latency.p99_us), Ms(offer->sink.latency.p99_us));
  } else {
    std::printf("   (5) events/s offered in batches: NOT MEASURED (--phases=offer)\n");
  }
  std::printf("   (6) one event to %d webhooks of one connection, time to accept (median of %zu): %s   "
              "goal <= %.0f ms: %s\n",
              fanout ? fanout->webhooks : config.fanout_webhooks, fanout ? fanout->accept_ms.size() : 0,
              figure(have_fanout ? std::optional<double>(fanout_accept) : std::nullopt, "ms").c_str(),
              kGoalFanoutAcceptMs, Verdict(have_fanout, fanout_accept <= kGoalFanoutAcceptMs));
  std::printf("   (7) %d s at %d events/s x %d webhooks, p99 publish->received: %s\n",
              long_run ? long_run->seconds : config.long_seconds, long_run ? long_run->rate : config.long_rate,
              config.webhooks,
              figure(have_long ? std::optional<double>(Ms(long_run->sink.latency.p99_us)) : std::nullopt, "ms")
                  .c_str());
  std::printf("   single-event publishing: %s events/s, RPC p99 %s\n",
              have_s ? absl::StrFormat("%.0f", single_rate).c_str() : "NOT MEASURED",
              figure(have_s ? std::optional<double>(single_p99) : std::nullopt, "ms").c_str());
  std::printf("   backlog drain: %s\n",
              have_backlog ? absl::StrFormat("%llu deliveries at %.0f deliveries/s",
                                             static_cast<unsigned long long>(backlog->second.deliveries_expected),
                                             backlog->second.DeliveriesPerSecond())
                                 .c_str()
                           : "NOT MEASURED");
  json["summary"] = {{"offer_accepted_per_second", have_offer ? offer->AcceptedPerSecond() : 0.0},
                     {"offer_rpc_p99_ms", have_offer ? Ms(offer->publish.rpc_latency.p99_us) : 0.0},
                     {"offer_p99_ms", have_offer ? Ms(offer->sink.latency.p99_us) : 0.0},
                     {"fanout_accept_median_ms", fanout_accept},
                     {"long_p99_ms", have_long ? Ms(long_run->sink.latency.p99_us) : 0.0},
                     {"p99_ms_at_200", p99_at(200).value_or(0.0)},
                     {"p99_ms_at_2000", p99_at(2000).value_or(0.0)},
                     {"backlog_deliveries_per_second", have_backlog ? backlog->second.DeliveriesPerSecond() : 0.0},
                     {"deliveries_per_second", dps},
                     {"wrk_requests_per_second", wrk ? wrk->requests_per_second : 0.0},
                     {"ratio", ratio},
                     {"p99_ms_at_rate", p99},
                     {"rate", latency_rate},
                     {"single_events_per_second", single_rate},
                     {"single_rpc_p99_ms", single_p99},
                     {"wrk_problem", wrk_problem}};

  if (absl::Status s = stack.Stop(); !s.ok()) {
    std::printf("   warning: %s\n", std::string(s.message()).c_str());
  }
  if (!config.json_out.empty()) {
    std::ofstream out(config.json_out);
    out << boost::json::serialize(json) << "\n";
  }
  std::printf("   logs: %s\n", config.stack.work_dir.c_str());
  return rc;
}

}  // namespace
}  // namespace octo::perf

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the octo-webhooks delivery benchmark; run it with scripts/bench.sh");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<octo::perf::Config> config = octo::perf::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "octo-bench: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  return octo::perf::Run(*config);
}
