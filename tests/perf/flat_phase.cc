#include "tests/perf/flat_phase.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/perf/attempt_log_probe.h"
#include "tests/perf/bench_report.h"
#include "tests/perf/flat_background.h"
#include "tests/perf/flat_fill.h"
#include "tests/perf/ordered_phase.h"
#include "tests/perf/proc_stats.h"
#include "tests/perf/sink_server.h"

namespace octo::perf {
namespace {

constexpr double kGoalFlatBand = 0.10;      // at scale within +-10 % of empty
constexpr double kGoalPageP99Ms = 10;       // an attempt-log page
constexpr double kGoalOrderedRatio = 0.50;  // ordered / unordered
constexpr int kOtherTenantWebhooks = 5;

struct Pair {
  PhaseResult throughput;
  PhaseResult latency;
};

constexpr auto kQuietWaitLimit = std::chrono::seconds(120);

// A snapshot of PostgreSQL's background work (flat_background.h); an empty
// one when the statistics cannot be read (the figures stand without it).
BackgroundSnapshot Background(const Config& config) {
  absl::StatusOr<BackgroundSnapshot> s = SnapshotBackground(config.stack.database_url);
  if (!s.ok()) std::printf("   (%s)\n", std::string(s.status().message()).c_str());
  return s.ok() ? *std::move(s) : BackgroundSnapshot{};
}

// Prints and records what ran beside a measurement.
void ReportBackground(const char* what, const BackgroundSnapshot& before, const BackgroundSnapshot& after,
                      boost::json::object& json) {
  const std::string text = DescribeBackground(before, after);
  std::printf("   background during %s: %s\n", what, text.c_str());
  std::fflush(stdout);
  json[absl::StrCat("flat: background during ", what)] = text;
}

// Steps 1 and 3: the batched throughput phase and the latency phase. Both
// halves start the same way: once no autovacuum worker runs (at most
// kQuietWaitLimit), so that neither half measures the tail of the step
// before it (the fill's, or the database's set-up); a vacuum that the
// measured work itself starts stays in the figures, and every one is
// reported.
absl::StatusOr<Pair> Measure(Bench& bench, const Config& config, const char* when, char letter,
                             boost::json::object& json) {
  absl::StatusOr<std::chrono::milliseconds> waited = WaitForQuietDatabase(config.stack.database_url, kQuietWaitLimit);
  if (!waited.ok()) return waited.status();
  // Other work on the machine moves both figures: the load says how much.
  const std::string load = ReadMachineInfo().loadavg;
  std::printf("\n   (%s: load average %s; waited %.1f s for autovacuum to finish%s)\n", when, load.c_str(),
              static_cast<double>(waited->count()) / 1000, *waited >= kQuietWaitLimit ? ", gave up" : "");
  json[absl::StrCat("flat: load average, ", when)] = load;
  json[absl::StrCat("flat: waited for autovacuum (ms), ", when)] = waited->count();
  const BackgroundSnapshot start = Background(config);
  absl::StatusOr<PhaseResult> t = bench.Throughput(absl::StrCat("flat: throughput, ", when), nullptr, letter);
  if (!t.ok()) return t.status();
  PrintPhase(*t, config);
  const BackgroundSnapshot middle = Background(config);
  ReportBackground(t->name.c_str(), start, middle, json);
  absl::StatusOr<PhaseResult> l = bench.Latency(absl::StrCat("flat: latency, ", when), config.flat_latency_rate,
                                                config.rate_seconds, config.rate_interval_ms);
  if (!l.ok()) return l.status();
  PrintPhase(*l, config);
  ReportBackground(l->name.c_str(), middle, Background(config), json);
  json[t->name] = PhaseJson(*t);
  json[l->name] = PhaseJson(*l);
  return Pair{*std::move(t), *std::move(l)};
}

// The tenants whose history is stored: the bench tenant and others of their own.
absl::StatusOr<std::vector<Tenant>> FillTenants(BenchStack& stack, const Config& config, const Tenant& bench) {
  std::vector<Tenant> tenants{bench};
  for (int i = 0; i < config.flat_tenants; ++i) {
    absl::StatusOr<Tenant> t = CreateTenant(stack.SubscriptionChannel(), stack.sink_port(), kOtherTenantWebhooks,
                                            config.capabilities);
    if (!t.ok()) return t.status();
    tenants.push_back(*std::move(t));
  }
  return tenants;
}

absl::StatusOr<FillResult> Fill(const Config& config, const std::vector<Tenant>& tenants) {
  FillOptions options;
  options.attempt_rows = config.flat_attempt_rows;
  options.chunk_rows = config.flat_chunk_rows;
  options.time_limit = config.flat_fill_timeout;
  options.run_id = absl::StrFormat("%08x", std::random_device{}());
  // The benchmark's own booking; 'f' makes its id "<run>-0066-4000-8000-000000000000".
  EventFactory sample("00000000-0000-4000-8000-000000000000", options.run_id, 0);
  webhooks::v1::PublishEventRequest event;
  sample.Fill('f', 0, RealtimeNs(), event);
  options.booking_json = event.resource_json();
  options.booking_id = absl::StrCat(options.run_id, "-0066-4000-8000-000000000000");
  std::vector<FillTenant> fill;
  for (const Tenant& t : tenants) fill.push_back({t.supplier_id, t.webhook_ids});
  return FillHistory(config.stack.database_url, fill, options);
}

double Ratio(double at_scale, double empty) { return empty > 0 ? at_scale / empty : 0; }

const char* Band(bool measured, double ratio, bool higher_is_better) {
  const bool met = higher_is_better ? ratio >= 1 - kGoalFlatBand : ratio <= 1 + kGoalFlatBand;
  return Verdict(measured, met);
}

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

boost::json::object PrintFill(const FillResult& fill) {
  std::printf("   STORED                 %lld attempt rows, %lld deliveries, %lld events in %.0f s (%.0f attempt "
              "rows/s); VACUUM ANALYZE and CHECKPOINT %.0f s\n",
              static_cast<long long>(fill.attempts), static_cast<long long>(fill.deliveries),
              static_cast<long long>(fill.events), fill.fill_seconds,
              static_cast<double>(fill.attempts) / std::max(fill.fill_seconds, 1e-3), fill.vacuum_seconds);
  std::printf("   disk                   database %.2f GiB -> %.2f GiB; events %.2f GiB, deliveries %.2f GiB, "
              "delivery_attempts %.2f GiB (indexes included); created_at %s .. %s\n",
              static_cast<double>(fill.database_bytes_before) / kGiB,
              static_cast<double>(fill.database_bytes_after) / kGiB, static_cast<double>(fill.events_bytes) / kGiB,
              static_cast<double>(fill.deliveries_bytes) / kGiB, static_cast<double>(fill.attempts_bytes) / kGiB,
              fill.first_created_at.c_str(), fill.last_created_at.c_str());
  std::fflush(stdout);
  return {{"attempts", fill.attempts},
          {"deliveries", fill.deliveries},
          {"events", fill.events},
          {"fill_seconds", fill.fill_seconds},
          {"vacuum_seconds", fill.vacuum_seconds},
          {"database_bytes_before", fill.database_bytes_before},
          {"database_bytes_after", fill.database_bytes_after},
          {"events_bytes", fill.events_bytes},
          {"deliveries_bytes", fill.deliveries_bytes},
          {"attempts_bytes", fill.attempts_bytes}};
}

struct LogFigures {
  bool complete = false;
  double worst_p99_ms = 0;
};

// Step 4: the attempt log of the tenants' history.
absl::StatusOr<LogFigures> MeasureAttemptLog(BenchStack& stack, const Config& config,
                                             const std::vector<Tenant>& tenants, const FillResult& fill,
                                             boost::json::object& out) {
  std::vector<LogWebhook> hooks;
  for (const Tenant& t : tenants) {
    for (const std::string& w : t.webhook_ids) hooks.push_back({t.connection_id, w});
  }
  absl::StatusOr<std::vector<LogSample>> samples = SampleDeliveries(
      config.stack.database_url, hooks, fill.first_created_at, fill.last_created_at, config.flat_page_requests);
  if (!samples.ok()) return samples.status();
  std::printf("\n== flat: the attempt log at %lld attempt rows, %zu sequential calls each (random deliveries of %zu "
              "webhooks, through octo-subscription to octo-delivery)\n",
              static_cast<long long>(fill.attempts), samples->size(), hooks.size());
  std::fflush(stdout);
  const BackgroundSnapshot before = Background(config);
  const std::vector<LogCallStats> log =
      ProbeAttemptLog(stack.SubscriptionChannel(), *samples, config.flat_page_timeout);
  ReportBackground("the attempt log", before, Background(config), out);
  boost::json::array log_json;
  LogFigures figures{.complete = !log.empty()};
  for (const LogCallStats& s : log) {
    std::printf("   %-42s p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d calls, %d failed%s)%s%s\n", s.name.c_str(),
                Ms(s.latency.p50_us), Ms(s.latency.p99_us), Ms(s.latency.max_us), s.calls, s.failures,
                s.timed_out ? ", time limit reached" : "", s.first_error.empty() ? "" : "; first: ",
                s.first_error.c_str());
    figures.complete = figures.complete && s.complete();
    figures.worst_p99_ms = std::max(figures.worst_p99_ms, Ms(s.latency.p99_us));
    log_json.push_back({{"call", s.name}, {"calls", s.calls}, {"failures", s.failures},
                        {"latency", LatencyJson(s.latency)}});
  }
  out["attempt_log"] = log_json;
  std::fflush(stdout);
  return figures;
}

void PrintFlatSummary(const Config& config, const FillResult& fill, const Pair& empty, const Pair& full,
                      const LogFigures& log, const OrderedResult& ordered, boost::json::object& out) {
  const bool have_t = empty.throughput.complete && full.throughput.complete;
  const bool have_l = empty.latency.complete && full.latency.complete;
  const double t_ratio = Ratio(full.throughput.DeliveriesPerSecond(), empty.throughput.DeliveriesPerSecond());
  const double l_ratio = Ratio(Ms(full.latency.sink.latency.p99_us), Ms(empty.latency.sink.latency.p99_us));
  std::printf("\n== flat summary: %lld attempt rows stored (%.2f GiB database), figures of this run\n",
              static_cast<long long>(fill.attempts), static_cast<double>(fill.database_bytes_after) / kGiB);
  std::printf("   batched deliveries/s, every attempt recorded: empty %.0f, at scale %.0f; ratio %.3f   goal >= %.2f "
              "(within -10 %%): %s\n",
              empty.throughput.DeliveriesPerSecond(), full.throughput.DeliveriesPerSecond(), t_ratio,
              1 - kGoalFlatBand, Band(have_t, t_ratio, true));
  std::printf("   p99 publish->received at %d events/s: empty %.2f ms, at scale %.2f ms; ratio %.3f   goal <= %.2f "
              "(within +10 %%): %s\n",
              config.flat_latency_rate, Ms(empty.latency.sink.latency.p99_us), Ms(full.latency.sink.latency.p99_us),
              l_ratio, 1 + kGoalFlatBand, Band(have_l, l_ratio, false));
  std::printf("   attempt-log page p99 (worst of the three calls): %.2f ms   goal <= %.0f ms: %s\n",
              log.worst_p99_ms, kGoalPageP99Ms, Verdict(log.complete, log.worst_p99_ms <= kGoalPageP99Ms));
  std::printf("   ordered / unordered deliveries/s, %d bookings: %.0f / %.0f = %.3f   goal >= %.2f: %s\n",
              config.ordered_resources, ordered.ordered.DeliveriesPerSecond(), ordered.unordered.DeliveriesPerSecond(),
              ordered.ratio, kGoalOrderedRatio, Verdict(ordered.complete(), ordered.ratio >= kGoalOrderedRatio));
  out["throughput_ratio"] = t_ratio;
  out["latency_p99_ratio"] = l_ratio;
  out["attempt_log_p99_ms"] = log.worst_p99_ms;
  out["ordered_ratio"] = ordered.ratio;
  std::fflush(stdout);
}

}  // namespace

absl::Status RunFlat(Bench& bench, BenchStack& stack, DbProbe& db, const Config& config, const Tenant& tenant,
                     boost::json::object& json) {
  std::printf("\n== flat phase: throughput (N=%d x W=%d) and latency (%d events/s for %d s) on the database as "
              "it is, then with %lld attempt rows stored, then the attempt log and the ordered ratio at that size\n",
              config.events, config.webhooks, config.flat_latency_rate, config.rate_seconds,
              static_cast<long long>(config.flat_attempt_rows));
  std::fflush(stdout);
  boost::json::object out;
  db.ScopeTo(tenant.webhook_ids);
  absl::StatusOr<Pair> empty = Measure(bench, config, "empty database", 'e', out);
  if (!empty.ok()) return empty.status();

  absl::StatusOr<std::vector<Tenant>> tenants = FillTenants(stack, config, tenant);
  if (!tenants.ok()) return tenants.status();
  std::printf("\n== flat: storing the history\n");
  std::fflush(stdout);
  absl::StatusOr<FillResult> fill = Fill(config, *tenants);
  if (!fill.ok()) return fill.status();
  out["fill"] = PrintFill(*fill);

  absl::StatusOr<Pair> full = Measure(bench, config, "at scale", 'z', out);
  if (!full.ok()) return full.status();
  absl::StatusOr<LogFigures> log = MeasureAttemptLog(stack, config, *tenants, *fill, out);
  if (!log.ok()) return log.status();

  // Step 5: the ordered ratio at that size, each run counted on its own tenant.
  absl::StatusOr<OrderedResult> ordered =
      RunOrdered(bench, stack, db, config, absl::StrFormat("%08x", std::random_device{}()), true, out);
  db.ScopeTo(tenant.webhook_ids);
  if (!ordered.ok()) return ordered.status();

  PrintFlatSummary(config, *fill, *empty, *full, *log, *ordered, out);
  json["flat"] = std::move(out);
  return absl::OkStatus();
}

}  // namespace octo::perf
