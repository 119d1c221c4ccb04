#include "services/delivery/service_config.h"

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/grpc_auth.h"
#include "services/common/net.h"
#include "services/common/pg_flags.h"
#include "services/delivery/retry_policy.h"

ABSL_FLAG(std::string, grpc_listen, octo::EnvOr("OCTO_DELIVERY_LISTEN", "127.0.0.1:50052"),
          "host:port to serve gRPC on; port 0 picks a free port (env OCTO_DELIVERY_LISTEN)");
ABSL_FLAG(std::string, database_url, octo::EnvOr("OCTO_DATABASE_URL", ""),
          "libpq conninfo of the PostgreSQL database; required (env OCTO_DATABASE_URL)");
ABSL_FLAG(int, db_pool_size, octo::EnvOrInt("OCTO_DELIVERY_DB_POOL_SIZE", 8),
          "maximum PostgreSQL connections of the gRPC handlers (env OCTO_DELIVERY_DB_POOL_SIZE)");
ABSL_FLAG(std::string, port_file, octo::EnvOr("OCTO_DELIVERY_PORT_FILE", ""),
          "if set, the bound port is written here once serving (env OCTO_DELIVERY_PORT_FILE)");
ABSL_FLAG(bool, allow_non_loopback, octo::EnvOr("OCTO_ALLOW_NON_LOOPBACK", "false") == "true",
          "allow --grpc_listen on a non-loopback address (env OCTO_ALLOW_NON_LOOPBACK=true)");
// Internal authentication (services/common/grpc_auth.h).
ABSL_FLAG(std::string, grpc_callers_dir, octo::EnvOr("OCTO_GRPC_CALLERS_DIR", ""),
          "directory of the internal callers' tokens, one file per caller identity "
          "(subscription, ...); required (env OCTO_GRPC_CALLERS_DIR)");
ABSL_FLAG(std::string, metrics_listen, octo::EnvOr("OCTO_DELIVERY_METRICS_LISTEN", "127.0.0.1:9102"),
          "host:port of the HTTP listener serving /metrics and /healthz; port 0 picks a free port "
          "(env OCTO_DELIVERY_METRICS_LISTEN)");
ABSL_FLAG(std::string, metrics_port_file, octo::EnvOr("OCTO_DELIVERY_METRICS_PORT_FILE", ""),
          "if set, the bound metrics port is written here once serving "
          "(env OCTO_DELIVERY_METRICS_PORT_FILE)");
ABSL_FLAG(absl::Duration, queue_stats_interval,
          octo::EnvOrDuration("OCTO_DELIVERY_QUEUE_STATS_INTERVAL", absl::Seconds(5)),
          "how often the queue gauges (octo_delivery_queue_deliveries, "
          "octo_delivery_oldest_due_age_seconds) are read from PostgreSQL "
          "(env OCTO_DELIVERY_QUEUE_STATS_INTERVAL)");
ABSL_FLAG(absl::Duration, enqueue_group_window,
          octo::EnvOrDuration("OCTO_DELIVERY_ENQUEUE_GROUP_WINDOW", absl::Milliseconds(1)),
          "group commit: Enqueue calls arriving within this window are stored in one "
          "transaction, each answered on its own; 0 stores each call alone "
          "(env OCTO_DELIVERY_ENQUEUE_GROUP_WINDOW)");
ABSL_FLAG(int, enqueue_group_max_events, octo::EnvOrInt("OCTO_DELIVERY_ENQUEUE_GROUP_MAX_EVENTS", 500),
          "group commit: a group is stored at once when this many events wait "
          "(env OCTO_DELIVERY_ENQUEUE_GROUP_MAX_EVENTS)");
ABSL_FLAG(int, enqueue_group_max_concurrent,
          octo::EnvOrInt("OCTO_DELIVERY_ENQUEUE_GROUP_MAX_CONCURRENT", 4),
          "group commit: groups stored at once; while all run, the next group keeps growing "
          "(env OCTO_DELIVERY_ENQUEUE_GROUP_MAX_CONCURRENT)");
ABSL_FLAG(bool, dispatch, octo::EnvOr("OCTO_DELIVERY_DISPATCH", "true") != "false",
          "run the dispatcher; --dispatch=false only accepts and stores events, e.g. for tests "
          "or a replica dedicated to Enqueue (env OCTO_DELIVERY_DISPATCH=false)");
ABSL_FLAG(bool, handoff, octo::EnvOr("OCTO_DELIVERY_HANDOFF", "true") != "false",
          "hand the unordered deliveries this process enqueues straight to its dispatcher, leased at their "
          "insert, as far as it has free slots (no claim); --handoff=false: every delivery is claimed "
          "(env OCTO_DELIVERY_HANDOFF=false)");
// The dispatcher (docs/delivery.md, "Queue and lease", "Request", "Outcomes").
ABSL_FLAG(int, claim_batch, octo::EnvOrInt("OCTO_DELIVERY_CLAIM_BATCH", 500),
          "deliveries claimed per query (env OCTO_DELIVERY_CLAIM_BATCH)");
ABSL_FLAG(int, max_in_flight, octo::EnvOrInt("OCTO_DELIVERY_MAX_IN_FLIGHT", 1000),
          "concurrent HTTP transfers at most (env OCTO_DELIVERY_MAX_IN_FLIGHT)");
ABSL_FLAG(int, max_per_host, octo::EnvOrInt("OCTO_DELIVERY_MAX_PER_HOST", 64),
          "concurrent HTTP transfers per destination host:port at most "
          "(env OCTO_DELIVERY_MAX_PER_HOST)");
ABSL_FLAG(absl::Duration, connect_timeout,
          octo::EnvOrDuration("OCTO_DELIVERY_CONNECT_TIMEOUT", absl::Seconds(5)),
          "TCP + TLS connect timeout of a delivery (env OCTO_DELIVERY_CONNECT_TIMEOUT)");
ABSL_FLAG(absl::Duration, request_timeout,
          octo::EnvOrDuration("OCTO_DELIVERY_REQUEST_TIMEOUT", absl::Seconds(15)),
          "total timeout of a delivery request (env OCTO_DELIVERY_REQUEST_TIMEOUT)");
ABSL_FLAG(absl::Duration, lease_margin,
          octo::EnvOrDuration("OCTO_DELIVERY_LEASE_MARGIN", absl::Seconds(15)),
          "a claim's lease is --request_timeout plus this (env OCTO_DELIVERY_LEASE_MARGIN)");
ABSL_FLAG(std::string, retry_schedule,
          octo::EnvOr("OCTO_DELIVERY_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h"),
          "delays before the 2nd, 3rd, ... attempt, each jittered by +-20% "
          "(env OCTO_DELIVERY_RETRY_SCHEDULE)");
ABSL_FLAG(absl::Duration, min_retry_after,
          octo::EnvOrDuration("OCTO_DELIVERY_MIN_RETRY_AFTER", absl::Seconds(1)),
          "lower bound of an honoured Retry-After (env OCTO_DELIVERY_MIN_RETRY_AFTER)");
ABSL_FLAG(absl::Duration, max_retry_after,
          octo::EnvOrDuration("OCTO_DELIVERY_MAX_RETRY_AFTER", absl::Hours(1)),
          "upper bound of an honoured Retry-After (env OCTO_DELIVERY_MAX_RETRY_AFTER)");
ABSL_FLAG(absl::Duration, poll_interval,
          octo::EnvOrDuration("OCTO_DELIVERY_POLL_INTERVAL", absl::Seconds(1)),
          "how often to look for due deliveries without a NOTIFY "
          "(env OCTO_DELIVERY_POLL_INTERVAL)");
ABSL_FLAG(std::string, allow_destination_cidrs,
          octo::EnvOr("OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS", ""),
          "SSRF guard: comma-separated CIDRs deliveries may connect to although they are "
          "loopback, private, link-local, ... (e.g. 127.0.0.0/8,::1/128 to deliver on this "
          "machine); empty = public addresses only "
          "(env OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS)");
ABSL_FLAG(std::string, ca_bundle, octo::EnvOr("OCTO_DELIVERY_CA_BUNDLE", ""),
          "PEM file of the certificate authorities receivers' HTTPS certificates are verified "
          "against, instead of the system's store (e.g. a private CA); empty = the system's "
          "(env OCTO_DELIVERY_CA_BUNDLE)");
ABSL_FLAG(std::string, test_resolve, "",
          "tests only: comma-separated host:port:address entries answered instead of DNS "
          "(libcurl's CURLOPT_RESOLVE); the SSRF guard still checks the address");
ABSL_FLAG(absl::Duration, disable_after_failing_for,
          octo::EnvOrDuration("OCTO_DELIVERY_DISABLE_AFTER_FAILING_FOR", absl::Hours(5 * 24)),
          "a webhook whose delivery attempts have all failed for longer than this is disabled "
          "and its pending deliveries cancelled; any success resets it "
          "(env OCTO_DELIVERY_DISABLE_AFTER_FAILING_FOR)");
ABSL_FLAG(int, result_batch, octo::EnvOrInt("OCTO_DELIVERY_RESULT_BATCH", 500),
          "attempt results written per transaction at most (env OCTO_DELIVERY_RESULT_BATCH)");
ABSL_FLAG(int, result_writers, octo::EnvOrInt("OCTO_DELIVERY_RESULT_WRITERS", 2),
          "threads writing attempt results, each with its own database connection "
          "(env OCTO_DELIVERY_RESULT_WRITERS)");
ABSL_FLAG(int, claimers, octo::EnvOrInt("OCTO_DELIVERY_CLAIMERS", 1),
          "threads claiming due deliveries, each with its own database connection: one claims while "
          "another dispatches what it claimed (env OCTO_DELIVERY_CLAIMERS)");
ABSL_FLAG(int, max_unreported_claims, octo::EnvOrInt("OCTO_DELIVERY_MAX_UNREPORTED_CLAIMS", 3),
          "a delivery whose claims end this many times in a row without a recorded result (the "
          "process stopped while sending it: a crash, kill -9) is quarantined: failed, the reason "
          "in its attempt log (env OCTO_DELIVERY_MAX_UNREPORTED_CLAIMS)");
ABSL_FLAG(int, max_queued_per_host, octo::EnvOrInt("OCTO_DELIVERY_MAX_QUEUED_PER_HOST", 0),
          "claimed deliveries that may wait for one destination beyond its --max_per_host "
          "running ones; more are released unsent for later; 0 = max(4 x max_per_host, "
          "max_in_flight / 2 - max_per_host) (env OCTO_DELIVERY_MAX_QUEUED_PER_HOST)");
ABSL_FLAG(std::string, retention, octo::EnvOr("OCTO_DELIVERY_RETENTION", "30d"),
          "how long events, deliveries and attempts are kept: whole weekly partitions older than this "
          "are dropped unless a delivery in them is pending; 30d or 720h, between 1d and 3650d "
          "(env OCTO_DELIVERY_RETENTION)");
ABSL_FLAG(absl::Duration, retention_interval,
          octo::EnvOrDuration("OCTO_DELIVERY_RETENTION_INTERVAL", absl::Hours(1)),
          "how often partitions are created ahead and expired ones dropped, 1s..24h "
          "(env OCTO_DELIVERY_RETENTION_INTERVAL)");

namespace octo::delivery {
namespace {

absl::Status CheckRange(const char* flag, long long value, long long min, long long max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": must be between ", min, " and ", max, ", got ", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::chrono::milliseconds> Millis(const char* flag, absl::Duration d,
                                                 absl::Duration min, absl::Duration max) {
  if (d < min || d > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": must be between ", absl::FormatDuration(min), " and ",
                     absl::FormatDuration(max), ", got ", absl::FormatDuration(d)));
  }
  return absl::ToChronoMilliseconds(d);
}

// The dispatcher's flags (its database_url is the caller's), validated.
// --ca_bundle (must be a readable file) and --test_resolve (host:port:address
// entries) into the dispatcher's transport options.
absl::Status TransportTrustFromFlags(DispatcherOptions& d) {
  d.ca_bundle = absl::GetFlag(FLAGS_ca_bundle);
  if (!d.ca_bundle.empty()) {
    std::FILE* f = std::fopen(d.ca_bundle.c_str(), "rb");
    if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat("--ca_bundle: cannot read ", d.ca_bundle));
    std::fclose(f);
  }
  for (absl::string_view entry : absl::StrSplit(absl::GetFlag(FLAGS_test_resolve), ',', absl::SkipEmpty())) {
    const std::vector<std::string> parts = absl::StrSplit(entry, absl::MaxSplits(':', 2));
    int port = 0;
    if (parts.size() != 3 || parts[0].empty() || parts[2].empty() || !absl::SimpleAtoi(parts[1], &port) ||
        port < 1 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--test_resolve: want host:port:address, got \"", entry, "\""));
    }
    d.resolve.emplace_back(entry);
  }
  return absl::OkStatus();
}

absl::StatusOr<DispatcherOptions> DispatcherFromFlags() {
  DispatcherOptions d;
  d.claim_batch = absl::GetFlag(FLAGS_claim_batch);
  d.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  d.max_per_host = absl::GetFlag(FLAGS_max_per_host);
  d.result_batch = absl::GetFlag(FLAGS_result_batch);
  if (absl::Status s = CheckRange("claim_batch", d.claim_batch, 1, 10000); !s.ok()) return s;
  if (absl::Status s = CheckRange("max_in_flight", d.max_in_flight, 1, 100000); !s.ok()) return s;
  if (absl::Status s = CheckRange("max_per_host", d.max_per_host, 1, d.max_in_flight); !s.ok())
    return s;
  if (absl::Status s = CheckRange("result_batch", d.result_batch, 1, 10000); !s.ok()) return s;
  d.result_writers = absl::GetFlag(FLAGS_result_writers);
  d.max_queued_per_host = absl::GetFlag(FLAGS_max_queued_per_host);
  if (absl::Status s = CheckRange("result_writers", d.result_writers, 1, 16); !s.ok()) return s;
  d.claimers = absl::GetFlag(FLAGS_claimers);
  if (absl::Status s = CheckRange("claimers", d.claimers, 1, 8); !s.ok()) return s;
  d.max_unreported_claims = absl::GetFlag(FLAGS_max_unreported_claims);
  if (absl::Status s = CheckRange("max_unreported_claims", d.max_unreported_claims, 1, 1000); !s.ok())
    return s;
  if (absl::Status s = CheckRange("max_queued_per_host", d.max_queued_per_host, 0, 1000000);
      !s.ok())
    return s;

  struct DurationFlag {
    const char* name;
    absl::Duration value;
    absl::Duration min;
    absl::Duration max;
    std::chrono::milliseconds* out;
  };
  const DurationFlag durations[] = {
      {"connect_timeout", absl::GetFlag(FLAGS_connect_timeout), absl::Milliseconds(1),
       absl::Minutes(10), &d.connect_timeout},
      {"request_timeout", absl::GetFlag(FLAGS_request_timeout), absl::Milliseconds(1),
       absl::Minutes(10), &d.request_timeout},
      {"lease_margin", absl::GetFlag(FLAGS_lease_margin), absl::Milliseconds(1), absl::Hours(1),
       &d.lease_margin},
      {"min_retry_after", absl::GetFlag(FLAGS_min_retry_after), absl::ZeroDuration(),
       absl::Hours(24 * 7), &d.min_retry_after},
      {"max_retry_after", absl::GetFlag(FLAGS_max_retry_after), absl::ZeroDuration(),
       absl::Hours(24 * 7), &d.max_retry_after},
      {"poll_interval", absl::GetFlag(FLAGS_poll_interval), absl::Milliseconds(1), absl::Hours(24),
       &d.poll_interval},
      {"disable_after_failing_for", absl::GetFlag(FLAGS_disable_after_failing_for),
       absl::Milliseconds(1), absl::Hours(24 * 365), &d.disable_after_failing_for},
  };
  for (const DurationFlag& f : durations) {
    absl::StatusOr<std::chrono::milliseconds> ms = Millis(f.name, f.value, f.min, f.max);
    if (!ms.ok()) return ms.status();
    *f.out = *ms;
  }
  if (d.connect_timeout > d.request_timeout) {
    return absl::InvalidArgumentError("--connect_timeout: must not exceed --request_timeout");
  }
  if (d.min_retry_after > d.max_retry_after) {
    return absl::InvalidArgumentError("--min_retry_after: must not exceed --max_retry_after");
  }
  absl::StatusOr<std::vector<std::chrono::milliseconds>> schedule =
      ParseRetrySchedule(absl::GetFlag(FLAGS_retry_schedule));
  if (!schedule.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--retry_schedule: ", schedule.status().message()));
  }
  d.retry_schedule = *std::move(schedule);
  if (absl::Status s = CheckRetrySpanFitsHealthLookback(
          MakeRetryPolicy(d.retry_schedule, d.min_retry_after, d.max_retry_after), absl::FromChrono(d.request_timeout));
      !s.ok())
    return s;
  absl::StatusOr<DestinationPolicy> policy =
      DestinationPolicy::Parse(absl::GetFlag(FLAGS_allow_destination_cidrs));
  if (!policy.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--allow_destination_cidrs: ", policy.status().message()));
  }
  d.destination_policy = *std::move(policy);
  if (absl::Status s = TransportTrustFromFlags(d); !s.ok()) return s;
  return d;
}

}  // namespace

absl::StatusOr<Config> ConfigFromFlags() {
  Config c;
  c.listen = absl::GetFlag(FLAGS_grpc_listen);
  c.database_url = absl::GetFlag(FLAGS_database_url);
  c.db_pool_size = absl::GetFlag(FLAGS_db_pool_size);
  c.port_file = absl::GetFlag(FLAGS_port_file);
  c.dispatch = absl::GetFlag(FLAGS_dispatch);
  c.handoff = absl::GetFlag(FLAGS_handoff);
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  c.metrics_port_file = absl::GetFlag(FLAGS_metrics_port_file);
  c.queue_stats_interval = absl::GetFlag(FLAGS_queue_stats_interval);
  c.group_commit = {
      absl::GetFlag(FLAGS_enqueue_group_window),
      static_cast<std::size_t>(std::max(1, absl::GetFlag(FLAGS_enqueue_group_max_events))),
      static_cast<std::size_t>(std::max(1, absl::GetFlag(FLAGS_enqueue_group_max_concurrent)))};

  const bool allow_non_loopback = absl::GetFlag(FLAGS_allow_non_loopback);
  if (absl::Status s = CheckListenAddress("--grpc_listen", c.listen, allow_non_loopback); !s.ok()) return s;
  if (absl::Status s = CheckListenAddress("--metrics_listen", c.metrics_listen, allow_non_loopback); !s.ok()) {
    return s;
  }
  if (c.queue_stats_interval < absl::Milliseconds(100) || c.queue_stats_interval > absl::Hours(1)) {
    return absl::InvalidArgumentError("--queue_stats_interval: must be between 100ms and 1h");
  }
  if (c.database_url.empty()) {
    return absl::InvalidArgumentError(
        "--database_url (or OCTO_DATABASE_URL) is required: a libpq conninfo");
  }
  if (absl::Status s = CheckRange("db_pool_size", c.db_pool_size, 1, 1000); !s.ok()) return s;
  absl::StatusOr<absl::Duration> retention = ParseRetention(absl::GetFlag(FLAGS_retention));
  if (!retention.ok()) return retention.status();
  c.retention.retention = *retention;
  c.retention.interval = absl::GetFlag(FLAGS_retention_interval);
  if (c.retention.interval < absl::Seconds(1) || c.retention.interval > absl::Hours(24)) {
    return absl::InvalidArgumentError(absl::StrCat("--retention_interval: must be between 1s and 24h, got ",
                                                   absl::FormatDuration(c.retention.interval)));
  }
  absl::StatusOr<PgConnectionOptions> pg = PgOptionsFromFlags();
  if (!pg.ok()) return pg.status();
  c.pg = *pg;
  // The dispatcher opens its own connections: they carry the same limits.
  absl::StatusOr<std::string> dispatcher_conninfo = PgConninfo(c.database_url, c.pg);
  if (!dispatcher_conninfo.ok()) return dispatcher_conninfo.status();
  absl::StatusOr<DispatcherOptions> dispatcher = DispatcherFromFlags();
  if (!dispatcher.ok()) return dispatcher.status();
  c.dispatcher = *std::move(dispatcher);
  c.dispatcher.database_url = *std::move(dispatcher_conninfo);
  absl::StatusOr<grpc_auth::CallerTokens> callers =
      grpc_auth::CallerTokens::LoadDir(absl::GetFlag(FLAGS_grpc_callers_dir));
  if (!callers.ok()) return callers.status();
  c.callers = *std::move(callers);
  return c;
}

}  // namespace octo::delivery
