// The metrics library (services/common/metrics.h) without a database: the
// process collector, the golden list of metric names, label bounds, the
// gRPC interceptors on a real server and channel on 127.0.0.1, the HTTP
// endpoint, and promtool's verdict on the exposition.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "services/common/metrics.h"
#include "services/common/retention_metrics.h"
#include "tests/metrics/metrics_test_util.h"
#include "tests/support/http_client.h"

namespace octo::metrics {
namespace {

using metrics_test::Labels;
using metrics_test::Value;

TEST(ProcessCollector, ReportsTheStandardProcessMetrics) {
  ProcessMetrics metrics;
  const std::vector<metrics_test::Sample> samples = metrics_test::ParseText(metrics.Text());
  std::set<std::string> names;
  for (const auto& s : samples) names.insert(s.name);
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"}) {
    EXPECT_TRUE(names.count(name)) << name;
  }
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double start = metrics_test::Sum(samples, "process_start_time_seconds");
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 24 * 3600);  // this test process started less than a day ago
  EXPECT_GT(metrics_test::Sum(samples, "process_resident_memory_bytes"), 1024 * 1024);
  EXPECT_GE(metrics_test::Sum(samples, "process_virtual_memory_bytes"),
            metrics_test::Sum(samples, "process_resident_memory_bytes"));
  EXPECT_GT(metrics_test::Sum(samples, "process_max_fds"), 0);
}

TEST(ProcessCollector, CountsOpenFileDescriptors) {
  ProcessMetrics metrics;
  const double before = metrics_test::Sum(metrics_test::ParseText(metrics.Text()), "process_open_fds");
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(open("/dev/null", O_RDONLY));
  const double during = metrics_test::Sum(metrics_test::ParseText(metrics.Text()), "process_open_fds");
  for (int fd : fds) close(fd);
  EXPECT_EQ(during, before + 5);
}

TEST(ProcessCollector, CpuTimeGrowsWithWork) {
  ProcessMetrics metrics;
  const double before = metrics_test::Sum(metrics_test::ParseText(metrics.Text()), "process_cpu_seconds_total");
  // Spin for 0.3 s of this process's CPU time (not wall time: the machine
  // may be busy), then compare with what /proc reports (10 ms ticks).
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  const double cpu_start = cpu_now();
  volatile double x = 0;
  while (cpu_now() - cpu_start < 0.3) x = x + 1;
  const double after = metrics_test::Sum(metrics_test::ParseText(metrics.Text()), "process_cpu_seconds_total");
  EXPECT_GT(after - before, 0.25);
  EXPECT_LT(after - before, cpu_now() - cpu_start + 0.1);
}

// Every family of every process, as docs/observability.md lists them: the
// names are an interface (dashboards, alert rules), changed on purpose only.
TEST(MetricNames, MatchTheGoldenList) {
  ProcessMetrics metrics;
  GrpcMetrics grpc_metrics(metrics.registry());
  HttpMetrics http(metrics.registry());
  GatewayGuardMetrics guard(metrics.registry());
  PublishMetrics publish(metrics.registry());
  DeliveryMetrics delivery(metrics.registry());
  PgMetrics pg(metrics.registry());
  GrpcAuthMetrics grpc_auth(metrics.registry());
  RetentionMetrics retention(metrics.registry(), 30 * 86400, 3600);
  // Histograms and gRPC families appear once a series exists (and the
  // retention runway once it is known).
  retention.SetRunway(7 * 86400);
  grpc_metrics.Handled(GrpcMetrics::Side::kServer, "unary", "/grpc.health.v1.Health/Check", "OK", 0.1);
  grpc_metrics.Handled(GrpcMetrics::Side::kClient, "unary", "/grpc.health.v1.Health/Check", "OK", 0.1);
  grpc_metrics.Started(GrpcMetrics::Side::kServer, "unary", "/grpc.health.v1.Health/Check");
  grpc_metrics.Started(GrpcMetrics::Side::kClient, "unary", "/grpc.health.v1.Health/Check");
  http.RequestStarted();
  http.RequestFinished("/healthz", "GET", 200, 0.001);
  publish.EventPublished("booking_update", false, 1);
  delivery.Attempt("booking_update", "success", "none", "2xx", 0.1);
  delivery.Delivered("booking_update", 0.2);
  pg.Query("ping", 0.001, true);
  grpc_auth.Refused("UNAUTHENTICATED", "unknown");

  std::ifstream golden(OCTO_METRIC_NAMES_FILE);
  ASSERT_TRUE(golden.good()) << OCTO_METRIC_NAMES_FILE;
  std::vector<std::string> want;
  for (std::string line; std::getline(golden, line);) {
    if (!line.empty() && line[0] != '#') want.push_back(line);
  }
  std::sort(want.begin(), want.end());
  // pg errors appear with the first error or declaration.
  pg.Declare("ping");
  std::vector<std::string> names = metrics_test::FamilyNames(metrics.Text());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, want);
  EXPECT_EQ(Value(metrics.registry(), "octo_pg_errors_total", {{"operation", "ping"}}), 0);
}

TEST(Exposition, PassesPromtoolCheckMetrics) {
  ProcessMetrics metrics;
  GrpcMetrics grpc_metrics(metrics.registry());
  HttpMetrics http(metrics.registry());
  GatewayGuardMetrics guard(metrics.registry());
  PublishMetrics publish(metrics.registry());
  DeliveryMetrics delivery(metrics.registry());
  PgMetrics pg(metrics.registry());
  RetentionMetrics retention(metrics.registry(), 30 * 86400, 3600);
  retention.PassFinished(RetentionMetrics::Outcome::kOk, 0.25);
  retention.SetRunway(8.5 * 86400);
  grpc_metrics.Handled(GrpcMetrics::Side::kServer, "unary", "/grpc.health.v1.Health/Check", "NotFound", 0.1);
  http.RequestFinished("/octo/webhooks/:id", "PATCH", 400, 0.001);
  delivery.Attempt("order_update", "retry", "timeout", "none", 2.0);
  delivery.SetQueue(3, 2, 1, 1, 12.5);
  pg.Query("enqueue", 0.004, false);
  const absl::Status s = metrics_test::PromtoolCheckMetrics(metrics.Text());
  EXPECT_TRUE(s.ok()) << s << "\n" << metrics.Text();
}

TEST(Exposition, PromtoolCatchesABadExposition) {
  // The check above can fail: a counter without _total is a lint problem.
  const absl::Status s = metrics_test::PromtoolCheckMetrics(
      "# HELP octo_bad Bad.\n# TYPE octo_bad counter\nocto_bad 1\n");
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
}

TEST(HttpMetrics, CountsByRouteMethodAndCodeAndTracksInFlight) {
  prometheus::Registry registry;
  HttpMetrics http(registry);
  http.RequestStarted();
  http.RequestStarted();
  EXPECT_EQ(Value(registry, "octo_gateway_http_requests_in_flight"), 2);
  http.RequestFinished("/octo/webhooks", "POST", 200, 0.01);
  http.RequestFinished("unmatched", "BREW", 404, 0.01);  // not a standard method
  EXPECT_EQ(Value(registry, "octo_gateway_http_requests_in_flight"), 0);
  EXPECT_EQ(Value(registry, "octo_gateway_http_requests_total",
                  {{"route", "/octo/webhooks"}, {"method", "POST"}, {"code", "200"}}),
            1);
  EXPECT_EQ(Value(registry, "octo_gateway_http_requests_total",
                  {{"route", "unmatched"}, {"method", "other"}, {"code", "404"}}),
            1);
  EXPECT_EQ(Value(registry, "octo_gateway_http_request_duration_seconds",
                  {{"route", "/octo/webhooks"}, {"method", "POST"}}),
            1);
}

TEST(PublishMetrics, SeparatesNewEventsFromDuplicatesAndObservesFanout) {
  prometheus::Registry registry;
  PublishMetrics publish(registry);
  // Known event types exist at zero from the start.
  EXPECT_EQ(Value(registry, "octo_events_published_total", {{"event", "order_update"}}), 0);
  publish.EventPublished("booking_update", false, 3);
  publish.EventPublished("booking_update", true, 3);
  EXPECT_EQ(Value(registry, "octo_events_published_total", {{"event", "booking_update"}}), 1);
  EXPECT_EQ(Value(registry, "octo_events_duplicate_total", {{"event", "booking_update"}}), 1);
  EXPECT_EQ(Value(registry, "octo_event_fanout_webhooks"), 1);  // duplicates create nothing
}

TEST(DeliveryMetrics, RecordsAttemptsOutcomesAndQueue) {
  prometheus::Registry registry;
  DeliveryMetrics delivery(registry);
  EXPECT_EQ(Value(registry, "octo_webhooks_disabled_total", {{"reason", "failing"}}), 0);
  delivery.Attempt("booking_update", "retry", "none", "5xx", 0.5);
  delivery.Attempt("booking_update", "failed", "connect", "none", 0.1);
  delivery.GivenUp("booking_update");
  delivery.WebhookDisabled("gone");
  delivery.SetQueue(4, 5, 6, 3, 7.5);
  EXPECT_EQ(Value(registry, "octo_delivery_attempts_total",
                  {{"event", "booking_update"}, {"outcome", "retry"}, {"error_class", "none"}, {"status_class", "5xx"}}),
            1);
  EXPECT_EQ(Value(registry, "octo_delivery_attempt_duration_seconds", {{"outcome", "failed"}}), 1);
  EXPECT_EQ(Value(registry, "octo_deliveries_given_up_total", {{"event", "booking_update"}}), 1);
  EXPECT_EQ(Value(registry, "octo_webhooks_disabled_total", {{"reason", "gone"}}), 1);
  EXPECT_EQ(Value(registry, "octo_delivery_queue_deliveries", {{"state", "due"}}), 4);
  EXPECT_EQ(Value(registry, "octo_delivery_queue_deliveries", {{"state", "retry_scheduled"}}), 5);
  EXPECT_EQ(Value(registry, "octo_delivery_queue_deliveries", {{"state", "in_flight"}}), 6);
  EXPECT_EQ(Value(registry, "octo_delivery_queue_deliveries", {{"state", "held"}}), 3);
  EXPECT_EQ(Value(registry, "octo_delivery_oldest_due_age_seconds"), 7.5);
}

TEST(RetentionMetrics, CountsPassesByOutcomeAndHasNoRunwayUntilKnown) {
  prometheus::Registry registry;
  RetentionMetrics retention(registry, 30 * 86400, 3600);
  for (const char* outcome : {"ok", "error", "skipped"}) {
    EXPECT_EQ(Value(registry, "octo_retention_passes_total", {{"outcome", outcome}}), 0) << outcome;
  }
  EXPECT_EQ(Value(registry, "octo_retention_period_seconds"), 30 * 86400);
  EXPECT_EQ(Value(registry, "octo_retention_interval_seconds"), 3600);
  EXPECT_EQ(Value(registry, "octo_retention_last_success_timestamp_seconds"), 0);
  EXPECT_EQ(Value(registry, "octo_retention_partition_runway_seconds"), std::nullopt);

  const double before = static_cast<double>(time(nullptr));
  retention.PassFinished(RetentionMetrics::Outcome::kOk, 1.5);
  retention.PassFinished(RetentionMetrics::Outcome::kSkipped, 0.001);  // keeps the duration
  retention.PassFinished(RetentionMetrics::Outcome::kError, 0.5);
  retention.PassFinished(RetentionMetrics::Outcome::kError, 0.75);
  retention.SetRunway(7 * 86400);
  EXPECT_EQ(Value(registry, "octo_retention_passes_total", {{"outcome", "ok"}}), 1);
  EXPECT_EQ(Value(registry, "octo_retention_passes_total", {{"outcome", "skipped"}}), 1);
  EXPECT_EQ(Value(registry, "octo_retention_passes_total", {{"outcome", "error"}}), 2);
  EXPECT_EQ(Value(registry, "octo_retention_last_pass_duration_seconds"), 0.75);
  EXPECT_GE(*Value(registry, "octo_retention_last_success_timestamp_seconds"), before);  // the ok one
  EXPECT_EQ(Value(registry, "octo_retention_partition_runway_seconds"), 7 * 86400);
}

TEST(Labels, StatusClassesAndGrpcCodeNames) {
  EXPECT_EQ(StatusClass(204), "2xx");
  EXPECT_EQ(StatusClass(301), "3xx");
  EXPECT_EQ(StatusClass(410), "4xx");
  EXPECT_EQ(StatusClass(503), "5xx");
  EXPECT_EQ(StatusClass(0), "none");
  EXPECT_EQ(GrpcCodeName(0), "OK");
  EXPECT_EQ(GrpcCodeName(3), "InvalidArgument");
  EXPECT_EQ(GrpcCodeName(14), "Unavailable");
  EXPECT_EQ(GrpcCodeName(16), "Unauthenticated");
  EXPECT_EQ(GrpcCodeName(99), "Unknown");
}

TEST(GrpcMetrics, AMethodNotInTheProtosIsLabelledUnknown) {
  prometheus::Registry registry;
  GrpcMetrics grpc_metrics(registry);
  grpc_metrics.Started(GrpcMetrics::Side::kServer, "unary", "/evil.Service/Method12345");
  grpc_metrics.Started(GrpcMetrics::Side::kServer, "unary", "garbage");
  EXPECT_EQ(Value(registry, "grpc_server_started_total",
                  {{"grpc_type", "unary"}, {"grpc_service", "unknown"}, {"grpc_method", "unknown"}}),
            2);
}

// The interceptors on a real server (the default health service) and a real
// channel, both on 127.0.0.1.
TEST(GrpcMetrics, InterceptorsCountServerAndClientCalls) {
  prometheus::Registry server_registry;
  prometheus::Registry client_registry;
  GrpcMetrics server_metrics(server_registry);
  GrpcMetrics client_metrics(client_registry);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  // A registered service whose methods all answer UNIMPLEMENTED (the
  // generated base class), beside the default health service.
  ::octo::webhooks::v1::EventService::Service unimplemented_events;
  builder.RegisterService(&unimplemented_events);
  builder.experimental().SetInterceptorCreators(server_metrics.ServerInterceptors());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), grpc::ChannelArguments(),
      client_metrics.ClientInterceptors());
  auto health = ::grpc::health::v1::Health::NewStub(channel);
  for (const char* service : {"", "", "no.such.Service"}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ::grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    ::grpc::health::v1::HealthCheckResponse response;
    health->Check(&context, request, &response);
  }
  // A method the server registers but does not implement.
  {
    auto events = ::octo::webhooks::v1::EventService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ::octo::webhooks::v1::PublishEventResponse response;
    const grpc::Status status = events->PublishEvent(&context, {}, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  server->Shutdown();

  const Labels check = {{"grpc_type", "unary"}, {"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}};
  auto with_code = [&](const char* code) {
    Labels l = check;
    l["grpc_code"] = code;
    return l;
  };
  EXPECT_EQ(Value(server_registry, "grpc_server_started_total", check), 3);
  EXPECT_EQ(Value(server_registry, "grpc_server_handled_total", with_code("OK")), 2);
  EXPECT_EQ(Value(server_registry, "grpc_server_handled_total", with_code("NotFound")), 1);
  EXPECT_EQ(Value(server_registry, "grpc_server_handling_seconds", check), 3);
  EXPECT_EQ(Value(server_registry, "grpc_server_handled_total",
                  {{"grpc_type", "unary"},
                   {"grpc_service", "octo.webhooks.v1.EventService"},
                   {"grpc_method", "PublishEvent"},
                   {"grpc_code", "Unimplemented"}}),
            1);

  EXPECT_EQ(Value(client_registry, "grpc_client_started_total", check), 3);
  EXPECT_EQ(Value(client_registry, "grpc_client_handled_total", with_code("OK")), 2);
  EXPECT_EQ(Value(client_registry, "grpc_client_handled_total", with_code("NotFound")), 1);
  EXPECT_EQ(Value(client_registry, "grpc_client_handling_seconds", check), 3);
  EXPECT_EQ(Value(client_registry, "grpc_client_handled_total",
                  {{"grpc_type", "unary"},
                   {"grpc_service", "octo.webhooks.v1.EventService"},
                   {"grpc_method", "PublishEvent"},
                   {"grpc_code", "Unimplemented"}}),
            1);
}

TEST(MetricsServer, ServesMetricsAndHealthzOnAFreeLoopbackPort) {
  ProcessMetrics metrics;
  PublishMetrics publish(metrics.registry());
  publish.EventPublished("product_update", false, 2);
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start("127.0.0.1:0", metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);

  testing::HttpClient http((*server)->port());
  auto r = http.Send({.method = "GET", .target = "/metrics", .headers = {}, .body = std::nullopt});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  const auto samples = metrics_test::ParseText(r->body);
  EXPECT_EQ(metrics_test::Sum(samples, "octo_events_published_total", {{"event", "product_update"}}), 1);
  EXPECT_GT(metrics_test::Sum(samples, "process_resident_memory_bytes"), 0);

  auto health = http.Send({.method = "GET", .target = "/healthz", .headers = {}, .body = std::nullopt});
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);

  // The port is taken now: a second server on it fails cleanly.
  auto second = MetricsServer::Start("127.0.0.1:" + std::to_string((*server)->port()), metrics);
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
}

}  // namespace
}  // namespace octo::metrics
