#pragma once
// The rendered body of GET <base>/webhooks per connection, for a short time.
//
// Freshness (docs/decisions.md):
//   - on the same gateway, read-your-writes: every change made through this
//     gateway (create, update, delete, rotate, enable; by a partner on the
//     webhook or notifications routes, caching_backend.h, or by an operator
//     on the dashboard, dashboard_api.h) drops its connection's entry before
//     the change is answered, and a list fetched while a change was in
//     flight is never stored (a fill is stored only if it began after the
//     connection's last change was answered);
//   - elsewhere (another replica, the delivery service disabling a failing
//     webhook): within `ttl` of the change, since an entry lives `ttl` from
//     the moment its fetch began.
//
// Bounded: at most `max_entries` connections, bodies of at most
// `max_body_bytes` (larger lists are not cached) and `max_total_bytes` of
// bodies together (a body that would exceed it is not kept). Expired entries
// are swept by Store at most once a `ttl`, so memory follows the lists in use
// rather than every list ever served. When the entries are full, expired ones
// are dropped, and if that frees nothing everything is. Whenever a change time
// is forgotten, fills begun before it are refused.
//
// Thread-safe.
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace octo::gateway {

class ListCache {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::chrono::milliseconds ttl{1000};  // 0: nothing is cached
    std::size_t max_entries = 10000;
    std::size_t max_body_bytes = 1 << 20;
    std::size_t max_total_bytes = std::size_t{64} << 20;
  };

  explicit ListCache(Options options) : options_(options) {}

  bool enabled() const { return options_.ttl.count() > 0; }

  // The body, or null when none is fresh.
  std::shared_ptr<const std::string> Find(const std::string& connection_id, Clock::time_point now);
  // `fill_started` is when the fetch of `body` began.
  void Store(const std::string& connection_id, Clock::time_point fill_started, std::string body);
  // A change of the connection's webhooks has been answered by the service.
  void Invalidate(const std::string& connection_id);

  // The bytes of the bodies held.
  std::size_t body_bytes();

 private:
  struct Entry {
    std::shared_ptr<const std::string> body;  // null: no body, only the change time
    Clock::time_point expires;
    Clock::time_point changed;  // last Invalidate(); epoch when none
  };
  void MakeRoom(Clock::time_point now);           // requires mu_
  void SweepExpired(Clock::time_point now);       // requires mu_
  void Forget(const Entry& entry);                // requires mu_

  const Options options_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  Clock::time_point cleared_{};                     // guarded by mu_
  Clock::time_point next_sweep_{};                  // guarded by mu_
  std::size_t body_bytes_ = 0;                      // guarded by mu_
};

}  // namespace octo::gateway
