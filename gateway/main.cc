// octo-gateway: the OCTO REST dialect of webhook management, in front of the
// subscription service's gRPC API. Wiring only; see gateway/README.md.
#include <pthread.h>
#include <signal.h>

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
#include "gateway/config.h"
#include "gateway/dashboard_handler.h"
#include "gateway/grpc_backend.h"
#include "gateway/http_server.h"
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
          "allow --listen on a non-loopback address (env OCTO_GATEWAY_ALLOW_NON_LOOPBACK)");
ABSL_FLAG(
    int, request_timeout_ms, octo::EnvOrInt("OCTO_GATEWAY_REQUEST_TIMEOUT_MS", 5000),
    "deadline of the gRPC calls one HTTP request makes (env OCTO_GATEWAY_REQUEST_TIMEOUT_MS)");
ABSL_FLAG(int64_t, max_body_bytes, octo::EnvOrInt("OCTO_GATEWAY_MAX_BODY_BYTES", 65536),
          "largest request body; larger ones answer 413 (env OCTO_GATEWAY_MAX_BODY_BYTES)");
ABSL_FLAG(int, threads, octo::EnvOrInt("OCTO_GATEWAY_THREADS", 2),
          "HTTP I/O threads (env OCTO_GATEWAY_THREADS)");
ABSL_FLAG(int, read_timeout_ms, octo::EnvOrInt("OCTO_GATEWAY_READ_TIMEOUT_MS", 30000),
          "longest wait for a request's header (including keep-alive idle time) and for its body; "
          "also the write timeout (env OCTO_GATEWAY_READ_TIMEOUT_MS)");
ABSL_FLAG(int, max_header_bytes, octo::EnvOrInt("OCTO_GATEWAY_MAX_HEADER_BYTES", 16384),
          "largest request header; larger ones answer 431 (env OCTO_GATEWAY_MAX_HEADER_BYTES)");
ABSL_FLAG(int, max_connections, octo::EnvOrInt("OCTO_GATEWAY_MAX_CONNECTIONS", 10000),
          "open connections beyond this are closed at once (env OCTO_GATEWAY_MAX_CONNECTIONS)");

ABSL_FLAG(bool, dashboard_secure_cookies, EnvBool("OCTO_DASHBOARD_SECURE_COOKIES", false),
          "mark the dashboard's session cookie Secure: set it when the gateway is served over "
          "TLS (a TLS-terminating proxy in front) (env OCTO_DASHBOARD_SECURE_COOKIES)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "octo-gateway: OCTO webhooks REST API in front of the subscription service");
  absl::ParseCommandLine(argc, argv);
  octo::log::SetComponent("gateway");
  octo::log::CaptureGrpcLogs();

  octo::gateway::GatewayFlags flags;
  flags.listen = absl::GetFlag(FLAGS_listen);
  flags.subscription_target = absl::GetFlag(FLAGS_subscription_target);
  flags.base_path = absl::GetFlag(FLAGS_base_path);
  flags.port_file = absl::GetFlag(FLAGS_port_file);
  flags.allow_non_loopback = absl::GetFlag(FLAGS_allow_non_loopback);
  flags.request_timeout_ms = absl::GetFlag(FLAGS_request_timeout_ms);
  flags.max_body_bytes = absl::GetFlag(FLAGS_max_body_bytes);
  flags.threads = absl::GetFlag(FLAGS_threads);
  flags.read_timeout_ms = absl::GetFlag(FLAGS_read_timeout_ms);
  flags.max_header_bytes = absl::GetFlag(FLAGS_max_header_bytes);
  flags.max_connections = absl::GetFlag(FLAGS_max_connections);
  absl::StatusOr<octo::gateway::GatewayConfig> config = octo::gateway::MakeGatewayConfig(flags);
  if (!config.ok()) {
    octo::log::Error("invalid configuration",
                     {{"error", octo::gateway::StdView(config.status().message())}});
    return 2;
  }

  // Before any thread exists (gRPC starts its own), so every thread inherits
  // the mask and only sigwait() below receives SIGINT/SIGTERM.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // GET /metrics on the HTTP listener (docs/observability.md).
  octo::metrics::ProcessMetrics metrics;
  octo::metrics::GrpcMetrics grpc_metrics(metrics.registry());
  octo::metrics::HttpMetrics http_metrics(metrics.registry());
  config->api.metrics_text = [&metrics] { return metrics.Text(); };
  config->http.metrics = &http_metrics;

  // Internal authentication (services/common/grpc_auth.h).
  absl::StatusOr<std::string> caller_token = octo::grpc_auth::ReadTokenFile(
      "--subscription_token_file", absl::GetFlag(FLAGS_subscription_token_file));
  if (!caller_token.ok()) {
    octo::log::Error("invalid configuration",
                     {{"error", octo::gateway::StdView(caller_token.status().message())}});
    return 2;
  }
  std::shared_ptr<grpc::Channel> channel = octo::gateway::MakeSubscriptionChannel(
      config->subscription_target, &grpc_metrics, *caller_token);
  octo::gateway::GrpcSubscriptionBackend backend(channel);
  octo::gateway::ApiHandler handler(config->api, &backend);
  // The operators' dashboard under /dashboard (docs/dashboard.md).
  octo::gateway::DashboardHandler::Options dashboard_options;
  dashboard_options.api.timeout = config->api.request_timeout;
  dashboard_options.api.secure_cookies = absl::GetFlag(FLAGS_dashboard_secure_cookies);
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
    backend.Shutdown();
    return 1;
  }
  octo::log::Info("gateway listening",
                  {{"host", config->http.host},
                   {"port", port},
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
  backend.Shutdown();
  octo::log::Info("stopped");
  return 0;
}
