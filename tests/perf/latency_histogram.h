#pragma once
// A lock-free log-linear histogram of latencies in microseconds, for the
// benchmark sink: many threads Record(), one reader takes a Snapshot().
//
// Buckets: exact below 64 µs, then 32 sub-buckets per power of two (error
// under 3.2 %), up to 2^36 µs (~19 h); larger values land in the last bucket.
// Percentiles are reported as the upper bound of their bucket (never
// optimistic); min, max and mean are exact.
//
// Example:
//   LatencyHistogram h;
//   h.Record(1234);                        // any thread
//   LatencyHistogram::Summary s = h.Snapshot();
//   printf("p99 %llu us\n", (unsigned long long)s.p99_us);
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace octo::perf {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 5;                      // 32 sub-buckets per octave
  static constexpr std::uint64_t kLinearLimit = 64;       // exact below this
  static constexpr int kMaxExponent = 36;                 // 2^36 µs
  static constexpr std::size_t kBuckets =
      kLinearLimit + (kMaxExponent - 6 + 1) * (std::size_t{1} << kSubBits);

  struct Summary {
    std::uint64_t count = 0;
    std::uint64_t min_us = 0;
    std::uint64_t max_us = 0;
    double mean_us = 0;
    std::uint64_t p50_us = 0;
    std::uint64_t p90_us = 0;
    std::uint64_t p99_us = 0;
    std::uint64_t p999_us = 0;
  };

  LatencyHistogram() { Reset(); }

  // Thread-safe, wait-free except for min/max (a short CAS loop).
  void Record(std::uint64_t us) {
    buckets_[Index(us)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(us, std::memory_order_relaxed);
    std::uint64_t cur = max_.load(std::memory_order_relaxed);
    while (us > cur && !max_.compare_exchange_weak(cur, us, std::memory_order_relaxed)) {
    }
    cur = min_.load(std::memory_order_relaxed);
    while (us < cur && !min_.compare_exchange_weak(cur, us, std::memory_order_relaxed)) {
    }
  }

  // Not atomic with concurrent Record() calls (a sample may be half counted);
  // the benchmark resets between phases, when no traffic flows.
  void Reset() {
    for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
    count_.store(0, std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
    min_.store(std::numeric_limits<std::uint64_t>::max(), std::memory_order_relaxed);
  }

  Summary Snapshot() const {
    std::array<std::uint64_t, kBuckets> counts;
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      counts[i] = buckets_[i].load(std::memory_order_relaxed);
      total += counts[i];
    }
    Summary s;
    s.count = total;
    if (total == 0) return s;
    s.min_us = min_.load(std::memory_order_relaxed);
    s.max_us = max_.load(std::memory_order_relaxed);
    s.mean_us = static_cast<double>(sum_.load(std::memory_order_relaxed)) /
                static_cast<double>(count_.load(std::memory_order_relaxed));
    s.p50_us = Percentile(counts, total, 0.50, s.max_us);
    s.p90_us = Percentile(counts, total, 0.90, s.max_us);
    s.p99_us = Percentile(counts, total, 0.99, s.max_us);
    s.p999_us = Percentile(counts, total, 0.999, s.max_us);
    return s;
  }

  static std::size_t Index(std::uint64_t us) {
    if (us < kLinearLimit) return static_cast<std::size_t>(us);
    int exponent = 63 - std::countl_zero(us);  // >= 6
    if (exponent > kMaxExponent) return kBuckets - 1;
    const std::uint64_t top = us >> (exponent - kSubBits);  // in [32, 64)
    return kLinearLimit + static_cast<std::size_t>(exponent - 6) * (std::size_t{1} << kSubBits) +
           static_cast<std::size_t>(top - (std::uint64_t{1} << kSubBits));
  }

  // The largest value that lands in bucket `index`.
  static std::uint64_t UpperBound(std::size_t index) {
    if (index < kLinearLimit) return index;
    const std::size_t rel = index - kLinearLimit;
    const int exponent = 6 + static_cast<int>(rel >> kSubBits);
    const std::uint64_t top = (std::uint64_t{1} << kSubBits) + (rel & ((1u << kSubBits) - 1));
    return ((top + 1) << (exponent - kSubBits)) - 1;
  }

 private:
  static std::uint64_t Percentile(const std::array<std::uint64_t, kBuckets>& counts,
                                  std::uint64_t total, double q, std::uint64_t max_us) {
    // The smallest value v such that at least q of the samples are <= v.
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total));
    if (static_cast<double>(rank) < q * static_cast<double>(total)) ++rank;
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts[i];
      if (seen >= rank) return UpperBound(i) < max_us ? UpperBound(i) : max_us;
    }
    return max_us;
  }

  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> max_{0};
  std::atomic<std::uint64_t> min_{0};
};

}  // namespace octo::perf
