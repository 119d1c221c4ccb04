#pragma once
// A clock that moves only when the test says so, for the dispatcher's unit
// tests: retry schedules, limits, backlog release and lease expiry are then
// checked to the microsecond without sleeping.
//
// Example:
//   SimulatedClock clock;                  // starts at 2026-01-01T00:00:00Z
//   clock.Advance(absl::Seconds(5));
#include <atomic>

#include "absl/time/time.h"
#include "services/common/clock.h"

namespace octo::testing {

class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1767225600))
      : now_us_(absl::ToUnixMicros(start)) {}
  absl::Time Now() const override { return absl::FromUnixMicros(now_us_.load()); }
  void Advance(absl::Duration d) { now_us_.fetch_add(absl::ToInt64Microseconds(d)); }
  void Set(absl::Time t) { now_us_.store(absl::ToUnixMicros(t)); }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace octo::testing
