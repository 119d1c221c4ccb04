#include "gateway/config.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gateway/router.h"
#include "services/common/net.h"

namespace octo::gateway {

namespace {

absl::Status CheckRange(absl::string_view flag, std::int64_t value, std::int64_t min,
                        std::int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be in [", min, ", ", max, "], got ", value));
}

}  // namespace

absl::StatusOr<GatewayConfig> MakeGatewayConfig(const GatewayFlags& flags) {
  GatewayConfig config;

  absl::StatusOr<HostPort> listen = ParseHostPort(flags.listen);
  if (!listen.ok())
    return absl::InvalidArgumentError(absl::StrCat("--listen: ", listen.status().message()));
  if (!flags.allow_non_loopback && !IsLoopbackHost(listen->host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen: '", listen->host,
                     "' is not a loopback address; pass --allow_non_loopback "
                     "to serve other hosts"));
  }
  absl::StatusOr<HostPort> metrics_listen = ParseHostPort(flags.metrics_listen);
  if (!metrics_listen.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen: ", metrics_listen.status().message()));
  }
  if (!flags.allow_non_loopback && !IsLoopbackHost(metrics_listen->host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen: '", metrics_listen->host,
                     "' is not a loopback address; pass --allow_non_loopback "
                     "to serve other hosts"));
  }
  // Fractional: 0.5 is one request every 2 s.
  if (!(flags.key_rate_limit >= 0 && flags.key_rate_limit <= 10000000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--key_rate_limit must be in [0, 10000000], got ", flags.key_rate_limit));
  }
  if (flags.subscription_target.empty())
    return absl::InvalidArgumentError("--subscription_target is empty");
  absl::StatusOr<std::string> base_path = NormalizeBasePath(flags.base_path);
  if (!base_path.ok()) return base_path.status();

  for (const absl::Status& status : {
           CheckRange("request_timeout_ms", flags.request_timeout_ms, 1, 600000),
           CheckRange("max_body_bytes", flags.max_body_bytes, 1, std::int64_t{64} << 20),
           CheckRange("threads", flags.threads, 1, 256),
           CheckRange("header_timeout_ms", flags.header_timeout_ms, 1, 3600000),
           CheckRange("read_timeout_ms", flags.read_timeout_ms, 1, 3600000),
           CheckRange("max_header_bytes", flags.max_header_bytes, 1024, 1 << 20),
           CheckRange("max_connections", flags.max_connections, 1, 1000000),
           CheckRange("max_connections_per_address", flags.max_connections_per_address, 0, 1000000),
           CheckRange("address_rate_limit", flags.address_rate_limit, 0, 10000000),
           CheckRange("address_rate_burst", flags.address_rate_burst, 1, 10000000),
           CheckRange("key_rate_burst", flags.key_rate_burst, 1, 10000000),
           // A revoked key must be refused within 1 s on every replica.
           CheckRange("auth_cache_ttl_ms", flags.auth_cache_ttl_ms, 0, 1000),
           CheckRange("auth_negative_ttl_ms", flags.auth_negative_ttl_ms, 0, 60000),
           CheckRange("auth_cache_max_keys", flags.auth_cache_max_keys, 1, 10000000),
           CheckRange("auth_cache_max_unknown_keys", flags.auth_cache_max_unknown_keys, 1,
                      10000000),
           CheckRange("list_cache_max_mb", flags.list_cache_max_mb, 1, 65536),
           // Another replica's changes show within this time.
           CheckRange("list_cache_ttl_ms", flags.list_cache_ttl_ms, 0, 1000),
       }) {
    if (!status.ok()) return status;
  }

  config.http.host = listen->host;
  config.http.port = listen->port;
  config.http.threads = flags.threads;
  config.http.max_body_bytes = static_cast<std::uint64_t>(flags.max_body_bytes);
  config.http.max_header_bytes = static_cast<std::uint32_t>(flags.max_header_bytes);
  config.http.header_timeout = std::chrono::milliseconds(flags.header_timeout_ms);
  config.http.read_timeout = std::chrono::milliseconds(flags.read_timeout_ms);
  config.http.write_timeout = std::chrono::milliseconds(flags.read_timeout_ms);
  config.http.max_connections = flags.max_connections;

  config.api.base_path = *base_path;
  config.api.request_timeout = std::chrono::milliseconds(flags.request_timeout_ms);
  // A readiness probe answers sooner than a request may take.
  config.api.readiness_timeout =
      std::chrono::milliseconds(std::min(flags.request_timeout_ms, 2000));

  config.guard.max_connections_per_address = flags.max_connections_per_address;
  config.guard.address_rate.per_second = flags.address_rate_limit;
  config.guard.address_rate.burst = flags.address_rate_burst;
  config.key_rate.per_second = flags.key_rate_limit;
  config.key_rate.burst = flags.key_rate_burst;
  config.auth_cache.ttl = std::chrono::milliseconds(flags.auth_cache_ttl_ms);
  config.auth_cache.negative_ttl = std::chrono::milliseconds(flags.auth_negative_ttl_ms);
  config.auth_cache.max_keys = static_cast<std::size_t>(flags.auth_cache_max_keys);
  config.auth_cache.max_unknown_keys = static_cast<std::size_t>(flags.auth_cache_max_unknown_keys);
  config.list_cache.ttl = std::chrono::milliseconds(flags.list_cache_ttl_ms);
  config.list_cache.max_total_bytes = static_cast<std::size_t>(flags.list_cache_max_mb) << 20;

  config.subscription_target = flags.subscription_target;
  config.port_file = flags.port_file;
  config.metrics_listen = flags.metrics_listen;
  config.metrics_port_file = flags.metrics_port_file;
  return config;
}

}  // namespace octo::gateway
