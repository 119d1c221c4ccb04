#pragma once
// Prometheus metrics of every octo process (docs/observability.md): one
// prometheus::Registry per process, made in main and handed to the components
// that record, the process collector (/proc), the metric families of each
// component, gRPC interceptors with the go-grpc-prometheus names, and the
// /metrics endpoint of the services.
//
// Label values are always from bounded sets (event types, outcomes, route
// templates, statement names, gRPC methods of the linked protos): never an
// id, a URL or anything else a client chooses.
//
// Example (a service's main):
//   octo::metrics::ProcessMetrics metrics;             // registry + process_*
//   octo::metrics::PgMetrics pg(metrics.registry());
//   octo::metrics::GrpcMetrics grpc_metrics(metrics.registry());
//   builder.experimental().SetInterceptorCreators(grpc_metrics.ServerInterceptors());
//   auto server = octo::metrics::MetricsServer::Start("127.0.0.1:9101", metrics);
//   int port = (*server)->port();
//
// Every class is thread-safe.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/status/statusor.h"

namespace octo::metrics {

// The standard process_* metrics of this process, read from /proc/self at
// each scrape: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds. A value that cannot be read is left out.
class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

// A process's registry plus its process collector: what /metrics serves.
class ProcessMetrics {
 public:
  ProcessMetrics();
  prometheus::Registry& registry() { return *registry_; }
  // The Prometheus text format (0.0.4) of everything: the registry, then
  // the process metrics.
  std::string Text() const;
  std::vector<std::weak_ptr<prometheus::Collectable>> Collectables() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ProcessCollector> process_;
};

// Serves GET /metrics (the text format) and GET /healthz (200, empty body)
// on its own HTTP listener (prometheus-cpp's civetweb Exposer).
class MetricsServer {
 public:
  // `listen` is host:port ("127.0.0.1:9101"; port 0 picks a free one;
  // "[::1]:0" for IPv6). UNAVAILABLE when it cannot be bound. `metrics` must
  // outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              const ProcessMetrics& metrics);
  ~MetricsServer();
  int port() const { return port_; }

  struct Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

// Bucket boundaries, in the metric's base unit.
std::vector<double> LatencyBuckets();         // 5 ms .. 10 s (Prometheus' defaults)
std::vector<double> DatabaseBuckets();        // 0.5 ms .. 5 s
std::vector<double> AttemptDurationBuckets(); // 5 ms .. 10 min (the longest request timeout)
std::vector<double> DeliveryLatencyBuckets(); // 50 ms .. 1 day (retries span a day)

// "2xx".."5xx" for an HTTP status, "none" for 0 (no response).
std::string_view StatusClass(int http_status);

// ---------------------------------------------------------------- gRPC --

// grpc_server_* and grpc_client_* (go-grpc-prometheus names and labels:
// grpc_type, grpc_service, grpc_method, grpc_code). A method that is not in
// the linked protobuf descriptors is labelled "unknown" (a client could
// otherwise invent method names).
//
// The interceptors record on series looked up once per method and kept
// (MethodSeries): a call costs a few atomic adds, not a descriptor look-up, a
// label map and a throw-away Counter/Histogram per metric (prometheus-cpp's
// Family::Add builds the metric before it finds the existing one).
class GrpcMetrics {
 public:
  static constexpr std::size_t kMaxCachedSeries = 1024;

  // `max_cached`: the cache's bound (kMaxCachedSeries; smaller in tests).
  explicit GrpcMetrics(prometheus::Registry& registry, std::size_t max_cached = kMaxCachedSeries);
  ~GrpcMetrics();

  // For ServerBuilder::experimental().SetInterceptorCreators.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  ServerInterceptors();
  // For grpc::experimental::CreateCustomChannelWithInterceptors.
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
  ClientInterceptors();

  // The recording side of the interceptors (public for them and for tests).
  // `side` is kServer or kClient; `full_method` is "/pkg.Service/Method".
  enum class Side { kServer, kClient };
  void Started(Side side, std::string_view grpc_type, std::string_view full_method);
  void Handled(Side side, std::string_view grpc_type, std::string_view full_method,
               std::string_view grpc_code, double seconds);

  // The series of one (side, grpc_type, method): its labels resolved, each
  // series created on its first use (as Started/Handled would create it).
  class MethodSeries;
  // Cached for methods in the linked descriptors and the grpc_type names of
  // the interceptors; methods not in the descriptors share one "unknown"
  // entry per side and type, so a client's method names never enter the
  // cache. Bounded by kMaxCachedSeries all the same: past it, a series is
  // resolved for the caller alone.
  std::shared_ptr<const MethodSeries> Series(Side side, std::string_view grpc_type,
                                             std::string_view full_method);
  // Entries in the cache (for tests).
  std::size_t CachedSeries() const;

 private:
  std::shared_ptr<const MethodSeries> Resolve(Side side, std::string_view grpc_type,
                                              std::string_view full_method);
  // Indexed by Side.
  prometheus::Family<prometheus::Counter>* started_[2];
  prometheus::Family<prometheus::Counter>* handled_[2];
  prometheus::Family<prometheus::Histogram>* handling_[2];
  const std::size_t max_cached_;
  struct Cache;
  std::unique_ptr<Cache> cache_;
};

// "OK", "InvalidArgument", ... (the names go-grpc-prometheus uses).
std::string_view GrpcCodeName(int code);

// ------------------------------------------------------------ gateway --

// octo_gateway_http_requests_total{route,method,code},
// octo_gateway_http_request_duration_seconds{route,method},
// octo_gateway_http_requests_in_flight.
class HttpMetrics {
 public:
  explicit HttpMetrics(prometheus::Registry& registry);
  void RequestStarted();
  // `route` must be a route template; `method` is reduced to the standard
  // methods (anything else is "other").
  void RequestFinished(std::string_view route, std::string_view method, int code, double seconds);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Gauge& in_flight_;
};

// What the gateway's caches and guards did:
// octo_gateway_auth_cache_lookups_total{result=hit|negative_hit|miss},
// octo_gateway_list_cache_lookups_total{result=hit|miss},
// octo_gateway_rejected_total{reason=key_rate|address_rate|address_connections|connections}.
class GatewayGuardMetrics {
 public:
  explicit GatewayGuardMetrics(prometheus::Registry& registry);
  // Each takes one of the label values above (anything else is not counted).
  void AuthLookup(std::string_view result);
  void ListLookup(std::string_view result);
  void Rejected(std::string_view reason);

 private:
  // The series, created up front: counting on the request path is then one
  // atomic add, no label lookup.
  struct Series {
    std::string_view value;
    prometheus::Counter* counter;
  };
  static void Count(const std::vector<Series>& series, std::string_view value);
  std::vector<Series> auth_;
  std::vector<Series> list_;
  std::vector<Series> rejected_;
};

// ------------------------------------------------ internal gRPC callers --

// octo_grpc_calls_refused_total{code,caller}: calls the internal
// authentication (grpc_auth.h) refused before any handler. code is
// UNAUTHENTICATED or PERMISSION_DENIED; caller a known identity or
// "unknown" (no token, or nobody's): a bounded set, never a token.
class GrpcAuthMetrics {
 public:
  explicit GrpcAuthMetrics(prometheus::Registry& registry);
  void Refused(std::string_view code, std::string_view caller);

 private:
  prometheus::Family<prometheus::Counter>& refused_;
};

// ---------------------------------------------------------- publishing --

// octo_events_published_total{event}, octo_events_duplicate_total{event},
// octo_event_fanout_webhooks.
class PublishMetrics {
 public:
  explicit PublishMetrics(prometheus::Registry& registry);
  void EventPublished(std::string_view event, bool duplicate, int deliveries);

 private:
  prometheus::Family<prometheus::Counter>& published_;
  prometheus::Family<prometheus::Counter>& duplicate_;
  prometheus::Histogram& fanout_;
};

// ------------------------------------------------------------ delivery --

// octo_delivery_attempts_total, octo_delivery_attempt_duration_seconds,
// octo_delivery_latency_seconds, octo_deliveries_delivered_total,
// octo_deliveries_given_up_total, octo_delivery_queue_deliveries,
// octo_delivery_oldest_due_age_seconds, octo_webhooks_disabled_total.
class DeliveryMetrics {
 public:
  explicit DeliveryMetrics(prometheus::Registry& registry);
  // One recorded attempt. outcome: success|retry|failed; error_class:
  // none|http|dns|...; status_class: 2xx..5xx|none.
  void Attempt(std::string_view event, std::string_view outcome, std::string_view error_class,
               std::string_view status_class, double seconds);
  // A delivery succeeded, `latency_seconds` after its event was created.
  void Delivered(std::string_view event, double latency_seconds);
  void GivenUp(std::string_view event);
  // reason: gone|failing.
  void WebhookDisabled(std::string_view reason);
  // held: ordered deliveries waiting for their resource (not due, whatever
  // their time).
  void SetQueue(double due, double retry_scheduled, double in_flight, double held, double oldest_due_age_seconds);
  // `count` deliveries claimed by this process's dispatcher.
  void Claimed(int count);
  // `count` deliveries this process enqueued and handed to its own
  // dispatcher leased at their insert, without a claim (handoff.h).
  void HandedOff(int count);
  // A claimed delivery released unsent (lease cleared, no attempt). reason:
  // backlog (its destination could not start it within the lease), queue_wait
  // (it waited in its destination's line too long), limit (its webhook's rate
  // or concurrency), shutdown.
  void Released(std::string_view reason);

 private:
  prometheus::Family<prometheus::Counter>& attempts_;
  prometheus::Family<prometheus::Histogram>& attempt_duration_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Counter>& delivered_;
  prometheus::Family<prometheus::Counter>& given_up_;
  prometheus::Family<prometheus::Gauge>& queue_;
  prometheus::Gauge& oldest_due_age_;
  prometheus::Family<prometheus::Counter>& disabled_;
  prometheus::Counter& claimed_;
  prometheus::Counter& handed_off_;
  prometheus::Family<prometheus::Counter>& released_;
};

// ---------------------------------------------------------- PostgreSQL --

// octo_pg_pool_connections{state}, octo_pg_query_duration_seconds{operation},
// octo_pg_errors_total{operation}. `operation` is a statement or operation
// name from the code, never SQL text.
class PgMetrics {
 public:
  explicit PgMetrics(prometheus::Registry& registry);
  void ConnectionsChanged(int in_use_delta, int idle_delta);
  void Query(std::string_view operation, double seconds, bool ok);
  // Creates the error series of `operation` at zero, so that error rates
  // and alerts have a series before the first error.
  void Declare(std::string_view operation);

 private:
  prometheus::Family<prometheus::Gauge>& connections_;
  prometheus::Gauge& in_use_;
  prometheus::Gauge& idle_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& errors_;
};

// The OCTO event types (the label values of {event} known in advance): their
// series are created at zero so that rates and alerts see them from start-up.
inline constexpr std::string_view kEventTypes[] = {"booking_update", "order_update",
                                                   "availability_update", "product_update",
                                                   "webhook_test"};

}  // namespace octo::metrics
