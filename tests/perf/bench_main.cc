// octo-bench: the delivery benchmark. Not a test:
// scripts/bench.sh builds it and runs it against a throwaway PostgreSQL.
//
// Configuration: bench_config.h; the measured phases: bench_phases.h; the
// report: bench_report.h.
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
//               time); prints both and the ratio ordered / unordered
//               (ordered_phase.h).
//   flat        (on request) throughput and latency on the database as it is,
//               then with --flat_attempt_rows attempt rows stored, their
//               ratios, the attempt log's latency and the ordered ratio at
//               that size (flat_phase.h).
// --latency_rates=200,2000 runs the latency phase once per rate; --long_run
// makes it 10 minutes at 300 events/s.
// Every phase reports CPU microseconds per delivery per process.
// Everything on 127.0.0.1; every wait is bounded.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tests/perf/bench_config.h"
#include "tests/perf/bench_phases.h"
#include "tests/perf/bench_report.h"
#include "tests/perf/bench_stack.h"
#include "tests/perf/bench_workload.h"
#include "tests/perf/fanout_phase.h"
#include "tests/perf/flat_phase.h"
#include "tests/perf/ordered_phase.h"
#include "tests/perf/proc_stats.h"
#include "tests/perf/sink_server.h"
#include "tests/perf/wrk_runner.h"

namespace octo::perf {
namespace {

std::string RandomRunId() {
  std::random_device rd;
  return absl::StrFormat("%08x", rd());
}

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
  if (config.scope_probe) (*db)->ScopeTo(tenant->webhook_ids);
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
  RunResults results;
  auto& [throughput, latency, single, offer, long_run, latency_by_rate, fanout, backlog, wrk, wrk_problem] =
      results;
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
    } else if (phase == "ordered" || phase == "flat") {
      absl::Status s = phase == "flat"
                           ? RunFlat(bench, stack, **db, config, *tenant, json)
                           : RunOrdered(bench, stack, **db, config, factory.run_id(), config.scope_probe, json)
                                 .status();
      if (!s.ok()) {
        std::fprintf(stderr, "octo-bench: %s phase: %s\n%s", phase.c_str(), s.ToString().c_str(),
                     stack.LogTails().c_str());
        rc = 1;
        break;
      }
    } else if (phase == "fanout") {
      FanoutOptions options{.webhooks = config.fanout_webhooks,
                            .events = config.fanout_events,
                            .capabilities = config.capabilities,
                            .run_id = factory.run_id(),
                            .drain_timeout = config.drain_timeout};
      std::printf("\n== fanout phase: one event to %d webhooks of one connection, %d times\n",
                  options.webhooks, options.events);
      std::fflush(stdout);
      absl::StatusOr<FanoutResult> r = RunFanout(stack.SubscriptionChannel(), stack.PublisherChannel(),
                                                 stack.sink_port(), **db, options);
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


  PrintSummary(results, config, json);
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
