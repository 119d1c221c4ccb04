#pragma once
// When a delivery is tried again: the retry schedule (delays after attempt
// 1, 2, ...), Retry-After bounds and jitter. The rules that apply it to an
// attempt's result are DecideOutcome (dispatch_outcome.h); this file holds
// the schedule's text form and the policy the dispatcher is given.
//
// Example:
//   absl::StatusOr<std::vector<std::chrono::milliseconds>> s = ParseRetrySchedule("5s,5m");
//   RetryPolicy policy = MakeRetryPolicy(*s, std::chrono::seconds(1), std::chrono::hours(1));
#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/delivery/dispatch_outcome.h"

namespace octo::delivery {

inline constexpr char kDefaultRetrySchedule[] = "5s,5m,30m,2h,5h,10h,10h";
// kDefaultRetrySchedule as durations.
std::vector<std::chrono::milliseconds> DefaultRetrySchedule();

// "5s,5m,30m,2h" -> durations; absl duration syntax ("250ms", "1h30m"),
// whitespace around items ignored, "" -> no retries. INVALID_ARGUMENT for an
// empty item, an unparsable, negative or infinite duration.
absl::StatusOr<std::vector<std::chrono::milliseconds>> ParseRetrySchedule(const std::string& text);

RetryPolicy MakeRetryPolicy(const std::vector<std::chrono::milliseconds>& schedule,
                            std::chrono::milliseconds min_retry_after, std::chrono::milliseconds max_retry_after);

}  // namespace octo::delivery
