#pragma once
// What the gateway remembers about API keys, so that a partner's requests
// do not each cost an authentication round trip to the subscription service
// (and a PostgreSQL query there).
//
//   known key    -> its connection, for `ttl` after the lookup that found it
//                   began (so a revocation takes effect on every gateway
//                   replica within `ttl`; the flag allows at most 1 s)
//   unknown key  -> "refused", for `negative_ttl`: a client repeating a bad
//                   key costs the service nothing
//
// Both maps are bounded; when one is full, its expired entries are dropped,
// and if that frees nothing it is emptied (the next lookups go to the
// service again: a cost, never a wrong answer).
//
// Thread-safe.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace octo::gateway {

class AuthCache {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::chrono::milliseconds ttl{1000};           // 0: known keys are not cached
    std::chrono::milliseconds negative_ttl{1000};  // 0: unknown keys are not cached
    std::size_t max_keys = 100000;
    std::size_t max_unknown_keys = 10000;
  };

  enum class Outcome { kMiss, kKnown, kUnknown };
  struct Result {
    Outcome outcome = Outcome::kMiss;
    std::string connection_id;  // for kKnown
  };

  explicit AuthCache(Options options) : options_(options) {}

  std::chrono::milliseconds ttl() const { return options_.ttl; }

  Result Find(const std::string& api_key, Clock::time_point now);
  // `lookup_started` is when the service call that answered began.
  void StoreKnown(const std::string& api_key, std::string connection_id,
                  Clock::time_point lookup_started);
  void StoreUnknown(const std::string& api_key, Clock::time_point lookup_started);

 private:
  struct Entry {
    std::string connection_id;
    Clock::time_point expires;
  };
  static void MakeRoom(std::unordered_map<std::string, Entry>& map, std::size_t max,
                       Clock::time_point now);

  const Options options_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> known_;    // guarded by mu_
  std::unordered_map<std::string, Entry> unknown_;  // guarded by mu_
};

}  // namespace octo::gateway
