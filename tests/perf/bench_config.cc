#include "tests/perf/bench_config.h"

#include <stdlib.h>

#include <filesystem>
#include <system_error>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/net.h"

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
          "long, split, backlog, ordered, flat");
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
ABSL_FLAG(int, top_statements, 10,
          "statements of pg_stat_statements printed per phase, by execution time");
ABSL_FLAG(bool, scope_probe, false,
          "count only the bench tenant's deliveries of the running phase (db_probe.h), not whole tables: "
          "for a database that already holds history (the flat phase always does)");
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
ABSL_FLAG(int64_t, flat_attempt_rows, 10'000'000,
          "flat phase: attempt rows stored (set-based SQL) between the empty-database and the "
          "at-scale measurements");
ABSL_FLAG(int, flat_latency_rate, 200, "flat phase: events/s of its latency measurement");
ABSL_FLAG(int, flat_tenants, 20, "flat phase: other tenants (5 webhooks each) whose history is stored");
ABSL_FLAG(int, flat_chunk_rows, 250'000, "flat phase: attempt rows per fill statement (about)");
ABSL_FLAG(int, flat_fill_timeout_s, 5400, "flat phase: give up the fill after this long");
ABSL_FLAG(int, flat_page_requests, 2000,
          "flat phase: sequential requests of each attempt-log call (GetDelivery, ListDeliveries)");
ABSL_FLAG(int, flat_page_timeout_s, 300, "flat phase: time limit of each attempt-log loop");


namespace octo::perf {

namespace {

std::vector<std::string> SplitWords(const std::string& s, char sep = ' ') {
  return absl::StrSplit(s, sep, absl::SkipWhitespace());
}

absl::Status Range(const char* name, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be in ", lo, "..", hi, ", got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

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
        p != "ordered" && p != "flat") {
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
  c.top_statements = absl::GetFlag(FLAGS_top_statements);
  c.scope_probe = absl::GetFlag(FLAGS_scope_probe);
  c.backlog_deliveries = absl::GetFlag(FLAGS_backlog_deliveries);
  c.offer_rate = absl::GetFlag(FLAGS_offer_rate);
  c.offer_batch = absl::GetFlag(FLAGS_offer_batch);
  c.offer_seconds = absl::GetFlag(FLAGS_offer_seconds);
  c.fanout_webhooks = absl::GetFlag(FLAGS_fanout_webhooks);
  c.fanout_events = absl::GetFlag(FLAGS_fanout_events);
  c.long_rate = absl::GetFlag(FLAGS_long_rate);
  c.long_seconds = absl::GetFlag(FLAGS_long_seconds);
  c.flat_attempt_rows = absl::GetFlag(FLAGS_flat_attempt_rows);
  c.flat_latency_rate = absl::GetFlag(FLAGS_flat_latency_rate);
  c.flat_tenants = absl::GetFlag(FLAGS_flat_tenants);
  c.flat_chunk_rows = absl::GetFlag(FLAGS_flat_chunk_rows);
  c.flat_fill_timeout = std::chrono::seconds(absl::GetFlag(FLAGS_flat_fill_timeout_s));
  c.flat_page_requests = absl::GetFlag(FLAGS_flat_page_requests);
  c.flat_page_timeout = std::chrono::seconds(absl::GetFlag(FLAGS_flat_page_timeout_s));
  if (c.flat_attempt_rows < 0 || c.flat_attempt_rows > 200'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--flat_attempt_rows must be in 0..200000000, got ", c.flat_attempt_rows));
  }
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
           Range("top_statements", c.top_statements, 1, 100),
           Range("backlog_deliveries", c.backlog_deliveries, 1, 10'000'000),
           Range("offer_rate", c.offer_rate, 1, 100'000),
           Range("offer_batch", c.offer_batch, 1, 500),
           Range("offer_seconds", c.offer_seconds, 1, 600),
           Range("fanout_webhooks", c.fanout_webhooks, 1, 100'000),
           Range("fanout_events", c.fanout_events, 1, 100),
           Range("long_rate", c.long_rate, 1, 100'000),
           Range("long_seconds", c.long_seconds, 1, 3600),
           Range("flat_latency_rate", c.flat_latency_rate, 1, 100'000),
           Range("flat_tenants", c.flat_tenants, 0, 1000),
           Range("flat_chunk_rows", c.flat_chunk_rows, 1000, 10'000'000),
           Range("flat_fill_timeout_s", absl::GetFlag(FLAGS_flat_fill_timeout_s), 1, 86'400),
           Range("flat_page_requests", c.flat_page_requests, 1, 1'000'000),
           Range("flat_page_timeout_s", absl::GetFlag(FLAGS_flat_page_timeout_s), 1, 3600),
           // One batch every offer_batch / offer_rate seconds: 1 ms .. 1 s.
           Range("offer_batch * 1000 / offer_rate", c.offer_batch * 1000 / c.offer_rate, 1, 1000),
       }) {
    if (!s.ok()) return s;
  }
  return c;
}

}  // namespace octo::perf
