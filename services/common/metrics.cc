#include "services/common/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include <prometheus/exposer.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/str_cat.h"

namespace octo::metrics {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::string Str(std::string_view s) { return std::string(s); }

MetricFamily OneValue(std::string name, std::string help, MetricType type, double value) {
  MetricFamily family{std::move(name), std::move(help), type, {}};
  ClientMetric metric;
  if (type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

// /proc/self/stat fields after the command (which may hold spaces and
// parentheses, so parsing starts after the last ')'): field 3 is the state.
std::vector<std::string> ProcStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  std::string f;
  while (rest >> f) fields.push_back(f);
  return fields;  // fields[0] is field 3 (state)
}

// Boot time, seconds since the epoch (/proc/stat btime); 0 when unknown.
double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double value = 0;
      in >> value;
      return value;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the descriptor opendir itself holds
}

}  // namespace

std::vector<MetricFamily> ProcessCollector::Collect() const {
  std::vector<MetricFamily> out;
  const std::vector<std::string> f = ProcStatFields();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // Field n of proc(5) is f[n - 3].
  if (f.size() > 21 && ticks > 0) {
    try {
      const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
      out.push_back(OneValue("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                             MetricType::Counter, cpu));
      const double boot = BootTimeSeconds();
      if (boot > 0) {
        out.push_back(OneValue("process_start_time_seconds",
                               "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
                               boot + std::stod(f[19]) / ticks));
      }
      out.push_back(OneValue("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
                             std::stod(f[20])));
      out.push_back(OneValue("process_resident_memory_bytes", "Resident memory size in bytes.",
                             MetricType::Gauge, std::stod(f[21]) * page));
    } catch (const std::exception&) {
      // An unexpected /proc format: leave those out rather than fail the scrape.
    }
  }
  if (const int fds = OpenFds(); fds >= 0) {
    out.push_back(OneValue("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, fds));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    out.push_back(OneValue("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
                           static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

ProcessMetrics::ProcessMetrics()
    : registry_(std::make_shared<prometheus::Registry>()), process_(std::make_shared<ProcessCollector>()) {}

std::vector<std::weak_ptr<prometheus::Collectable>> ProcessMetrics::Collectables() const {
  return {registry_, process_};
}

std::string ProcessMetrics::Text() const {
  std::vector<MetricFamily> families = registry_->Collect();
  for (MetricFamily& f : process_->Collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

struct MetricsServer::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<prometheus::Registry> empty = std::make_shared<prometheus::Registry>();
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    const ProcessMetrics& metrics) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen, ": ", e.what()));
  }
  for (const auto& c : metrics.Collectables()) impl->exposer->RegisterCollectable(c, "/metrics");
  // /healthz: an empty registry answers 200 with an empty body.
  impl->exposer->RegisterCollectable(impl->empty, "/healthz");
  const std::vector<int> ports = impl->exposer->GetListeningPorts();
  if (ports.empty() || ports.front() <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen, ": no listening port"));
  }
  const int port = ports.front();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl), port));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl, int port) : impl_(std::move(impl)), port_(port) {}
MetricsServer::~MetricsServer() = default;

std::vector<double> LatencyBuckets() { return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}; }
std::vector<double> DatabaseBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}
// Attempts last up to --request_timeout (15 s by default, up to 10 min):
// timeouts get buckets of their own instead of all landing in +Inf.
std::vector<double> AttemptDurationBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600};
}
std::vector<double> DeliveryLatencyBuckets() {
  return {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 7200, 21600, 86400};
}

std::string_view StatusClass(int http_status) {
  if (http_status >= 200 && http_status < 300) return "2xx";
  if (http_status >= 300 && http_status < 400) return "3xx";
  if (http_status >= 400 && http_status < 500) return "4xx";
  if (http_status >= 500 && http_status < 600) return "5xx";
  return "none";
}

// ------------------------------------------------------------ gateway --

HttpMetrics::HttpMetrics(prometheus::Registry& registry)
    : requests_(BuildCounter()
                    .Name("octo_gateway_http_requests_total")
                    .Help("HTTP requests answered by the gateway, by route template, method and status code.")
                    .Register(registry)),
      duration_(BuildHistogram()
                    .Name("octo_gateway_http_request_duration_seconds")
                    .Help("Time from reading a request's header to having written its answer.")
                    .Register(registry)),
      in_flight_(BuildGauge()
                     .Name("octo_gateway_http_requests_in_flight")
                     .Help("HTTP requests read and not yet answered.")
                     .Register(registry)
                     .Add({})) {}

GatewayGuardMetrics::GatewayGuardMetrics(prometheus::Registry& registry) {
  const auto family = [&registry](const char* name, const char* help, const char* label,
                                  std::vector<std::string_view> values) {
    auto& counters = BuildCounter().Name(name).Help(help).Register(registry);
    std::vector<Series> series;
    for (std::string_view value : values)
      series.push_back({value, &counters.Add({{label, Str(value)}})});
    return series;
  };
  auth_ = family("octo_gateway_auth_cache_lookups_total",
                 "API-key lookups by the gateway: hit (known key cached), negative_hit (unknown "
                 "key cached), miss (not cached: asked the subscription service or joined a "
                 "lookup of the same key in flight).",
                 "result", {"hit", "negative_hit", "miss"});
  list_ = family("octo_gateway_list_cache_lookups_total",
                 "Webhook list requests answered from the gateway's cache (hit) or fetched (miss).",
                 "result", {"hit", "miss"});
  rejected_ = family("octo_gateway_rejected_total",
                     "Requests answered 429 (key_rate, address_rate) and connections closed at once "
                     "(address_connections, connections) by the gateway's limits.",
                     "reason", {"key_rate", "address_rate", "address_connections", "connections"});
}

void GatewayGuardMetrics::Count(const std::vector<Series>& series, std::string_view value) {
  for (const Series& s : series) {
    if (s.value == value) return s.counter->Increment();
  }
}

void GatewayGuardMetrics::AuthLookup(std::string_view result) { Count(auth_, result); }
void GatewayGuardMetrics::ListLookup(std::string_view result) { Count(list_, result); }
void GatewayGuardMetrics::Rejected(std::string_view reason) { Count(rejected_, reason); }

void HttpMetrics::RequestStarted() { in_flight_.Increment(); }

void HttpMetrics::RequestFinished(std::string_view route, std::string_view method, int code, double seconds) {
  static constexpr std::string_view kMethods[] = {"GET",  "HEAD",    "POST",    "PUT",  "PATCH",
                                                  "DELETE", "OPTIONS", "CONNECT", "TRACE"};
  std::string_view known = "other";
  for (std::string_view m : kMethods) {
    if (m == method) known = m;
  }
  in_flight_.Decrement();
  requests_.Add({{"route", Str(route)}, {"method", Str(known)}, {"code", std::to_string(code)}}).Increment();
  duration_.Add({{"route", Str(route)}, {"method", Str(known)}}, LatencyBuckets()).Observe(seconds);
}

// ---------------------------------------------------------- publishing --

PublishMetrics::PublishMetrics(prometheus::Registry& registry)
    : published_(BuildCounter()
                     .Name("octo_events_published_total")
                     .Help("New events accepted by EventService (not counting idempotent replays).")
                     .Register(registry)),
      duplicate_(BuildCounter()
                     .Name("octo_events_duplicate_total")
                     .Help("Events published again with an idempotency key already stored: nothing new created.")
                     .Register(registry)),
      fanout_(BuildHistogram()
                  .Name("octo_event_fanout_webhooks")
                  .Help("Deliveries (one per webhook) created per new event.")
                  .Register(registry)
                  .Add({}, prometheus::Histogram::BucketBoundaries{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000})) {
  for (std::string_view e : kEventTypes) {
    published_.Add({{"event", Str(e)}});
    duplicate_.Add({{"event", Str(e)}});
  }
}

void PublishMetrics::EventPublished(std::string_view event, bool duplicate, int deliveries) {
  if (duplicate) {
    duplicate_.Add({{"event", Str(event)}}).Increment();
    return;
  }
  published_.Add({{"event", Str(event)}}).Increment();
  fanout_.Observe(deliveries);
}

// ------------------------------------------------------------ delivery --

DeliveryMetrics::DeliveryMetrics(prometheus::Registry& registry)
    : attempts_(BuildCounter()
                    .Name("octo_delivery_attempts_total")
                    .Help("Recorded delivery attempts by event type, outcome (success, retry, failed = given "
                          "up), error class and HTTP status class.")
                    .Register(registry)),
      attempt_duration_(BuildHistogram()
                            .Name("octo_delivery_attempt_duration_seconds")
                            .Help("Duration of one delivery attempt (the HTTP exchange), by outcome.")
                            .Register(registry)),
      latency_(BuildHistogram()
                   .Name("octo_delivery_latency_seconds")
                   .Help("From the event's creation (publish) to the end of its delivery's successful attempt.")
                   .Register(registry)),
      delivered_(BuildCounter()
                     .Name("octo_deliveries_delivered_total")
                     .Help("Deliveries that succeeded (a 2xx answer).")
                     .Register(registry)),
      given_up_(BuildCounter()
                    .Name("octo_deliveries_given_up_total")
                    .Help("Deliveries that failed for good: no retry left, retryOnError false, or 410 Gone.")
                    .Register(registry)),
      queue_(BuildGauge()
                 .Name("octo_delivery_queue_deliveries")
                 .Help("Pending deliveries by state: due (waiting to be sent), retry_scheduled (waiting for a "
                       "later attempt), in_flight (claimed under a live lease), held (ordered, waiting for an "
                       "earlier delivery of its resource or for its resource's send).")
                 .Register(registry)),
      oldest_due_age_(BuildGauge()
                          .Name("octo_delivery_oldest_due_age_seconds")
                          .Help("How long the oldest due, unclaimed delivery has been due (0 when none).")
                          .Register(registry)
                          .Add({})),
      disabled_(BuildCounter()
                    .Name("octo_webhooks_disabled_total")
                    .Help("Webhooks disabled by the delivery service, by reason (gone = 410, failing).")
                    .Register(registry)),
      claimed_(BuildCounter()
                   .Name("octo_delivery_claimed_total")
                   .Help("Deliveries claimed by this process (each claim of a delivery counts once).")
                   .Register(registry)
                   .Add({})),
      handed_off_(BuildCounter()
                      .Name("octo_delivery_handed_off_total")
                      .Help("Deliveries this process enqueued and sent without a claim: inserted leased to its "
                            "dispatcher and handed over in memory after the commit.")
                      .Register(registry)
                      .Add({})),
      released_(BuildCounter()
                    .Name("octo_delivery_released_total")
                    .Help("Claimed deliveries released unsent, by reason (backlog, queue_wait, limit, shutdown).")
                    .Register(registry)) {
  for (std::string_view e : kEventTypes) {
    delivered_.Add({{"event", Str(e)}});
    given_up_.Add({{"event", Str(e)}});
  }
  for (const char* state : {"due", "retry_scheduled", "in_flight", "held"}) queue_.Add({{"state", state}});
  for (const char* reason : {"gone", "failing"}) disabled_.Add({{"reason", reason}});
  for (const char* reason : {"backlog", "queue_wait", "limit", "shutdown"}) released_.Add({{"reason", reason}});
}

void DeliveryMetrics::Attempt(std::string_view event, std::string_view outcome, std::string_view error_class,
                              std::string_view status_class, double seconds) {
  attempts_
      .Add({{"event", Str(event)},
            {"outcome", Str(outcome)},
            {"error_class", Str(error_class)},
            {"status_class", Str(status_class)}})
      .Increment();
  attempt_duration_.Add({{"outcome", Str(outcome)}}, AttemptDurationBuckets()).Observe(seconds);
}

void DeliveryMetrics::Delivered(std::string_view event, double latency_seconds) {
  delivered_.Add({{"event", Str(event)}}).Increment();
  latency_.Add({{"event", Str(event)}}, DeliveryLatencyBuckets()).Observe(latency_seconds);
}

void DeliveryMetrics::GivenUp(std::string_view event) { given_up_.Add({{"event", Str(event)}}).Increment(); }

void DeliveryMetrics::WebhookDisabled(std::string_view reason) {
  disabled_.Add({{"reason", Str(reason)}}).Increment();
}

void DeliveryMetrics::SetQueue(double due, double retry_scheduled, double in_flight, double held,
                               double oldest_due_age_seconds) {
  queue_.Add({{"state", "due"}}).Set(due);
  queue_.Add({{"state", "retry_scheduled"}}).Set(retry_scheduled);
  queue_.Add({{"state", "in_flight"}}).Set(in_flight);
  queue_.Add({{"state", "held"}}).Set(held);
  oldest_due_age_.Set(oldest_due_age_seconds);
}

void DeliveryMetrics::Claimed(int count) { claimed_.Increment(count); }

void DeliveryMetrics::HandedOff(int count) { handed_off_.Increment(count); }

void DeliveryMetrics::Released(std::string_view reason) { released_.Add({{"reason", Str(reason)}}).Increment(); }

// ---------------------------------------------------------- PostgreSQL --

PgMetrics::PgMetrics(prometheus::Registry& registry)
    : connections_(BuildGauge()
                       .Name("octo_pg_pool_connections")
                       .Help("PostgreSQL connections of this process's pools, by state (in_use, idle).")
                       .Register(registry)),
      in_use_(connections_.Add({{"state", "in_use"}})),
      idle_(connections_.Add({{"state", "idle"}})),
      duration_(BuildHistogram()
                    .Name("octo_pg_query_duration_seconds")
                    .Help("Duration of a database operation (its statements and commit), by operation name.")
                    .Register(registry)),
      errors_(BuildCounter()
                  .Name("octo_pg_errors_total")
                  .Help("Database operations that failed with an error from libpqxx/PostgreSQL.")
                  .Register(registry)) {}

void PgMetrics::ConnectionsChanged(int in_use_delta, int idle_delta) {
  in_use_.Increment(in_use_delta);
  idle_.Increment(idle_delta);
}

void PgMetrics::Declare(std::string_view operation) { errors_.Add({{"operation", Str(operation)}}); }

void PgMetrics::Query(std::string_view operation, double seconds, bool ok) {
  duration_.Add({{"operation", Str(operation)}}, DatabaseBuckets()).Observe(seconds);
  if (!ok) errors_.Add({{"operation", Str(operation)}}).Increment();
}

}  // namespace octo::metrics
