#include "tests/perf/bench_report.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace octo::perf {
namespace {

constexpr double kGoalDeliveriesPerSecond = 20000;
constexpr double kGoalWrkRatio = 0.30;
constexpr double kGoalP99Ms = 25;
constexpr double kGoalRate = 2000;
constexpr double kGoalSingleEventsPerSecond = 5000;
constexpr double kGoalSingleP99Ms = 20;
constexpr double kGoalFanoutAcceptMs = 100;

}  // namespace

boost::json::object LatencyJson(const LatencyHistogram::Summary& l) {
  return {{"count", l.count},     {"p50_ms", Ms(l.p50_us)},   {"p90_ms", Ms(l.p90_us)},
          {"p99_ms", Ms(l.p99_us)}, {"p999_ms", Ms(l.p999_us)}, {"max_ms", Ms(l.max_us)},
          {"mean_ms", l.mean_us / 1000.0}};
}

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
  } else if (r.rate == 0) {  // the throughput phase and its kin (ordered, flat)
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
    std::printf("     %9s %10s %9s %9s %9s %8s %7s %8s  %s\n", "calls", "total ms", "mean ms", "rows", "hit/call",
                "rd/call", "fpi/cl", "walKB/cl", "query");
    for (const StatementStat& s : r.statements) {
      std::printf("     %9lld %10.0f %9.3f %9lld %9.0f %8.1f %7.1f %8.1f  %s\n", static_cast<long long>(s.calls),
                  s.total_ms, s.mean_ms, static_cast<long long>(s.rows), s.blks_hit, s.blks_read, s.wal_fpi,
                  s.wal_kb, s.query.substr(0, 110).c_str());
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
                          {"rows", s.rows}, {"blks_hit_per_call", s.blks_hit}, {"blks_read_per_call", s.blks_read},
                          {"wal_fpi_per_call", s.wal_fpi}, {"wal_kb_per_call", s.wal_kb}, {"query", s.query}});
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

void PrintSummary(const RunResults& results, const Config& config, boost::json::object& json) {
  const auto& [throughput, latency, single, offer, long_run, latency_by_rate, fanout, backlog, wrk,
               wrk_problem] = results;
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
}

}  // namespace octo::perf
