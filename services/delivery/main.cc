// octo-delivery: the gRPC server for DeliveryService, and the dispatcher that
// sends what it stores. Wiring only: flags -> Config -> migrations -> pool ->
// store -> service -> server, then the dispatcher; everything else is in
// octo_delivery.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "services/common/log.h"
#include "services/common/metrics.h"
#include "services/common/migrations.h"
#include "services/common/net.h"
#include "services/common/pg_connection.h"
#include "services/common/pg_health_reporter.h"
#include "services/common/pg_pool.h"
#include "services/delivery/delivery_service.h"
#include "services/delivery/dispatcher.h"
#include "services/delivery/event_validation.h"
#include "services/delivery/queue_stats.h"
#include "services/delivery/operations_service.h"
#include "services/delivery/operations_store.h"
#include "services/delivery/group_commit.h"
#include "services/delivery/store.h"
#include "services/schema/migrations.h"

namespace {

// A duration flag's default from the environment (absl syntax: "250ms",
// "1h30m"); an unparsable value is a configuration error.
absl::Duration EnvOrDuration(const char* name, absl::Duration fallback) {
  const std::string text = octo::EnvOr(name, "");
  if (text.empty()) return fallback;
  absl::Duration value;
  if (!absl::ParseDuration(text, &value)) {
    std::fprintf(stderr, "octo-delivery: %s: not a duration (e.g. 5s, 250ms): %s\n", name,
                 text.c_str());
    std::exit(2);
  }
  return value;
}

}  // namespace

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
ABSL_FLAG(std::string, metrics_listen, octo::EnvOr("OCTO_DELIVERY_METRICS_LISTEN", "127.0.0.1:9102"),
          "host:port of the HTTP listener serving /metrics and /healthz; port 0 picks a free port "
          "(env OCTO_DELIVERY_METRICS_LISTEN)");
ABSL_FLAG(std::string, metrics_port_file, octo::EnvOr("OCTO_DELIVERY_METRICS_PORT_FILE", ""),
          "if set, the bound metrics port is written here once serving "
          "(env OCTO_DELIVERY_METRICS_PORT_FILE)");
ABSL_FLAG(absl::Duration, queue_stats_interval,
          EnvOrDuration("OCTO_DELIVERY_QUEUE_STATS_INTERVAL", absl::Seconds(5)),
          "how often the queue gauges (octo_delivery_queue_deliveries, "
          "octo_delivery_oldest_due_age_seconds) are read from PostgreSQL "
          "(env OCTO_DELIVERY_QUEUE_STATS_INTERVAL)");
ABSL_FLAG(absl::Duration, enqueue_group_window,
          EnvOrDuration("OCTO_DELIVERY_ENQUEUE_GROUP_WINDOW", absl::Milliseconds(1)),
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
// The dispatcher (docs/delivery.md, "Queue and lease", "Request", "Outcomes").
ABSL_FLAG(int, claim_batch, octo::EnvOrInt("OCTO_DELIVERY_CLAIM_BATCH", 200),
          "deliveries claimed per query (env OCTO_DELIVERY_CLAIM_BATCH)");
ABSL_FLAG(int, max_in_flight, octo::EnvOrInt("OCTO_DELIVERY_MAX_IN_FLIGHT", 1000),
          "concurrent HTTP transfers at most (env OCTO_DELIVERY_MAX_IN_FLIGHT)");
ABSL_FLAG(int, max_per_host, octo::EnvOrInt("OCTO_DELIVERY_MAX_PER_HOST", 64),
          "concurrent HTTP transfers per destination host:port at most "
          "(env OCTO_DELIVERY_MAX_PER_HOST)");
ABSL_FLAG(absl::Duration, connect_timeout,
          EnvOrDuration("OCTO_DELIVERY_CONNECT_TIMEOUT", absl::Seconds(5)),
          "TCP + TLS connect timeout of a delivery (env OCTO_DELIVERY_CONNECT_TIMEOUT)");
ABSL_FLAG(absl::Duration, request_timeout,
          EnvOrDuration("OCTO_DELIVERY_REQUEST_TIMEOUT", absl::Seconds(15)),
          "total timeout of a delivery request (env OCTO_DELIVERY_REQUEST_TIMEOUT)");
ABSL_FLAG(absl::Duration, lease_margin,
          EnvOrDuration("OCTO_DELIVERY_LEASE_MARGIN", absl::Seconds(15)),
          "a claim's lease is --request_timeout plus this (env OCTO_DELIVERY_LEASE_MARGIN)");
ABSL_FLAG(std::string, retry_schedule,
          octo::EnvOr("OCTO_DELIVERY_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h"),
          "delays before the 2nd, 3rd, ... attempt, each jittered by +-20% "
          "(env OCTO_DELIVERY_RETRY_SCHEDULE)");
ABSL_FLAG(absl::Duration, min_retry_after,
          EnvOrDuration("OCTO_DELIVERY_MIN_RETRY_AFTER", absl::Seconds(1)),
          "lower bound of an honoured Retry-After (env OCTO_DELIVERY_MIN_RETRY_AFTER)");
ABSL_FLAG(absl::Duration, max_retry_after,
          EnvOrDuration("OCTO_DELIVERY_MAX_RETRY_AFTER", absl::Hours(1)),
          "upper bound of an honoured Retry-After (env OCTO_DELIVERY_MAX_RETRY_AFTER)");
ABSL_FLAG(absl::Duration, poll_interval,
          EnvOrDuration("OCTO_DELIVERY_POLL_INTERVAL", absl::Seconds(1)),
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
          EnvOrDuration("OCTO_DELIVERY_DISABLE_AFTER_FAILING_FOR", absl::Hours(5 * 24)),
          "a webhook whose delivery attempts have all failed for longer than this is disabled "
          "and its pending deliveries cancelled; any success resets it "
          "(env OCTO_DELIVERY_DISABLE_AFTER_FAILING_FOR)");
ABSL_FLAG(int, result_batch, octo::EnvOrInt("OCTO_DELIVERY_RESULT_BATCH", 500),
          "attempt results written per transaction at most (env OCTO_DELIVERY_RESULT_BATCH)");
ABSL_FLAG(int, result_writers, octo::EnvOrInt("OCTO_DELIVERY_RESULT_WRITERS", 1),
          "threads writing attempt results, each with its own database connection "
          "(env OCTO_DELIVERY_RESULT_WRITERS)");
ABSL_FLAG(int, max_unreported_claims, octo::EnvOrInt("OCTO_DELIVERY_MAX_UNREPORTED_CLAIMS", 3),
          "a delivery whose claims end this many times in a row without a recorded result (the "
          "process stopped while sending it: a crash, kill -9) is quarantined: failed, the reason "
          "in its attempt log (env OCTO_DELIVERY_MAX_UNREPORTED_CLAIMS)");
ABSL_FLAG(int, max_queued_per_host, octo::EnvOrInt("OCTO_DELIVERY_MAX_QUEUED_PER_HOST", 0),
          "claimed deliveries that may wait for one destination beyond its --max_per_host "
          "running ones; more are released unsent for later; 0 = max(4 x max_per_host, "
          "max_in_flight / 2 - max_per_host) (env OCTO_DELIVERY_MAX_QUEUED_PER_HOST)");

// The limits of every PostgreSQL connection of the process (docs/decisions.md,
// "One PostgreSQL layer"); the defaults are PgConnectionOptions'.
ABSL_FLAG(absl::Duration, pg_statement_timeout,
          octo::EnvOrDuration("OCTO_PG_STATEMENT_TIMEOUT",
                              octo::PgConnectionOptions{}.statement_timeout),
          "a database statement running longer is cancelled and its call fails UNAVAILABLE; "
          "0 = off (env OCTO_PG_STATEMENT_TIMEOUT)");
ABSL_FLAG(absl::Duration, pg_lock_timeout,
          octo::EnvOrDuration("OCTO_PG_LOCK_TIMEOUT", octo::PgConnectionOptions{}.lock_timeout),
          "a wait for a row or table lock longer than this fails UNAVAILABLE instead of pinning "
          "the connection; 0 = off (env OCTO_PG_LOCK_TIMEOUT)");
ABSL_FLAG(absl::Duration, pg_idle_in_transaction_timeout,
          octo::EnvOrDuration("OCTO_PG_IDLE_IN_TRANSACTION_TIMEOUT",
                              octo::PgConnectionOptions{}.idle_in_transaction_timeout),
          "the server ends a session idle inside a transaction this long, releasing its locks; "
          "0 = off (env OCTO_PG_IDLE_IN_TRANSACTION_TIMEOUT)");
ABSL_FLAG(absl::Duration, pg_connect_timeout,
          octo::EnvOrDuration("OCTO_PG_CONNECT_TIMEOUT",
                              octo::PgConnectionOptions{}.connect_timeout),
          "opening a database connection gives up after this; whole seconds, at least 2s "
          "(env OCTO_PG_CONNECT_TIMEOUT)");
ABSL_FLAG(absl::Duration, pg_keepalives_idle,
          octo::EnvOrDuration("OCTO_PG_KEEPALIVES_IDLE",
                              octo::PgConnectionOptions{}.keepalives_idle),
          "TCP keepalive: a database connection silent this long is probed; whole seconds "
          "(env OCTO_PG_KEEPALIVES_IDLE)");
ABSL_FLAG(absl::Duration, pg_keepalives_interval,
          octo::EnvOrDuration("OCTO_PG_KEEPALIVES_INTERVAL",
                              octo::PgConnectionOptions{}.keepalives_interval),
          "TCP keepalive: time between probes; whole seconds (env OCTO_PG_KEEPALIVES_INTERVAL)");
ABSL_FLAG(int, pg_keepalives_count,
          octo::EnvOrInt("OCTO_PG_KEEPALIVES_COUNT", octo::PgConnectionOptions{}.keepalives_count),
          "TCP keepalive: unanswered probes before the connection is declared dead "
          "(env OCTO_PG_KEEPALIVES_COUNT)");
ABSL_FLAG(absl::Duration, pg_tcp_user_timeout,
          octo::EnvOrDuration("OCTO_PG_TCP_USER_TIMEOUT",
                              octo::PgConnectionOptions{}.tcp_user_timeout),
          "a connection whose sent data stays unacknowledged this long is dropped (a request "
          "in flight to a vanished server); whole milliseconds, 0 = the system's default "
          "(env OCTO_PG_TCP_USER_TIMEOUT)");

namespace octo::delivery {
namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(10);

struct Config {
  std::string listen;
  std::string database_url;
  int db_pool_size = 8;
  std::string port_file;
  bool dispatch = true;
  DispatcherOptions dispatcher;
  std::string metrics_listen;
  std::string metrics_port_file;
  absl::Duration queue_stats_interval = absl::Seconds(5);
  PgConnectionOptions pg;
};

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

// The PostgreSQL connection limits from the --pg_* flags, validated.
absl::StatusOr<PgConnectionOptions> PgOptionsFromFlags() {
  PgConnectionOptions o;
  o.statement_timeout = absl::GetFlag(FLAGS_pg_statement_timeout);
  o.lock_timeout = absl::GetFlag(FLAGS_pg_lock_timeout);
  o.idle_in_transaction_timeout = absl::GetFlag(FLAGS_pg_idle_in_transaction_timeout);
  o.connect_timeout = absl::GetFlag(FLAGS_pg_connect_timeout);
  o.keepalives_idle = absl::GetFlag(FLAGS_pg_keepalives_idle);
  o.keepalives_interval = absl::GetFlag(FLAGS_pg_keepalives_interval);
  o.keepalives_count = absl::GetFlag(FLAGS_pg_keepalives_count);
  o.tcp_user_timeout = absl::GetFlag(FLAGS_pg_tcp_user_timeout);
  if (absl::Status s = ValidatePgConnectionOptions(o); !s.ok()) return s;
  return o;
}

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

absl::StatusOr<Config> ConfigFromFlags() {
  Config c;
  c.listen = absl::GetFlag(FLAGS_grpc_listen);
  c.database_url = absl::GetFlag(FLAGS_database_url);
  c.db_pool_size = absl::GetFlag(FLAGS_db_pool_size);
  c.port_file = absl::GetFlag(FLAGS_port_file);
  c.dispatch = absl::GetFlag(FLAGS_dispatch);
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  c.metrics_port_file = absl::GetFlag(FLAGS_metrics_port_file);
  c.queue_stats_interval = absl::GetFlag(FLAGS_queue_stats_interval);

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
  absl::StatusOr<PgConnectionOptions> pg = PgOptionsFromFlags();
  if (!pg.ok()) return pg.status();
  c.pg = *pg;
  // The dispatcher opens its own connections: they carry the same limits.
  absl::StatusOr<std::string> dispatcher_conninfo = PgConninfo(c.database_url, c.pg);
  if (!dispatcher_conninfo.ok()) return dispatcher_conninfo.status();

  DispatcherOptions& d = c.dispatcher;
  d.database_url = *std::move(dispatcher_conninfo);
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
  absl::StatusOr<DestinationPolicy> policy =
      DestinationPolicy::Parse(absl::GetFlag(FLAGS_allow_destination_cidrs));
  if (!policy.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--allow_destination_cidrs: ", policy.status().message()));
  }
  d.destination_policy = *std::move(policy);
  if (absl::Status s = TransportTrustFromFlags(d); !s.ok()) return s;
  return c;
}

int Run(const Config& config) {
  // Signals are taken synchronously below; block them before any thread
  // (gRPC's and the dispatcher's included) starts, so every thread inherits
  // the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (absl::Status s =
          ApplyMigrations(config.database_url, schema::Migrations(), schema::kMigrationLockKey,
                          config.pg);
      !s.ok()) {
    log::Error("cannot apply migrations", {{"error", s.ToString()}});
    return 1;
  }
  // Metrics first: the pools, the service and the dispatcher record into
  // them from the start.
  metrics::ProcessMetrics metrics;
  metrics::PgMetrics pg_metrics(metrics.registry());
  metrics::GrpcMetrics grpc_metrics(metrics.registry());
  metrics::DeliveryMetrics delivery_metrics(metrics.registry());

  absl::StatusOr<std::unique_ptr<PgPool>> pool =
      PgPool::Create(config.database_url, config.db_pool_size, config.pg, &pg_metrics);
  if (!pool.ok()) {
    log::Error("cannot connect to PostgreSQL", {{"error", pool.status().ToString()}});
    return 1;
  }
  absl::StatusOr<std::unique_ptr<PgPool>> ping_pool =
      PgPool::Create(config.database_url, 1, config.pg, &pg_metrics);
  if (!ping_pool.ok()) {
    log::Error("cannot connect to PostgreSQL", {{"error", ping_pool.status().ToString()}});
    return 1;
  }

  PgEventStore pg_store(pool->get());
  GroupCommitEventStore store(
      &pg_store,
      {absl::GetFlag(FLAGS_enqueue_group_window),
       static_cast<std::size_t>(std::max(1, absl::GetFlag(FLAGS_enqueue_group_max_events))),
       static_cast<std::size_t>(std::max(1, absl::GetFlag(FLAGS_enqueue_group_max_concurrent)))});
  DeliveryServiceImpl delivery_service(&store);
  absl::StatusOr<std::unique_ptr<PgOperationsStore>> operations_store_or =
      PgOperationsStore::Create(pool->get());
  if (!operations_store_or.ok()) {
    log::Error("cannot prepare the operations store",
               {{"error", operations_store_or.status().ToString()}});
    return 1;
  }
  PgOperationsStore& operations_store = **operations_store_or;
  OperationsServiceImpl operations_service(&operations_store);

  std::unique_ptr<Dispatcher> dispatcher;
  if (config.dispatch) {
    DispatcherOptions options = config.dispatcher;
    options.metrics = &delivery_metrics;
    options.pg_metrics = &pg_metrics;
    absl::StatusOr<std::unique_ptr<Dispatcher>> started = Dispatcher::Start(options);
    if (!started.ok()) {
      log::Error("cannot start the dispatcher", {{"error", started.status().ToString()}});
      return 1;
    }
    dispatcher = *std::move(started);
  } else {
    log::Info("dispatcher off (--dispatch=false): events are stored, not sent");
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kMaxEnqueueRequestBytes);
  int port = 0;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&delivery_service);
  builder.experimental().SetInterceptorCreators(grpc_metrics.ServerInterceptors());
  builder.RegisterService(&operations_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    log::Error("cannot listen", {{"address", config.listen}});
    if (dispatcher) dispatcher->Stop();
    return 1;
  }
  auto health =
      std::make_unique<PgHealthReporter>(*std::move(ping_pool), server->GetHealthCheckService(),
                                         std::vector<PgPool*>{pool->get()});
  auto queue_stats = std::make_unique<QueueStatsReporter>(pool->get(), &delivery_metrics,
                                                          config.queue_stats_interval);
  absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> metrics_server =
      metrics::MetricsServer::Start(config.metrics_listen, metrics);
  const std::string metrics_port_text =
      metrics_server.ok() ? std::to_string((*metrics_server)->port()) : "";
  if (!metrics_server.ok() ||
      (!config.metrics_port_file.empty() &&
       !WriteFileAtomically(config.metrics_port_file, metrics_port_text + "\n"))) {
    log::Error("cannot serve metrics",
               {{"error", metrics_server.ok() ? "cannot write --metrics_port_file"
                                              : metrics_server.status().ToString()}});
    queue_stats.reset();
    health.reset();
    server->Shutdown();
    if (dispatcher) dispatcher->Stop();
    return 1;
  }

  const std::string port_text = std::to_string(port);
  if (!config.port_file.empty() && !WriteFileAtomically(config.port_file, port_text + "\n")) {
    log::Error("cannot write the port file", {{"path", config.port_file}});
    health.reset();
    server->Shutdown();
    if (dispatcher) dispatcher->Stop();
    return 1;
  }
  std::string allowed;
  for (const Cidr& cidr : config.dispatcher.destination_policy.allowed()) {
    absl::StrAppend(&allowed, allowed.empty() ? "" : ",", cidr.ToString());
  }
  log::Info("serving", {{"address", config.listen},
                        {"port", port_text},
                        {"metrics_port", metrics_port_text},
                        {"dispatch", config.dispatch ? "true" : "false"},
                        {"allow_destination_cidrs", allowed.empty() ? "none (public only)" : allowed}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  log::Info("shutting down", {{"signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM"}});
  // Stop accepting first (in-flight Enqueue calls finish and commit), then
  // let the dispatcher finish its in-flight transfers and record them.
  queue_stats.reset();
  health.reset();
  server->GetHealthCheckService()->Shutdown();  // every service NOT_SERVING
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  if (dispatcher) dispatcher->Stop();
  log::Info("stopped");
  return 0;
}

}  // namespace
}  // namespace octo::delivery

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "octo-delivery: stores published events and delivers them as signed webhooks.\n"
      "Every flag defaults from its OCTO_* environment variable.");
  absl::ParseCommandLine(argc, argv);
  octo::log::SetComponent("delivery");
  octo::log::CaptureGrpcLogs();
  absl::StatusOr<octo::delivery::Config> config = octo::delivery::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "octo-delivery: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  return octo::delivery::Run(*config);
}
