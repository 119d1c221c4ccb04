#pragma once
// The gateway's configuration: raw flag values in, a validated Config out.
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "gateway/api_handler.h"
#include "gateway/auth_cache.h"
#include "gateway/client_guard.h"
#include "gateway/http_server.h"
#include "gateway/list_cache.h"
#include "gateway/rate_limiter.h"

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
  int header_timeout_ms = 10000;
  int read_timeout_ms = 30000;
  int max_header_bytes = 16384;
  int max_connections = 10000;
  int max_connections_per_address = 256;
  int address_rate_limit = 1000;  // requests/s per client address; 0: none
  int address_rate_burst = 2000;
  double key_rate_limit = 100;  // requests/s per API key (fractions allowed); 0: none
  int key_rate_burst = 200;
  int auth_cache_ttl_ms = 1000;
  int auth_negative_ttl_ms = 1000;
  int auth_cache_max_keys = 100000;
  int auth_cache_max_unknown_keys = 10000;
  int list_cache_ttl_ms = 1000;
  int list_cache_max_mb = 64;
  std::string metrics_listen = "127.0.0.1:9103";
  std::string metrics_port_file;
};

struct GatewayConfig {
  HttpServer::Options http;
  ApiHandler::Options api;
  ClientGuard::Options guard;
  RateLimiter::Options key_rate;
  AuthCache::Options auth_cache;
  ListCache::Options list_cache;
  std::string subscription_target;
  std::string port_file;  // empty: none
  std::string metrics_listen;
  std::string metrics_port_file;  // empty: none
};

// INVALID_ARGUMENT naming the flag for a value out of range, a listen
// address that does not parse, or a non-loopback listen host (REST or
// metrics) without allow_non_loopback.
absl::StatusOr<GatewayConfig> MakeGatewayConfig(const GatewayFlags& flags);

}  // namespace octo::gateway
