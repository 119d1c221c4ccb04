#pragma once
// The gateway's configuration: raw flag values in, a validated Config out.
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "gateway/api_handler.h"
#include "gateway/http_server.h"

namespace octo::gateway {

// The command line as parsed, before validation (see main.cc for the flags
// and their OCTO_* environment variables).
struct GatewayFlags {
  std::string listen = "127.0.0.1:8080";
  std::string subscription_target = "127.0.0.1:50051";
  std::string base_path = "/octo";
  std::string port_file;
  bool allow_non_loopback = false;
  int request_timeout_ms = 5000;
  std::int64_t max_body_bytes = 65536;
  int threads = 2;
  int read_timeout_ms = 30000;
  int max_header_bytes = 16384;
  int max_connections = 10000;
};

struct GatewayConfig {
  HttpServer::Options http;
  ApiHandler::Options api;
  std::string subscription_target;
  std::string port_file;  // empty: none
};

// INVALID_ARGUMENT naming the flag for a value out of range, a listen
// address that does not parse, or a non-loopback listen host without
// allow_non_loopback.
absl::StatusOr<GatewayConfig> MakeGatewayConfig(const GatewayFlags& flags);

}  // namespace octo::gateway
