// Metrics of the real stack: octo-delivery, octo-subscription and octo-gateway on
// 127.0.0.1, events published to a receiver on 127.0.0.1, every /metrics
// scraped and checked with `promtool check metrics`, counted values compared
// with what the test did, and a real Prometheus scraping the three processes.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/delivery_e2e/delivery_fixture.h"
#include "tests/metrics/metrics_test_util.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace octo::delivery_e2e {
namespace {

namespace v1 = ::octo::webhooks::v1;
using metrics_test::Labels;
using metrics_test::Sample;

constexpr const char* kBooking = R"({"id":"bk-m","uuid":"{uuid}","status":"CONFIRMED"})";
constexpr const char* kOrder = R"({"id":"{id}","status":"CONFIRMED"})";

// A fresh directory of the suite's own, or "" when none could be made (the
// suite then fails: it must never fall back to, and later delete, a shared one).
std::string MakeTempDir() {
  char path[] = "/tmp/octo-metrics-e2e-XXXXXX";
  if (mkdtemp(path) == nullptr) return "";
  return path;
}

int ReadPort(const std::string& path) {
  std::ifstream in(path);
  int port = 0;
  in >> port;
  return port;
}

// A TCP port on 127.0.0.1 free right now (the kernel's choice).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

class MetricsE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir());
    if (dir_->empty()) {
      ADD_FAILURE() << "mkdtemp failed: " << std::strerror(errno);
      return;
    }
    DeliveryFlags flags;
    flags.retry_schedule = "200ms";  // two attempts, then given up
    flags.extra_args = {"--metrics_listen=127.0.0.1:0", "--metrics_port_file=" + *dir_ + "/delivery-metrics.port",
                        "--queue_stats_interval=100ms"};
    // octo-subscription takes its metrics flags from the environment (the
    // children inherit it): DeliveryStack has no place for its extra flags.
    setenv("OCTO_SUBSCRIPTION_METRICS_LISTEN", "127.0.0.1:0", 1);
    setenv("OCTO_SUBSCRIPTION_METRICS_PORT_FILE", (*dir_ + "/subscription-metrics.port").c_str(), 1);
    StartStack(flags);
    unsetenv("OCTO_SUBSCRIPTION_METRICS_PORT_FILE");
  }
  static void TearDownTestSuite() {
    StopStack();
    // Only the directory mkdtemp made for this suite.
    if (dir_ != nullptr && absl::StartsWith(*dir_, "/tmp/octo-metrics-e2e-")) {
      std::system(absl::StrCat("rm -rf '", *dir_, "'").c_str());
    }
    delete dir_;
    dir_ = nullptr;
  }

  struct Target {
    std::string job;
    int port = 0;
  };
  // The three processes' metrics endpoints, with the contract's job names.
  std::vector<Target> Targets() const {
    return {{"octo-gateway", stack_->gateway_metrics_port()},
            {"octo-subscription", ReadPort(*dir_ + "/subscription-metrics.port")},
            {"octo-delivery", ReadPort(*dir_ + "/delivery-metrics.port")}};
  }

  static std::string Scrape(int port) {
    testing::HttpClient http(port);
    auto r = http.Send({.method = "GET", .target = "/metrics", .headers = {}, .body = std::nullopt});
    if (!r.ok()) {
      ADD_FAILURE() << "scraping 127.0.0.1:" << port << ": " << r.status();
      return "";
    }
    EXPECT_EQ(r->status, 200);
    return r->body;
  }
  std::vector<Sample> ScrapeSamples(const std::string& job) const {
    for (const Target& t : Targets()) {
      if (t.job == job) return metrics_test::ParseText(Scrape(t.port));
    }
    return {};
  }
  double Delivery(const std::string& name, const Labels& labels = {}) const {
    return metrics_test::Sum(ScrapeSamples("octo-delivery"), name, labels);
  }

  v1::PublishEventRequest Booking() {
    return Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("mb"));
  }

  static std::string* dir_;
};

std::string* MetricsE2eTest::dir_ = nullptr;

TEST_F(MetricsE2eTest, EveryProcessServesMetricsThatPassPromtool) {
  Hook("booking_update", receiver_->Url("/ok"));
  MustPublish(Booking());
  ASSERT_TRUE(receiver_->WaitFor("/ok", 1, 15s));
  for (const Target& t : Targets()) {
    SCOPED_TRACE(t.job);
    ASSERT_GT(t.port, 0);
    const std::string text = Scrape(t.port);
    ASSERT_FALSE(text.empty());
    const absl::Status s = metrics_test::PromtoolCheckMetrics(text);
    EXPECT_TRUE(s.ok()) << s;
    const auto samples = metrics_test::ParseText(text);
    for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                             "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"}) {
      EXPECT_GT(metrics_test::Sum(samples, name), 0) << name;
    }
    // No per-webhook / per-URL label anywhere.
    for (const Sample& sample : samples) {
      for (const auto& [label, value] : sample.labels) {
        EXPECT_TRUE(label != "webhook_id" && label != "url" && label != "supplier_id" && label != "id") << label;
        EXPECT_EQ(value.find("127.0.0.1"), std::string::npos) << sample.name << " " << label << "=" << value;
      }
    }
  }
  // The services' metrics listener also answers /healthz.
  testing::HttpClient http(Targets()[2].port);
  auto health = http.Send({.method = "GET", .target = "/healthz", .headers = {}, .body = std::nullopt});
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
}

// Counted values equal what the test did: publishing, attempts by outcome,
// given up, disabled, gRPC on both sides, gateway requests, PostgreSQL.
TEST_F(MetricsE2eTest, CountsMatchWhatTheTestDid) {
  const auto before_delivery = ScrapeSamples("octo-delivery");
  const auto before_sub = ScrapeSamples("octo-subscription");
  const auto before_gateway = ScrapeSamples("octo-gateway");
  auto delta = [](const std::vector<Sample>& before, const std::vector<Sample>& after, const std::string& name,
                  const Labels& labels = {}) {
    return metrics_test::Sum(after, name, labels) - metrics_test::Sum(before, name, labels);
  };

  receiver_->SetPlan("/fail", {}, testing::Reply(500));
  receiver_->SetPlan("/gone", {}, testing::Reply(410));
  Hook("booking_update", receiver_->Url("/ok"));
  Hook("booking_update", receiver_->Url("/fail"));
  Hook("order_update", receiver_->Url("/gone"));
  constexpr int kBookings = 4;
  for (int i = 0; i < kBookings; ++i) MustPublish(Booking());
  const auto duplicate = Booking();
  MustPublish(duplicate);
  MustPublish(duplicate);  // an idempotent replay
  MustPublish(Event(tenant_, "order_update", Fill(kOrder, {{"{id}", NewUuid()}}), NewKey("mo")));
  const int bookings = kBookings + 1;

  ASSERT_TRUE(receiver_->WaitFor("/ok", bookings, 15s));
  ASSERT_TRUE(receiver_->WaitFor("/fail", 2 * bookings, 15s));
  ASSERT_TRUE(receiver_->WaitFor("/gone", 1, 15s));
  // The results are written (and counted) just after the answers.
  const Labels booking = {{"event", "booking_update"}};
  std::vector<Sample> after;
  ASSERT_TRUE(Eventually(
      [&] {
        after = ScrapeSamples("octo-delivery");
        return delta(before_delivery, after, "octo_deliveries_given_up_total") == bookings + 1 &&
               delta(before_delivery, after, "octo_deliveries_delivered_total") == bookings;
      },
      10s))
      << "given up " << delta(before_delivery, after, "octo_deliveries_given_up_total") << ", delivered "
      << delta(before_delivery, after, "octo_deliveries_delivered_total");

  EXPECT_EQ(delta(before_delivery, after, "octo_deliveries_delivered_total", booking), bookings);
  EXPECT_EQ(delta(before_delivery, after, "octo_deliveries_given_up_total", booking), bookings);
  EXPECT_EQ(delta(before_delivery, after, "octo_deliveries_given_up_total", {{"event", "order_update"}}), 1);
  auto attempts = [&](const char* event, const char* outcome, const char* status_class) {
    return delta(before_delivery, after, "octo_delivery_attempts_total",
                 {{"event", event}, {"outcome", outcome}, {"error_class", "none"}, {"status_class", status_class}});
  };
  EXPECT_EQ(attempts("booking_update", "success", "2xx"), bookings);
  EXPECT_EQ(attempts("booking_update", "retry", "5xx"), bookings);
  EXPECT_EQ(attempts("booking_update", "failed", "5xx"), bookings);
  EXPECT_EQ(attempts("order_update", "failed", "4xx"), 1);
  EXPECT_EQ(delta(before_delivery, after, "octo_delivery_attempt_duration_seconds_count", {{"outcome", "success"}}),
            bookings);
  EXPECT_EQ(delta(before_delivery, after, "octo_delivery_latency_seconds_count", booking), bookings);
  EXPECT_EQ(delta(before_delivery, after, "octo_webhooks_disabled_total", {{"reason", "gone"}}), 1);
  // Enqueue: one call per publish, the replay included.
  const Labels enqueue = {{"grpc_service", "octo.webhooks.v1.DeliveryService"},
                          {"grpc_method", "Enqueue"},
                          {"grpc_code", "OK"}};
  EXPECT_EQ(delta(before_delivery, after, "grpc_server_handled_total", enqueue), bookings + 2);
  EXPECT_GT(delta(before_delivery, after, "octo_pg_query_duration_seconds_count", {{"operation", "dispatch_claim"}}),
            0);
  EXPECT_GT(delta(before_delivery, after, "octo_pg_query_duration_seconds_count", {{"operation", "enqueue"}}), 0);

  const auto sub = ScrapeSamples("octo-subscription");
  EXPECT_EQ(delta(before_sub, sub, "octo_events_published_total", booking), bookings);
  EXPECT_EQ(delta(before_sub, sub, "octo_events_published_total", {{"event", "order_update"}}), 1);
  EXPECT_EQ(delta(before_sub, sub, "octo_events_duplicate_total", booking), 1);
  EXPECT_EQ(delta(before_sub, sub, "octo_event_fanout_webhooks_count"), bookings + 1);
  EXPECT_EQ(delta(before_sub, sub, "octo_event_fanout_webhooks_sum"), 2 * bookings + 1);
  EXPECT_EQ(delta(before_sub, sub, "grpc_server_handled_total",
                  {{"grpc_type", "unary"},
                   {"grpc_service", "octo.webhooks.v1.EventService"},
                   {"grpc_method", "PublishEvent"},
                   {"grpc_code", "OK"}}),
            bookings + 2);
  EXPECT_EQ(delta(before_sub, sub, "grpc_client_handled_total", enqueue), bookings + 2);
  EXPECT_EQ(delta(before_sub, sub, "grpc_client_started_total",
                  {{"grpc_service", "octo.webhooks.v1.DeliveryService"}, {"grpc_method", "Enqueue"}}),
            bookings + 2);
  EXPECT_GT(metrics_test::Sum(sub, "octo_pg_pool_connections", {{"state", "idle"}}), 0);
  EXPECT_GT(delta(before_sub, sub, "octo_pg_query_duration_seconds_count"), 0);

  // Three webhooks created through the gateway with one key: authenticated
  // over gRPC once, then from the gateway's cache (unless a second passed).
  const auto gateway = ScrapeSamples("octo-gateway");
  EXPECT_EQ(delta(before_gateway, gateway, "octo_gateway_http_requests_total",
                  {{"route", "/octo/webhooks"}, {"method", "POST"}, {"code", "200"}}),
            3);
  EXPECT_EQ(delta(before_gateway, gateway, "grpc_client_handled_total",
                  {{"grpc_service", "octo.webhooks.v1.SubscriptionService"},
                   {"grpc_method", "CreateWebhook"},
                   {"grpc_code", "OK"}}),
            3);
  EXPECT_GE(delta(before_gateway, gateway, "grpc_client_handled_total",
                  {{"grpc_service", "octo.webhooks.v1.AuthService"}, {"grpc_code", "OK"}}),
            1);
  EXPECT_EQ(delta(before_gateway, gateway, "octo_gateway_auth_cache_lookups_total", {{"result", "hit"}}) +
                delta(before_gateway, gateway, "octo_gateway_auth_cache_lookups_total", {{"result", "miss"}}),
            3);
  // The scrape has its own listener: no REST request is in flight.
  EXPECT_EQ(metrics_test::Sum(gateway, "octo_gateway_http_requests_in_flight"), 0);
  // Everything is done: nothing due.
  ASSERT_TRUE(Eventually([&] { return Delivery("octo_delivery_queue_deliveries", {{"state", "due"}}) == 0; }, 5s));
  EXPECT_EQ(Delivery("octo_delivery_oldest_due_age_seconds"), 0);
}

TEST_F(MetricsE2eTest, QueueGaugesShowADeliveryInFlight) {
  receiver_->SetPlan("/slow", {}, testing::Reply(200).Delay(1500ms));
  Hook("booking_update", receiver_->Url("/slow"));
  MustPublish(Booking());
  ASSERT_TRUE(receiver_->WaitFor("/slow", 1, 15s));
  // --queue_stats_interval=100ms: the lease is seen while the answer waits.
  EXPECT_TRUE(Eventually([&] { return Delivery("octo_delivery_queue_deliveries", {{"state", "in_flight"}}) == 1; },
                         1200ms));
  EXPECT_TRUE(Eventually([&] { return Delivery("octo_delivery_queue_deliveries", {{"state", "in_flight"}}) == 0; },
                         10s));
}

// Every metric named by a dashboard (deploy/grafana/*.json) or an alert
// rule (deploy/prometheus/*.yml) exists in what the running stack exposes;
// the committed fixtures make the check meaningful without deploy/ files.
TEST_F(MetricsE2eTest, DashboardsAndRulesNameOnlyExposedMetrics) {
  // The deployment's dashboard and rules must be there to be checked (the
  // checker also fails on a path that does not exist).
  for (const char* file : {"/deploy/grafana/octo-webhooks.json", "/deploy/prometheus/alerts.yml",
                           "/deploy/prometheus/recording.yml"}) {
    ASSERT_TRUE(std::filesystem::is_regular_file(absl::StrCat(OCTO_SOURCE_DIR, file))) << file;
  }
  Hook("booking_update", receiver_->Url("/ok"));
  MustPublish(Booking());
  ASSERT_TRUE(receiver_->WaitFor("/ok", 1, 15s));
  const std::string exposition = absl::StrCat(*dir_, "/scraped.txt");
  {
    std::ofstream out(exposition);
    for (const Target& t : Targets()) out << Scrape(t.port) << "\n";
  }
  const std::string checker = absl::StrCat(OCTO_SOURCE_DIR, "/tests/metrics/check_metric_refs.py");
  const std::string fixtures = absl::StrCat(OCTO_SOURCE_DIR, "/tests/metrics/fixtures/");
  auto [code, output] = metrics_test::RunShell(absl::StrCat(
      "python3 '", checker, "' --metrics '", exposition, "' '", OCTO_SOURCE_DIR, "/deploy/grafana' '",
      OCTO_SOURCE_DIR, "/deploy/prometheus' '", OCTO_SOURCE_DIR,
      "/tests/metrics/stack_fixture/stack_dashboard.json'"));
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find(" 0 missing"), std::string::npos) << output;
  // The fixture alone makes 30 references: the check really looked.
  const std::size_t checked_at = output.find(" metric references checked");
  ASSERT_NE(checked_at, std::string::npos) << output;
  const std::size_t number_at = output.rfind(' ', checked_at - 1);
  EXPECT_GE(std::atoi(output.c_str() + number_at + 1), 30) << output;
  // And the check can fail: a dashboard naming a metric nobody exposes.
  auto [bad_code, bad_output] = metrics_test::RunShell(absl::StrCat(
      "python3 '", checker, "' --metrics '", exposition, "' '", fixtures, "dashboard_missing.json'"));
  EXPECT_EQ(bad_code, 1) << bad_output;
  EXPECT_NE(bad_output.find("octo_deliveries_lost_total"), std::string::npos) << bad_output;
}

// A real Prometheus (the Debian package's binary) scrapes the three
// processes every 500 ms; PromQL over what it stored equals what was sent.
TEST_F(MetricsE2eTest, RealPrometheusScrapesTheStackAndCountsTheDeliveries) {
  Hook("booking_update", receiver_->Url("/ok"));
  constexpr int kEvents = 3;
  for (int i = 0; i < kEvents; ++i) MustPublish(Booking());
  ASSERT_TRUE(receiver_->WaitFor("/ok", kEvents, 15s));
  double delivered = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        const double now = Delivery("octo_deliveries_delivered_total");
        if (now == delivered && now > 0) return true;  // settled across two scrapes
        delivered = now;
        return false;
      },
      10s, 300ms));
  const double published = metrics_test::Sum(ScrapeSamples("octo-subscription"), "octo_events_published_total");

  const std::string prom_dir = absl::StrCat(*dir_, "/prometheus");
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p '", prom_dir, "/data'").c_str()), 0);
  {
    std::ofstream config(prom_dir + "/prometheus.yml");
    // Only 127.0.0.1 targets: this Prometheus reaches nothing else.
    config << "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n  evaluation_interval: 1s\n"
           << "scrape_configs:\n";
    for (const Target& t : Targets()) {
      config << "  - job_name: " << t.job << "\n    static_configs:\n      - targets: ['127.0.0.1:" << t.port
             << "']\n";
    }
  }
  const int port = FreePort();
  ASSERT_GT(port, 0);
  auto prometheus = testing::ChildProcess::Start({
      .binary = "/usr/bin/prometheus",
      .args = {"--config.file=" + prom_dir + "/prometheus.yml", "--storage.tsdb.path=" + prom_dir + "/data",
               absl::StrCat("--web.listen-address=127.0.0.1:", port), "--log.level=warn"},
      .env = {},
      .log_path = prom_dir + "/prometheus.log",
  });
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  // The ChildProcess kills Prometheus on every exit path (destructor; and
  // PDEATHSIG if this test process dies).

  auto query = [&](const std::string& promql) -> std::optional<double> {
    testing::HttpClient http(port, 2s);
    auto r = http.Send({.method = "GET",
                        .target = "/api/v1/query?query=" + UrlEncode(promql),
                        .headers = {},
                        .body = std::nullopt});
    if (!r.ok() || r->status != 200) return std::nullopt;
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(r->body, ec);
    if (ec) return std::nullopt;
    const auto* result = v.at_pointer("/data/result").if_array();
    if (result == nullptr || result->size() != 1) return std::nullopt;
    const auto* value = result->at(0).at_pointer("/value/1").if_string();
    if (value == nullptr) return std::nullopt;
    return std::strtod(value->c_str(), nullptr);
  };
  // All three targets up.
  ASSERT_TRUE(Eventually([&] { return query("sum(up)") == 3.0; }, 30s, 250ms))
      << "Prometheus did not scrape the three targets\n"
      << (*prometheus)->LogTail(4096);
  EXPECT_TRUE(Eventually([&] { return query("sum(octo_deliveries_delivered_total)") == delivered; }, 10s, 250ms))
      << "Prometheus: " << query("sum(octo_deliveries_delivered_total)").value_or(-1) << ", want " << delivered;
  EXPECT_GE(delivered, kEvents);
  EXPECT_EQ(query("sum(octo_events_published_total{job=\"octo-subscription\"})"), published);
  EXPECT_EQ(query("count(up{job=~\"octo-gateway|octo-subscription|octo-delivery\"} == 1)"), 3.0);
  EXPECT_EQ(query("count(process_open_fds)"), 3.0);
  EXPECT_TRUE((*prometheus)->IsRunning()) << (*prometheus)->LogTail(4096);
  (*prometheus)->Terminate(5s);
}

}  // namespace
}  // namespace octo::delivery_e2e
