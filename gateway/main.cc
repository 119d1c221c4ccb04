// octo-gateway: the OCTO REST dialect of webhook management, in front of the
// subscription service's gRPC API. Wiring only; see gateway/README.md.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gateway/api_handler.h"
#include "gateway/auth_cache.h"
#include "gateway/caching_backend.h"
#include "gateway/client_guard.h"
#include "gateway/config.h"
#include "gateway/dashboard_handler.h"
#include "gateway/grpc_backend.h"
#include "gateway/http_server.h"
#include "gateway/list_cache.h"
#include "gateway/rate_limiter.h"
#include "gateway/string_views.h"
#include "services/common/grpc_auth.h"
#include "services/common/log.h"
#include "services/common/metrics.h"
#include "services/common/net.h"

namespace {

bool EnvBool(const char* name, bool fallback) {
  const std::string value = absl::AsciiStrToLower(octo::EnvOr(name, fallback ? "true" : "false"));
  return value == "1" || value == "true" || value == "yes";
}

// Each connection costs a file descriptor: raise the soft limit to the hard
// one, and keep --max_connections below it (with room for gRPC, logs and
// the metrics listener), so a flood of connections meets the gateway's own
// limit, not accept() failing for everyone.
void RaiseFileLimit(octo::gateway::HttpServer::Options* http) {
  constexpr rlim_t kReserved = 256;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur <= kReserved) return;
  const rlim_t room = limit.rlim_cur - kReserved;
  if (static_cast<rlim_t>(http->max_connections) > room) {
    octo::log::Warn("--max_connections lowered to fit the file descriptor limit",
                    {{"max_connections", absl::StrCat(room)},
                     {"fd_limit", absl::StrCat(limit.rlim_cur)}});
    http->max_connections = static_cast<int>(room);
  }
}

}  // namespace

ABSL_FLAG(std::string, listen, octo::EnvOr("OCTO_GATEWAY_LISTEN", "127.0.0.1:8080"),
          "HTTP listen address host:port; port 0 picks a free port (env OCTO_GATEWAY_LISTEN)");
ABSL_FLAG(std::string, subscription_target,
          octo::EnvOr("OCTO_SUBSCRIPTION_TARGET", "127.0.0.1:50051"),
          "gRPC target of the subscription service (env OCTO_SUBSCRIPTION_TARGET)");
ABSL_FLAG(std::string, subscription_token_file, octo::EnvOr("OCTO_SUBSCRIPTION_TOKEN_FILE", ""),
          "file holding the gateway's caller token (identity gateway) for its calls to the "
          "subscription service; required (env OCTO_SUBSCRIPTION_TOKEN_FILE)");
ABSL_FLAG(std::string, base_path, octo::EnvOr("OCTO_GATEWAY_BASE_PATH", "/octo"),
          "path prefix of the webhook routes: <base>/webhooks; \"\" or \"/\" for the root "
          "(env OCTO_GATEWAY_BASE_PATH)");
ABSL_FLAG(std::string, port_file, octo::EnvOr("OCTO_GATEWAY_PORT_FILE", ""),
          "if set, the bound port is written here (atomically) once the gateway accepts "
          "connections (env OCTO_GATEWAY_PORT_FILE)");
ABSL_FLAG(bool, allow_non_loopback, EnvBool("OCTO_GATEWAY_ALLOW_NON_LOOPBACK", false),
          "allow --listen and --metrics_listen on a non-loopback address "
          "(env OCTO_GATEWAY_ALLOW_NON_LOOPBACK)");
ABSL_FLAG(
    int, request_timeout_ms, octo::EnvOrInt("OCTO_GATEWAY_REQUEST_TIMEOUT_MS", 5000),
    "deadline of the gRPC calls one HTTP request makes (env OCTO_GATEWAY_REQUEST_TIMEOUT_MS)");
ABSL_FLAG(int64_t, max_body_bytes, octo::EnvOrInt("OCTO_GATEWAY_MAX_BODY_BYTES", 65536),
          "largest request body; larger ones answer 413 (env OCTO_GATEWAY_MAX_BODY_BYTES)");
ABSL_FLAG(int, threads, octo::EnvOrInt("OCTO_GATEWAY_THREADS", 2),
          "HTTP I/O threads (env OCTO_GATEWAY_THREADS)");
ABSL_FLAG(int, header_timeout_ms, octo::EnvOrInt("OCTO_GATEWAY_HEADER_TIMEOUT_MS", 10000),
          "longest wait for a request's whole header, keep-alive idle time included; a client "
          "trickling bytes is closed too (env OCTO_GATEWAY_HEADER_TIMEOUT_MS)");
ABSL_FLAG(int, read_timeout_ms, octo::EnvOrInt("OCTO_GATEWAY_READ_TIMEOUT_MS", 30000),
          "longest wait for a request's whole body; also the write timeout "
          "(env OCTO_GATEWAY_READ_TIMEOUT_MS)");
ABSL_FLAG(int, max_header_bytes, octo::EnvOrInt("OCTO_GATEWAY_MAX_HEADER_BYTES", 16384),
          "largest request header; larger ones answer 431 (env OCTO_GATEWAY_MAX_HEADER_BYTES)");
ABSL_FLAG(int, max_connections, octo::EnvOrInt("OCTO_GATEWAY_MAX_CONNECTIONS", 10000),
          "open connections beyond this are closed at once (env OCTO_GATEWAY_MAX_CONNECTIONS)");

ABSL_FLAG(int, max_connections_per_address,
          octo::EnvOrInt("OCTO_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", 256),
          "open connections one client address may hold; more are closed at once; 0: no cap "
          "(env OCTO_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS)");
ABSL_FLAG(int, address_rate_limit, octo::EnvOrInt("OCTO_GATEWAY_ADDRESS_RATE_LIMIT", 1000),
          "requests per second one client address may make on average; more answer 429 with "
          "Retry-After; 0: no limit (env OCTO_GATEWAY_ADDRESS_RATE_LIMIT)");
ABSL_FLAG(int, address_rate_burst, octo::EnvOrInt("OCTO_GATEWAY_ADDRESS_RATE_BURST", 2000),
          "requests one client address may make at once (env OCTO_GATEWAY_ADDRESS_RATE_BURST)");
ABSL_FLAG(double, key_rate_limit,
          std::strtod(octo::EnvOr("OCTO_GATEWAY_KEY_RATE_LIMIT", "100").c_str(), nullptr),
          "requests per second one API key may make on average (fractions allowed: 0.5 is one "
          "every 2 s); more answer 429 with "
          "Retry-After; 0: no limit (env OCTO_GATEWAY_KEY_RATE_LIMIT)");
ABSL_FLAG(int, key_rate_burst, octo::EnvOrInt("OCTO_GATEWAY_KEY_RATE_BURST", 200),
          "requests one API key may make at once (env OCTO_GATEWAY_KEY_RATE_BURST)");
ABSL_FLAG(int, auth_cache_ttl_ms, octo::EnvOrInt("OCTO_GATEWAY_AUTH_CACHE_TTL_MS", 1000),
          "how long a valid API key is trusted without asking the subscription service; at most "
          "1000, so a revoked key is refused within 1 s; 0: always ask "
          "(env OCTO_GATEWAY_AUTH_CACHE_TTL_MS)");
ABSL_FLAG(int, auth_negative_ttl_ms, octo::EnvOrInt("OCTO_GATEWAY_AUTH_NEGATIVE_TTL_MS", 1000),
          "how long an unknown API key is refused without asking the subscription service; 0: "
          "always ask (env OCTO_GATEWAY_AUTH_NEGATIVE_TTL_MS)");
ABSL_FLAG(int, auth_cache_max_keys, octo::EnvOrInt("OCTO_GATEWAY_AUTH_CACHE_MAX_KEYS", 100000),
          "most valid keys remembered (env OCTO_GATEWAY_AUTH_CACHE_MAX_KEYS)");
ABSL_FLAG(int, auth_cache_max_unknown_keys,
          octo::EnvOrInt("OCTO_GATEWAY_AUTH_CACHE_MAX_UNKNOWN_KEYS", 10000),
          "most unknown keys remembered as refused; a client inventing keys fills only this "
          "(env OCTO_GATEWAY_AUTH_CACHE_MAX_UNKNOWN_KEYS)");
ABSL_FLAG(int, list_cache_ttl_ms, octo::EnvOrInt("OCTO_GATEWAY_LIST_CACHE_TTL_MS", 1000),
          "how long a connection's webhook list is served from memory; a change made through this "
          "gateway shows at once, one made elsewhere within this time; at most 1000; 0: no cache "
          "(env OCTO_GATEWAY_LIST_CACHE_TTL_MS)");
ABSL_FLAG(int, list_cache_max_mb, octo::EnvOrInt("OCTO_GATEWAY_LIST_CACHE_MAX_MB", 64),
          "MiB of webhook lists held in memory together; lists beyond it are fetched each time "
          "until older ones expire (env OCTO_GATEWAY_LIST_CACHE_MAX_MB)");
ABSL_FLAG(std::string, metrics_listen, octo::EnvOr("OCTO_GATEWAY_METRICS_LISTEN", "127.0.0.1:9103"),
          "listen address of GET /metrics (Prometheus), apart from the REST port; port 0 picks a "
          "free port (env OCTO_GATEWAY_METRICS_LISTEN)");
ABSL_FLAG(std::string, metrics_port_file, octo::EnvOr("OCTO_GATEWAY_METRICS_PORT_FILE", ""),
          "if set, the bound metrics port is written here (atomically) "
          "(env OCTO_GATEWAY_METRICS_PORT_FILE)");

ABSL_FLAG(bool, dashboard_secure_cookies, EnvBool("OCTO_DASHBOARD_SECURE_COOKIES", false),
          "mark the dashboard's session cookie Secure: set it when the gateway is served over "
          "TLS (a TLS-terminating proxy in front) (env OCTO_DASHBOARD_SECURE_COOKIES)");

namespace {

octo::gateway::GatewayFlags FlagsFromCommandLine() {
  octo::gateway::GatewayFlags flags;
  flags.listen = absl::GetFlag(FLAGS_listen);
  flags.subscription_target = absl::GetFlag(FLAGS_subscription_target);
  flags.base_path = absl::GetFlag(FLAGS_base_path);
  flags.port_file = absl::GetFlag(FLAGS_port_file);
  flags.allow_non_loopback = absl::GetFlag(FLAGS_allow_non_loopback);
  flags.request_timeout_ms = absl::GetFlag(FLAGS_request_timeout_ms);
  flags.max_body_bytes = absl::GetFlag(FLAGS_max_body_bytes);
  flags.threads = absl::GetFlag(FLAGS_threads);
  flags.header_timeout_ms = absl::GetFlag(FLAGS_header_timeout_ms);
  flags.read_timeout_ms = absl::GetFlag(FLAGS_read_timeout_ms);
  flags.max_header_bytes = absl::GetFlag(FLAGS_max_header_bytes);
  flags.max_connections = absl::GetFlag(FLAGS_max_connections);
  flags.max_connections_per_address = absl::GetFlag(FLAGS_max_connections_per_address);
  flags.address_rate_limit = absl::GetFlag(FLAGS_address_rate_limit);
  flags.address_rate_burst = absl::GetFlag(FLAGS_address_rate_burst);
  flags.key_rate_limit = absl::GetFlag(FLAGS_key_rate_limit);
  flags.key_rate_burst = absl::GetFlag(FLAGS_key_rate_burst);
  flags.auth_cache_ttl_ms = absl::GetFlag(FLAGS_auth_cache_ttl_ms);
  flags.auth_negative_ttl_ms = absl::GetFlag(FLAGS_auth_negative_ttl_ms);
  flags.auth_cache_max_keys = absl::GetFlag(FLAGS_auth_cache_max_keys);
  flags.auth_cache_max_unknown_keys = absl::GetFlag(FLAGS_auth_cache_max_unknown_keys);
  flags.list_cache_ttl_ms = absl::GetFlag(FLAGS_list_cache_ttl_ms);
  flags.list_cache_max_mb = absl::GetFlag(FLAGS_list_cache_max_mb);
  flags.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  flags.metrics_port_file = absl::GetFlag(FLAGS_metrics_port_file);
  return flags;
}

// GET /metrics on its own listener, loopback by default
// (docs/observability.md); errors are logged.
absl::StatusOr<std::unique_ptr<octo::metrics::MetricsServer>> StartMetrics(
    const octo::gateway::GatewayConfig& config, octo::metrics::ProcessMetrics& metrics) {
  absl::StatusOr<std::unique_ptr<octo::metrics::MetricsServer>> server =
      octo::metrics::MetricsServer::Start(config.metrics_listen, metrics);
  if (!server.ok()) {
    octo::log::Error("cannot serve metrics",
                     {{"error", octo::gateway::StdView(server.status().message())}});
    return server;
  }
  const std::string port = absl::StrCat((*server)->port());
  if (!config.metrics_port_file.empty() &&
      !octo::WriteFileAtomically(config.metrics_port_file, port + "\n")) {
    octo::log::Error("cannot write the metrics port file", {{"path", config.metrics_port_file}});
    return absl::InternalError("cannot write the metrics port file");
  }
  return server;
}

// The caches and limits in front of the subscription service
// (docs/decisions.md), wired into `config`'s server and handler options.
// Before any thread exists (gRPC starts its own), so every thread inherits
// the mask and only sigwait() in main() receives SIGINT/SIGTERM.
sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return stop_signals;
}

// The channel to the subscription service, authenticated with the gateway's
// caller token (services/common/grpc_auth.h); null, logged, without one.
std::shared_ptr<grpc::Channel> SubscriptionChannel(const octo::gateway::GatewayConfig& config,
                                                   octo::metrics::GrpcMetrics* grpc_metrics) {
  absl::StatusOr<std::string> caller_token = octo::grpc_auth::ReadTokenFile(
      "--subscription_token_file", absl::GetFlag(FLAGS_subscription_token_file));
  if (!caller_token.ok()) {
    octo::log::Error("invalid configuration",
                     {{"error", octo::gateway::StdView(caller_token.status().message())}});
    return nullptr;
  }
  return octo::gateway::MakeSubscriptionChannel(config.subscription_target, grpc_metrics,
                                                *caller_token);
}

struct Guards {
  Guards(octo::gateway::GatewayConfig* config, octo::metrics::GatewayGuardMetrics* metrics)
      : client(config->guard, metrics),
        key_limiter(config->key_rate),
        auth_cache(config->auth_cache),
        list_cache(config->list_cache) {
    config->http.guard = &client;
    config->api.key_limiter = &key_limiter;
    config->api.list_cache = &list_cache;
    config->api.guard_metrics = metrics;
  }
  octo::gateway::ClientGuard client;
  octo::gateway::RateLimiter key_limiter;
  octo::gateway::AuthCache auth_cache;
  octo::gateway::ListCache list_cache;
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "octo-gateway: OCTO webhooks REST API in front of the subscription service");
  absl::ParseCommandLine(argc, argv);
  octo::log::SetComponent("gateway");
  octo::log::CaptureGrpcLogs();

  absl::StatusOr<octo::gateway::GatewayConfig> config =
      octo::gateway::MakeGatewayConfig(FlagsFromCommandLine());
  if (!config.ok()) {
    octo::log::Error("invalid configuration",
                     {{"error", octo::gateway::StdView(config.status().message())}});
    return 2;
  }

  const sigset_t stop_signals = BlockStopSignals();
  RaiseFileLimit(&config->http);

  octo::metrics::ProcessMetrics metrics;
  octo::metrics::GrpcMetrics grpc_metrics(metrics.registry());
  octo::metrics::HttpMetrics http_metrics(metrics.registry());
  octo::metrics::GatewayGuardMetrics guard_metrics(metrics.registry());
  config->http.metrics = &http_metrics;
  absl::StatusOr<std::unique_ptr<octo::metrics::MetricsServer>> metrics_server =
      StartMetrics(*config, metrics);
  if (!metrics_server.ok()) return 1;
  const std::string metrics_port = absl::StrCat((*metrics_server)->port());

  // The caches and limits in front of the subscription service (docs/decisions.md).
  Guards guards(&*config, &guard_metrics);

  std::shared_ptr<grpc::Channel> channel = SubscriptionChannel(*config, &grpc_metrics);
  if (channel == nullptr) return 2;
  octo::gateway::GrpcSubscriptionBackend grpc_backend(channel);
  octo::gateway::CachingBackend backend(&grpc_backend, &guards.auth_cache, &guards.list_cache,
                                        &guard_metrics);
  octo::gateway::ApiHandler handler(config->api, &backend);
  // The operators' dashboard under /dashboard (docs/dashboard.md).
  octo::gateway::DashboardHandler::Options dashboard_options;
  dashboard_options.api.timeout = config->api.request_timeout;
  dashboard_options.api.secure_cookies = absl::GetFlag(FLAGS_dashboard_secure_cookies);
  // Its changes drop the partner routes' cached lists, as theirs do.
  dashboard_options.api.list_cache = &guards.list_cache;
  octo::gateway::DashboardHandler dashboard(dashboard_options, &handler, channel);
  // Declared after `dashboard`, so destroyed before it; every path out of
  // main() below calls dashboard.Stop() before that, so no dashboard worker
  // calls back into a destroyed server.
  octo::gateway::HttpServer server(config->http, &dashboard);
  if (absl::Status status = server.Start(); !status.ok()) {
    octo::log::Error("cannot start the HTTP server",
                     {{"error", octo::gateway::StdView(status.message())}});
    return 1;
  }
  const std::string port = absl::StrCat(server.port());
  if (!config->port_file.empty() && !octo::WriteFileAtomically(config->port_file, port + "\n")) {
    octo::log::Error("cannot write the port file", {{"path", config->port_file}});
    server.Stop(std::chrono::milliseconds(0));
    dashboard.Stop();
    grpc_backend.Shutdown();
    return 1;
  }
  octo::log::Info("gateway listening",
                  {{"host", config->http.host},
                   {"port", port},
                   {"metrics_port", metrics_port},
                   {"base_path", config->api.base_path.empty() ? "/" : config->api.base_path},
                   {"subscription_target", config->subscription_target}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  octo::log::Info("stopping", {{"signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM"}});
  // Requests in progress finish within their gRPC deadline; then cancel
  // whatever is left and wait for its callbacks before anything is destroyed.
  server.Stop(config->api.request_timeout + std::chrono::seconds(1));
  // The dashboard's queued requests answer 503 and its workers are joined
  // now, while the server (whose callbacks they call) still exists.
  dashboard.Stop();
  grpc_backend.Shutdown();
  octo::log::Info("stopped");
  return 0;
}
