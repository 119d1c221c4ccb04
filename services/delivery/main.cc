// octo-delivery: the gRPC server for DeliveryService, and the dispatcher that
// sends what it stores. Wiring only: flags -> Config (service_config.h) ->
// migrations -> pool -> store -> service -> server, then the dispatcher;
// everything else is in octo_delivery.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "services/common/grpc_auth.h"
#include "services/common/log.h"
#include "services/common/metrics.h"
#include "services/common/retention_metrics.h"
#include "services/common/net.h"
#include "services/common/pg_health_reporter.h"
#include "services/common/pg_pool.h"
#include "services/common/service_startup.h"
#include "services/delivery/delivery_service.h"
#include "services/delivery/dispatcher.h"
#include "services/delivery/group_commit.h"
#include "services/delivery/operations_service.h"
#include "services/delivery/operations_store.h"
#include "services/delivery/queue_stats.h"
#include "services/delivery/retention.h"
#include "services/delivery/service_config.h"
#include "services/delivery/store.h"

namespace octo::delivery {
namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(10);

int Run(const Config& config) {
  // Signals are taken synchronously at the end: blocked before any thread
  // starts, so every thread inherits the mask.
  const sigset_t signals = BlockShutdownSignals();
  // Metrics first: the pools, the service and the dispatcher record into
  // them from the start.
  metrics::ProcessMetrics metrics;
  metrics::PgMetrics pg_metrics(metrics.registry());
  metrics::GrpcMetrics grpc_metrics(metrics.registry());
  metrics::GrpcAuthMetrics grpc_auth_metrics(metrics.registry());
  metrics::DeliveryMetrics delivery_metrics(metrics.registry());

  // Migrations, then the pools (logged on failure).
  absl::StatusOr<ServiceDatabase> db =
      OpenServiceDatabase(config.database_url, config.db_pool_size, config.pg, &pg_metrics);
  if (!db.ok()) return 1;
  PgPool* const pool = db->pool.get();
  // The partitions every insert needs, before anything is stored
  // (docs/delivery.md, "Retention"); then kept ahead by the maintainer.
  if (absl::Status s = CreatePartitionsAhead(config.dispatcher.database_url, config.retention); !s.ok()) {
    log::Error("cannot create the partitions ahead", {{"error", s.ToString()}});
    return 1;
  }
  metrics::RetentionMetrics retention_metrics(metrics.registry(),
                                              absl::ToDoubleSeconds(config.retention.retention),
                                              absl::ToDoubleSeconds(config.retention.interval));

  PgEventStore pg_store(pool);
  GroupCommitEventStore store(&pg_store, config.group_commit);
  DeliveryServiceImpl delivery_service(&store);
  absl::StatusOr<std::unique_ptr<PgOperationsStore>> operations_store_or =
      PgOperationsStore::Create(pool);
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
    // Before the server starts: every Enqueue it serves may hand off.
    if (config.handoff) pg_store.SetHandoff(dispatcher->handoff());
    log::Info("hand-off at enqueue", {{"handoff", config.handoff ? "true" : "false"}});
  } else {
    log::Info("dispatcher off (--dispatch=false): events are stored, not sent");
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  KeepHandlerThreads(builder);
  builder.SetMaxReceiveMessageSize(kMaxEnqueueRequestBytes);
  int port = 0;
  builder.AddListeningPort(config.listen, grpc_auth::ServerCredentials(*config.callers, &grpc_auth_metrics), &port);
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
      std::make_unique<PgHealthReporter>(std::move(db->ping_pool), server->GetHealthCheckService(),
                                         std::vector<PgPool*>{pool});
  auto queue_stats = std::make_unique<QueueStatsReporter>(pool, &delivery_metrics,
                                                          config.queue_stats_interval);
  auto retention = std::make_unique<RetentionMaintainer>(config.dispatcher.database_url, config.retention,
                                                         &retention_metrics);
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

  log::Info("shutting down", {{"signal", WaitForShutdownSignal(signals)}});
  // Stop accepting first (in-flight Enqueue calls finish and commit), then
  // let the dispatcher finish its in-flight transfers and record them.
  retention.reset();
  queue_stats.reset();
  health.reset();
  server->GetHealthCheckService()->Shutdown();  // every service NOT_SERVING
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  // No Enqueue runs any more: the store hands nothing over after this.
  pg_store.SetHandoff(nullptr);
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
  octo::SkipMutexDeadlockChecks();
  octo::log::SetComponent("delivery");
  octo::log::CaptureGrpcLogs();
  absl::StatusOr<octo::delivery::Config> config = octo::delivery::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "octo-delivery: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  return octo::delivery::Run(*config);
}
