// GrpcMetrics' series cache (services/common/metrics.h): the interceptors
// record on series looked up once per method. What must hold: the same
// series and labels as a look-up per call would give, series created only
// when first used, a client's invented method names never cached, a hard
// bound, and exact counts from many threads at once.
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/str_cat.h"
#include "services/common/metrics.h"
#include "tests/metrics/metrics_test_util.h"

namespace octo::metrics {
namespace {

using metrics_test::Labels;
using metrics_test::Value;

constexpr char kCheck[] = "/grpc.health.v1.Health/Check";
const Labels kCheckLabels = {
    {"grpc_type", "unary"}, {"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}};

Labels WithCode(Labels labels, const char* code) {
  labels["grpc_code"] = code;
  return labels;
}

TEST(GrpcMetricsCache, AMethodIsLookedUpOnceAndKept) {
  prometheus::Registry registry;
  GrpcMetrics metrics(registry);
  const auto first = metrics.Series(GrpcMetrics::Side::kServer, "unary", kCheck);
  const auto second = metrics.Series(GrpcMetrics::Side::kServer, "unary", kCheck);
  EXPECT_EQ(first.get(), second.get());
  EXPECT_EQ(metrics.CachedSeries(), 1u);
  // The other side and another type are series of their own.
  EXPECT_NE(metrics.Series(GrpcMetrics::Side::kClient, "unary", kCheck).get(), first.get());
  EXPECT_NE(metrics.Series(GrpcMetrics::Side::kServer, "server_stream", kCheck).get(), first.get());
  EXPECT_EQ(metrics.CachedSeries(), 3u);
}

TEST(GrpcMetricsCache, SeriesAppearOnlyWhenFirstUsedAsBefore) {
  prometheus::Registry registry;
  GrpcMetrics metrics(registry);
  metrics.Started(GrpcMetrics::Side::kServer, "unary", kCheck);
  EXPECT_EQ(Value(registry, "grpc_server_started_total", kCheckLabels), 1);
  // No handled or handling series before a call was handled, and no code
  // but the ones seen.
  EXPECT_EQ(Value(registry, "grpc_server_handling_seconds", kCheckLabels), std::nullopt);
  EXPECT_EQ(Value(registry, "grpc_server_handled_total", WithCode(kCheckLabels, "OK")), std::nullopt);
  metrics.Handled(GrpcMetrics::Side::kServer, "unary", kCheck, "NotFound", 0.2);
  EXPECT_EQ(Value(registry, "grpc_server_handled_total", WithCode(kCheckLabels, "NotFound")), 1);
  EXPECT_EQ(Value(registry, "grpc_server_handled_total", WithCode(kCheckLabels, "OK")), std::nullopt);
  EXPECT_EQ(Value(registry, "grpc_server_handling_seconds", kCheckLabels), 1);
  // The histogram keeps the latency buckets (5 ms .. 10 s, then +Inf).
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("grpc_server_handling_seconds_bucket{grpc_method=\"Check\",grpc_service="
                      "\"grpc.health.v1.Health\",grpc_type=\"unary\",le=\"0.005\"} 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("le=\"10\"} 1"), std::string::npos) << text;
}

TEST(GrpcMetricsCache, InventedMethodNamesShareOneUnknownEntry) {
  prometheus::Registry registry;
  GrpcMetrics metrics(registry);
  for (int i = 0; i < 500; ++i) {
    const std::string method = absl::StrCat("/evil.Service/Method", i);
    metrics.Started(GrpcMetrics::Side::kServer, "unary", method);
    metrics.Handled(GrpcMetrics::Side::kServer, "unary", method, "Unimplemented", 0.001);
  }
  EXPECT_EQ(metrics.CachedSeries(), 1u);
  const Labels unknown = {{"grpc_type", "unary"}, {"grpc_service", "unknown"}, {"grpc_method", "unknown"}};
  EXPECT_EQ(Value(registry, "grpc_server_started_total", unknown), 500);
  EXPECT_EQ(Value(registry, "grpc_server_handled_total", WithCode(unknown, "Unimplemented")), 500);
}

TEST(GrpcMetricsCache, PastItsBoundASeriesIsResolvedForTheCallAlone) {
  prometheus::Registry registry;
  GrpcMetrics metrics(registry, /*max_cached=*/2);
  const char* methods[] = {kCheck, "/grpc.health.v1.Health/Watch",
                           "/octo.webhooks.v1.EventService/PublishEvent"};
  for (int round = 0; round < 3; ++round) {
    for (const char* method : methods) {
      metrics.Started(GrpcMetrics::Side::kClient, "unary", method);
      metrics.Handled(GrpcMetrics::Side::kClient, "unary", method, "OK", 0.01);
    }
  }
  EXPECT_EQ(metrics.CachedSeries(), 2u);
  const Labels publish = {{"grpc_type", "unary"},
                          {"grpc_service", "octo.webhooks.v1.EventService"},
                          {"grpc_method", "PublishEvent"}};
  EXPECT_EQ(Value(registry, "grpc_client_started_total", publish), 3);
  EXPECT_EQ(Value(registry, "grpc_client_handled_total", WithCode(publish, "OK")), 3);
  EXPECT_EQ(Value(registry, "grpc_client_handling_seconds", publish), 3);
  EXPECT_EQ(Value(registry, "grpc_client_started_total", kCheckLabels), 3);
}

// The bound applies to known methods: the one series all unknown methods
// share is kept past it (else every such call would build a series anew
// under the exclusive lock).
TEST(GrpcMetricsCache, TheUnknownMethodsSeriesIsKeptPastTheBound) {
  prometheus::Registry registry;
  GrpcMetrics metrics(registry, /*max_cached=*/1);
  metrics.Started(GrpcMetrics::Side::kServer, "unary", kCheck);
  for (int i = 0; i < 3; ++i) {
    metrics.Started(GrpcMetrics::Side::kServer, "unary", absl::StrCat("/evil.Service/Method", i));
  }
  EXPECT_EQ(metrics.CachedSeries(), 2u);
  const Labels unknown = {{"grpc_type", "unary"}, {"grpc_service", "unknown"}, {"grpc_method", "unknown"}};
  EXPECT_EQ(Value(registry, "grpc_server_started_total", unknown), 3);
}

TEST(GrpcMetricsCache, ACodeNameOutsideTheTableIsCountedUnderThatName) {
  prometheus::Registry registry;
  GrpcMetrics metrics(registry);
  metrics.Handled(GrpcMetrics::Side::kServer, "unary", kCheck, "Weird", 0.1);
  EXPECT_EQ(Value(registry, "grpc_server_handled_total", WithCode(kCheckLabels, "Weird")), 1);
  EXPECT_EQ(Value(registry, "grpc_server_handling_seconds", kCheckLabels), 1);
}

// Many threads resolve and record on the same fresh series at once: every
// call is counted, once.
TEST(GrpcMetricsCache, ConcurrentCallsCountExactly) {
  prometheus::Registry registry;
  GrpcMetrics metrics(registry);
  constexpr int kThreads = 8;
  constexpr int kCalls = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kCalls; ++i) {
        metrics.Started(GrpcMetrics::Side::kServer, "unary", kCheck);
        metrics.Handled(GrpcMetrics::Side::kServer, "unary", kCheck, (i + t) % 2 == 0 ? "OK" : "Internal",
                        0.001);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(Value(registry, "grpc_server_started_total", kCheckLabels), kThreads * kCalls);
  EXPECT_EQ(Value(registry, "grpc_server_handled_total", WithCode(kCheckLabels, "OK")), kThreads * kCalls / 2);
  EXPECT_EQ(Value(registry, "grpc_server_handled_total", WithCode(kCheckLabels, "Internal")),
            kThreads * kCalls / 2);
  EXPECT_EQ(Value(registry, "grpc_server_handling_seconds", kCheckLabels), kThreads * kCalls);
  EXPECT_EQ(metrics.CachedSeries(), 1u);
}

}  // namespace
}  // namespace octo::metrics
