#pragma once
// Where components read the time, so that tests can drive it: the real
// clock in production, a simulated one (tests/fakes/simulated_clock.h) in
// unit tests, which then need neither sleeps nor timing luck.
//
// Example:
//   Clock& clock = RealClock();
//   const absl::Time due = clock.Now() + absl::Seconds(5);
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace octo {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// absl::Now(). One instance for the process; never destroyed.
inline Clock& RealClock() {
  class Real final : public Clock {
   public:
    absl::Time Now() const override { return absl::Now(); }
  };
  static Real* const clock = new Real();
  return *clock;
}

}  // namespace octo
