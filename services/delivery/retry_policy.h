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

// The longest a delivery can take from its creation (or requeue) to the
// start of its last attempt under `policy`: every attempt but the last runs
// up to `attempt_timeout`, and each retry waits its delay at the top of the
// jitter, or what a Retry-After asks for (429/503) up to the clamp's upper
// bound, whichever is longer. Time spent waiting in a backlog is not bounded.
absl::Duration WorstCaseRetrySpan(const RetryPolicy& policy, absl::Duration attempt_timeout);

// INVALID_ARGUMENT, naming the flags, when WorstCaseRetrySpan exceeds what
// the dashboard's 24-hour health can see (kHealthLookbackHours minus
// kHealthWindowHours, services/common/health_window.h): such a delivery's
// late attempts would be left out of the health.
absl::Status CheckRetrySpanFitsHealthLookback(const RetryPolicy& policy, absl::Duration attempt_timeout);

}  // namespace octo::delivery
