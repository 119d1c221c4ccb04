#pragma once
// Token buckets by key (an API key, a client address): each key may make
// `per_second` requests a second on average and `burst` at once.
//
// Bounded: at most `max_keys` buckets; when full, the buckets that have
// refilled (they remember nothing a new bucket would not) are dropped, and if
// that frees nothing, all are (their clients start again with a full burst).
//
// Example:
//   RateLimiter limiter({.per_second = 50, .burst = 100});
//   if (int wait = limiter.Acquire(key, RateLimiter::Clock::now()); wait > 0)
//     answer 429 with "Retry-After: <wait>";
//
// Thread-safe.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace octo::gateway {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    double per_second = 0;  // <= 0: no limit
    double burst = 1;       // bucket size, >= 1
    std::size_t max_keys = 100000;
  };

  explicit RateLimiter(Options options) : options_(options) {}

  bool enabled() const { return options_.per_second > 0; }

  // Takes one token: 0 when the request may go ahead, else the whole
  // seconds (>= 1) until a token is available, for Retry-After.
  int Acquire(std::string_view key, Clock::time_point now);

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  void MakeRoom(Clock::time_point now);  // requires mu_

  const Options options_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace octo::gateway
