#pragma once
// At most one log line per key and interval: a flood of identical failures
// (every partner request refused the same way) writes one line a second,
// and the next line admitted says how many were left out meanwhile.
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace octo::log {

class Throttle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Throttle(Clock::duration interval = std::chrono::seconds(1)) : interval_(interval) {}

  // nullopt: leave this line out. Otherwise write it, with the number of
  // lines of `key` left out since the last one written.
  std::optional<std::uint64_t> Admit(std::string_view key, Clock::time_point now = Clock::now()) {
    std::lock_guard lock(mu_);
    auto [it, fresh] = keys_.try_emplace(std::string(key));
    State& state = it->second;
    if (!fresh && now - state.last < interval_) {
      ++state.suppressed;
      return std::nullopt;
    }
    const std::uint64_t suppressed = state.suppressed;
    state = {now, 0};
    return suppressed;
  }

 private:
  struct State {
    Clock::time_point last;
    std::uint64_t suppressed = 0;
  };
  const Clock::duration interval_;
  std::mutex mu_;
  std::map<std::string, State, std::less<>> keys_;  // keys come from a small fixed set
};

}  // namespace octo::log
