#pragma once
// Per-client-address limits of the HTTP server: how many connections one
// address may hold open, and how many requests a second it may make (token
// buckets, rate_limiter.h). Behind a proxy every client has the proxy's
// address: raise or switch off these limits there (docs/configuration.md).
//
// Thread-safe.
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

#include "gateway/rate_limiter.h"
#include "services/common/metrics.h"

namespace octo::gateway {

// The address the limits count a client by: an IPv4 address as it is; an
// IPv4-mapped IPv6 address (a dual-stack listener's IPv4 client) as its IPv4;
// any other IPv6 address by its /64, the block one subscriber usually holds
// whole, so that hopping between its addresses gains nothing:
// "2001:db8:1:2::/64".
std::string ClientAddressKey(const boost::asio::ip::address& address);

class ClientGuard {
 public:
  struct Options {
    int max_connections_per_address = 0;  // 0: no cap
    RateLimiter::Options address_rate;    // per_second 0: no limit
  };

  // `metrics` may be null; else it must outlive the guard.
  ClientGuard(Options options, metrics::GatewayGuardMetrics* metrics)
      : options_(options), rate_(options.address_rate), metrics_(metrics) {}

  // A new connection from `address`: true when it may stay (then Release()
  // must follow when it closes), false when the address is at its cap.
  bool AdmitConnection(const std::string& address);
  void ReleaseConnection(const std::string& address);

  // One request from `address`: 0 when it may go ahead, else the seconds
  // for Retry-After.
  int AcquireRequest(const std::string& address);

  // The server closed a connection because it holds its global maximum.
  void CountGlobalConnectionLimit();

 private:
  const Options options_;
  RateLimiter rate_;
  metrics::GatewayGuardMetrics* const metrics_;
  std::mutex mu_;
  std::unordered_map<std::string, int> connections_;  // guarded by mu_; no zero entries
};

}  // namespace octo::gateway
