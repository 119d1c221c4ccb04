#include "gateway/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace octo::gateway {

namespace {

double SecondsBetween(RateLimiter::Clock::time_point from, RateLimiter::Clock::time_point to) {
  return std::max(0.0, std::chrono::duration<double>(to - from).count());
}

}  // namespace

int RateLimiter::Acquire(std::string_view key, Clock::time_point now) {
  if (!enabled()) return 0;
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    MakeRoom(now);
    it = buckets_.emplace(std::string(key), Bucket{options_.burst, now}).first;
  }
  Bucket& bucket = it->second;
  bucket.tokens = std::min(options_.burst,
                           bucket.tokens + SecondsBetween(bucket.updated, now) * options_.per_second);
  bucket.updated = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1 - bucket.tokens) / options_.per_second)));
}

void RateLimiter::MakeRoom(Clock::time_point now) {
  if (buckets_.size() < options_.max_keys) return;
  std::erase_if(buckets_, [&](const auto& item) {
    const Bucket& b = item.second;
    return b.tokens + SecondsBetween(b.updated, now) * options_.per_second >= options_.burst;
  });
  if (buckets_.size() >= options_.max_keys) buckets_.clear();
}

}  // namespace octo::gateway
