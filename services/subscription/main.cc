// octo-subscription: the gRPC server for SubscriptionService, AdminService,
// AuthService and EventService. Wiring only: flags -> Config -> migrations ->
// pool -> repository (+ a DeliveryService channel) -> services -> server;
// everything else is in octo_subscription.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/common/grpc_auth.h"
#include "services/common/grpc_channel.h"
#include "services/common/log.h"
#include "services/common/metrics.h"
#include "services/common/net.h"
#include "services/common/pg_connection.h"
#include "services/common/pg_flags.h"
#include "services/common/pg_health_reporter.h"
#include "services/common/pg_pool.h"
#include "services/common/service_startup.h"
#include "services/subscription/operator_service.h"
#include "services/subscription/operator_store.h"
#include "services/subscription/admin_service.h"
#include "services/delivery/event_validation.h"
#include "services/subscription/auth_service.h"
#include "services/subscription/event_service.h"
#include "services/subscription/pg_repository.h"
#include "services/subscription/subscription_service.h"
#include "services/subscription/validation.h"

ABSL_FLAG(std::string, grpc_listen, octo::EnvOr("OCTO_SUBSCRIPTION_LISTEN", "127.0.0.1:50051"),
          "host:port to serve gRPC on; port 0 picks a free port (env OCTO_SUBSCRIPTION_LISTEN)");
ABSL_FLAG(std::string, database_url, octo::EnvOr("OCTO_DATABASE_URL", ""),
          "libpq conninfo of the PostgreSQL database; required (env OCTO_DATABASE_URL)");
ABSL_FLAG(int, db_pool_size, octo::EnvOrInt("OCTO_DB_POOL_SIZE", 8),
          "maximum PostgreSQL connections (env OCTO_DB_POOL_SIZE)");
ABSL_FLAG(int, default_max_webhooks, octo::EnvOrInt("OCTO_DEFAULT_MAX_WEBHOOKS", 100),
          "webhook cap of a connection created without one (env OCTO_DEFAULT_MAX_WEBHOOKS)");
ABSL_FLAG(std::string, port_file, octo::EnvOr("OCTO_SUBSCRIPTION_PORT_FILE", ""),
          "if set, the bound port is written here once serving (env OCTO_SUBSCRIPTION_PORT_FILE)");
ABSL_FLAG(bool, allow_non_loopback, octo::EnvOr("OCTO_ALLOW_NON_LOOPBACK", "false") == "true",
          "allow --grpc_listen on a non-loopback address (env OCTO_ALLOW_NON_LOOPBACK=true)");
ABSL_FLAG(std::string, delivery_target, octo::EnvOr("OCTO_DELIVERY_TARGET", "127.0.0.1:50052"),
          "gRPC target of octo-delivery, where published events are stored "
          "(env OCTO_DELIVERY_TARGET)");
// Internal authentication (services/common/grpc_auth.h).
ABSL_FLAG(std::string, grpc_callers_dir, octo::EnvOr("OCTO_GRPC_CALLERS_DIR", ""),
          "directory of the internal callers' tokens, one file per caller identity (gateway, "
          "admin, publisher, ...); required (env OCTO_GRPC_CALLERS_DIR)");
ABSL_FLAG(std::string, delivery_token_file, octo::EnvOr("OCTO_DELIVERY_TOKEN_FILE", ""),
          "file holding this process's caller token (identity subscription) for its calls to "
          "octo-delivery; required (env OCTO_DELIVERY_TOKEN_FILE)");
ABSL_FLAG(std::string, metrics_listen,
          octo::EnvOr("OCTO_SUBSCRIPTION_METRICS_LISTEN", "127.0.0.1:9101"),
          "host:port of the HTTP listener serving /metrics and /healthz; port 0 picks a free port "
          "(env OCTO_SUBSCRIPTION_METRICS_LISTEN)");
ABSL_FLAG(std::string, metrics_port_file, octo::EnvOr("OCTO_SUBSCRIPTION_METRICS_PORT_FILE", ""),
          "if set, the bound metrics port is written here once serving "
          "(env OCTO_SUBSCRIPTION_METRICS_PORT_FILE)");
ABSL_FLAG(int, operator_session_hours, octo::EnvOrInt("OCTO_OPERATOR_SESSION_HOURS", 12),
          "how long a dashboard operator's session lasts after login, in hours (1..720)");
ABSL_FLAG(int, delivery_timeout_ms, octo::EnvOrInt("OCTO_DELIVERY_TIMEOUT_MS", 10000),
          "deadline of one DeliveryService.Enqueue call, in milliseconds; a publisher's own "
          "sooner deadline wins (env OCTO_DELIVERY_TIMEOUT_MS)");
// SSRF guard at creation: the same setting as octo-delivery's (one
// environment variable configures both).
ABSL_FLAG(std::string, allow_destination_cidrs,
          octo::EnvOr("OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS", ""),
          "comma-separated CIDRs webhook URLs may name as IP literals although they are "
          "loopback, private, link-local, ... (e.g. 127.0.0.0/8,::1/128); empty = public "
          "addresses only (env OCTO_DELIVERY_ALLOW_DESTINATION_CIDRS)");

namespace octo::subscription {
namespace {

namespace pb = ::octo::webhooks::v1;

constexpr auto kShutdownGrace = std::chrono::seconds(10);

struct Config {
  std::string listen;
  std::string database_url;
  int db_pool_size = 8;
  int default_max_webhooks = 100;
  std::string port_file;
  std::string delivery_target;
  std::chrono::milliseconds delivery_timeout{10000};
  std::string metrics_listen;
  std::string metrics_port_file;
  DestinationPolicy destination_policy;
  PgConnectionOptions pg;
  std::optional<grpc_auth::CallerTokens> callers;  // who may call us
  std::string delivery_token;                      // how we call octo-delivery
};

absl::StatusOr<Config> ConfigFromFlags() {
  Config c;
  c.listen = absl::GetFlag(FLAGS_grpc_listen);
  c.database_url = absl::GetFlag(FLAGS_database_url);
  c.db_pool_size = absl::GetFlag(FLAGS_db_pool_size);
  c.default_max_webhooks = absl::GetFlag(FLAGS_default_max_webhooks);
  c.port_file = absl::GetFlag(FLAGS_port_file);
  c.delivery_target = absl::GetFlag(FLAGS_delivery_target);
  const int delivery_timeout_ms = absl::GetFlag(FLAGS_delivery_timeout_ms);
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  c.metrics_port_file = absl::GetFlag(FLAGS_metrics_port_file);

  const bool allow_non_loopback = absl::GetFlag(FLAGS_allow_non_loopback);
  if (absl::Status s = CheckListenAddress("--grpc_listen", c.listen, allow_non_loopback); !s.ok()) return s;
  if (absl::Status s = CheckListenAddress("--metrics_listen", c.metrics_listen, allow_non_loopback); !s.ok()) {
    return s;
  }
  if (c.database_url.empty()) {
    return absl::InvalidArgumentError(
        "--database_url (or OCTO_DATABASE_URL) is required: a libpq conninfo");
  }
  if (c.db_pool_size < 1 || c.db_pool_size > 1000) {
    return absl::InvalidArgumentError("--db_pool_size: must be between 1 and 1000");
  }
  absl::StatusOr<PgConnectionOptions> pg = PgOptionsFromFlags();
  if (!pg.ok()) return pg.status();
  c.pg = *pg;
  if (c.default_max_webhooks < 1 || c.default_max_webhooks > kMaxWebhooksLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("--default_max_webhooks: must be between 1 and ", kMaxWebhooksLimit));
  }
  if (c.delivery_target.empty()) return absl::InvalidArgumentError("--delivery_target is empty");
  if (delivery_timeout_ms < 1 || delivery_timeout_ms > 600000) {
    return absl::InvalidArgumentError("--delivery_timeout_ms: must be between 1 and 600000");
  }
  c.delivery_timeout = std::chrono::milliseconds(delivery_timeout_ms);
  absl::StatusOr<DestinationPolicy> policy =
      DestinationPolicy::Parse(absl::GetFlag(FLAGS_allow_destination_cidrs));
  if (!policy.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--allow_destination_cidrs: ", policy.status().message()));
  }
  c.destination_policy = *std::move(policy);
  absl::StatusOr<grpc_auth::CallerTokens> callers =
      grpc_auth::CallerTokens::LoadDir(absl::GetFlag(FLAGS_grpc_callers_dir));
  if (!callers.ok()) return callers.status();
  c.callers = *std::move(callers);
  absl::StatusOr<std::string> delivery_token =
      grpc_auth::ReadTokenFile("--delivery_token_file", absl::GetFlag(FLAGS_delivery_token_file));
  if (!delivery_token.ok()) return delivery_token.status();
  c.delivery_token = *std::move(delivery_token);
  return c;
}

int Run(const Config& config) {
  // Signals are taken synchronously at the end: blocked before any thread
  // starts, so every thread inherits the mask.
  const sigset_t signals = BlockShutdownSignals();
  // Metrics first: the pools and services record into them from the start.
  metrics::ProcessMetrics metrics;
  metrics::PgMetrics pg_metrics(metrics.registry());
  metrics::GrpcMetrics grpc_metrics(metrics.registry());
  metrics::GrpcAuthMetrics grpc_auth_metrics(metrics.registry());
  metrics::PublishMetrics publish_metrics(metrics.registry());

  // Migrations, then the pools (logged on failure).
  absl::StatusOr<ServiceDatabase> db =
      OpenServiceDatabase(config.database_url, config.db_pool_size, config.pg, &pg_metrics);
  if (!db.ok()) return 1;
  PgPool* const pool = db->pool.get();

  absl::StatusOr<std::unique_ptr<PgRepository>> repository_or = PgRepository::Create(pool);
  if (!repository_or.ok()) {
    log::Error("cannot prepare the repository", {{"error", repository_or.status().ToString()}});
    return 1;
  }
  PgRepository& repository = **repository_or;
  // The channel connects lazily and reconnects by itself: octo-delivery may
  // start after us; until it is reachable, publishing and the delivery
  // operations answer UNAVAILABLE.
  // Round-robin over every address the target resolves to (e.g.
  // ipv4:127.0.0.1:a,127.0.0.1:b), a replica that is down or NOT_SERVING
  // skipped (services/common/grpc_channel.h).
  auto delivery_interceptors = grpc_metrics.ClientInterceptors();
  delivery_interceptors.push_back(grpc_auth::TokenInterceptor(config.delivery_token));
  grpc::ChannelArguments delivery_args = grpc_channel::ReplicaChannelArguments();
  std::shared_ptr<grpc::Channel> delivery_channel =
      grpc::experimental::CreateCustomChannelWithInterceptors(
          config.delivery_target, grpc::InsecureChannelCredentials(), delivery_args,
          std::move(delivery_interceptors));
  std::unique_ptr<pb::DeliveryService::Stub> delivery_stub =
      pb::DeliveryService::NewStub(delivery_channel);
  std::unique_ptr<pb::DeliveryOperationsService::Stub> operations_stub =
      pb::DeliveryOperationsService::NewStub(delivery_channel);
  SubscriptionServiceImpl subscription_service(&repository, operations_stub.get(),
                                               config.delivery_timeout, config.destination_policy);
  AdminServiceImpl admin_service(&repository, config.default_max_webhooks);
  AuthServiceImpl auth_service(&repository);
  EventServiceImpl event_service(delivery_stub.get(), config.delivery_timeout,
                                 &publish_metrics);
  OperatorStore operator_store(pool);
  OperatorServiceImpl operator_service(&operator_store, &repository,
                                       absl::Hours(std::clamp(absl::GetFlag(FLAGS_operator_session_hours), 1, 720)));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  KeepHandlerThreads(builder);
  int port = 0;
  builder.AddListeningPort(config.listen, grpc_auth::ServerCredentials(*config.callers, &grpc_auth_metrics), &port);
  builder.RegisterService(&subscription_service);
  builder.RegisterService(&admin_service);
  builder.RegisterService(&auth_service);
  builder.RegisterService(&event_service);
  builder.RegisterService(&operator_service);
  builder.experimental().SetInterceptorCreators(grpc_metrics.ServerInterceptors());
  // Room for PublishEvents batches (each resource up to 1 MiB).
  builder.SetMaxReceiveMessageSize(delivery::kMaxPublishRequestBytes);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    log::Error("cannot listen", {{"address", config.listen}});
    return 1;
  }
  auto health =
      std::make_unique<PgHealthReporter>(std::move(db->ping_pool), server->GetHealthCheckService(),
                                         std::vector<PgPool*>{pool});
  absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> metrics_server =
      metrics::MetricsServer::Start(config.metrics_listen, metrics);
  if (!metrics_server.ok()) {
    log::Error("cannot serve metrics", {{"error", metrics_server.status().ToString()}});
    health.reset();
    server->Shutdown();
    return 1;
  }
  const std::string metrics_port_text = std::to_string((*metrics_server)->port());
  if (!config.metrics_port_file.empty() &&
      !WriteFileAtomically(config.metrics_port_file, metrics_port_text + "\n")) {
    log::Error("cannot write the metrics port file", {{"path", config.metrics_port_file}});
    health.reset();
    server->Shutdown();
    return 1;
  }

  const std::string port_text = std::to_string(port);
  if (!config.port_file.empty() && !WriteFileAtomically(config.port_file, port_text + "\n")) {
    log::Error("cannot write the port file", {{"path", config.port_file}});
    server->Shutdown();
    return 1;
  }
  log::Info("serving", {{"address", config.listen},
                        {"port", port_text},
                        {"metrics_port", metrics_port_text},
                        {"delivery_target", config.delivery_target}});

  log::Info("shutting down", {{"signal", WaitForShutdownSignal(signals)}});
  health.reset();
  server->GetHealthCheckService()->Shutdown();  // every service NOT_SERVING
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  log::Info("stopped");
  return 0;
}

}  // namespace
}  // namespace octo::subscription

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "octo-subscription: webhook subscriptions, connections and API keys over gRPC.\n"
      "Every flag defaults from its OCTO_* environment variable.");
  absl::ParseCommandLine(argc, argv);
  octo::SkipMutexDeadlockChecks();
  octo::log::SetComponent("subscription");
  octo::log::CaptureGrpcLogs();
  absl::StatusOr<octo::subscription::Config> config = octo::subscription::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "octo-subscription: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  return octo::subscription::Run(*config);
}
