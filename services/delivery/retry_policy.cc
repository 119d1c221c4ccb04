#include "services/delivery/retry_policy.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "services/common/health_window.h"

namespace octo::delivery {

absl::StatusOr<std::vector<std::chrono::milliseconds>> ParseRetrySchedule(const std::string& text) {
  std::vector<std::chrono::milliseconds> schedule;
  if (absl::StripAsciiWhitespace(text).empty()) return schedule;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    absl::Duration d;
    if (item.empty() || !absl::ParseDuration(item, &d)) {
      return absl::InvalidArgumentError(
          absl::StrCat("retry schedule: '", item, "' is not a duration such as 250ms, 5s, 30m or 2h"));
    }
    if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrCat("retry schedule: '", item, "' must be finite and not negative"));
    }
    schedule.push_back(absl::ToChronoMilliseconds(d));
  }
  return schedule;
}

std::vector<std::chrono::milliseconds> DefaultRetrySchedule() {
  static const std::vector<std::chrono::milliseconds> kSchedule = *ParseRetrySchedule(kDefaultRetrySchedule);
  return kSchedule;
}

RetryPolicy MakeRetryPolicy(const std::vector<std::chrono::milliseconds>& schedule,
                            std::chrono::milliseconds min_retry_after, std::chrono::milliseconds max_retry_after) {
  RetryPolicy policy;
  for (auto d : schedule) policy.schedule.push_back(absl::FromChrono(d));
  policy.min_retry_after = absl::FromChrono(min_retry_after);
  policy.max_retry_after = absl::FromChrono(max_retry_after);
  return policy;
}

absl::Duration WorstCaseRetrySpan(const RetryPolicy& policy, absl::Duration attempt_timeout) {
  const absl::Duration longest_retry_after = std::max(policy.min_retry_after, policy.max_retry_after);
  absl::Duration span;
  for (absl::Duration delay : policy.schedule) {
    span += attempt_timeout + std::max(ApplyJitter(delay, policy.jitter, 1.0), longest_retry_after);
  }
  return span;
}

absl::Status CheckRetrySpanFitsHealthLookback(const RetryPolicy& policy, absl::Duration attempt_timeout) {
  const absl::Duration span = WorstCaseRetrySpan(policy, attempt_timeout);
  const absl::Duration limit = absl::Hours(kHealthLookbackHours - kHealthWindowHours);
  if (span <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--retry_schedule, --max_retry_after: a delivery's attempts could span up to ", absl::FormatDuration(span),
      " (each delay +", static_cast<int>(policy.jitter * 100), "% jitter or a Retry-After up to --max_retry_after, "
      "whichever is longer, plus --request_timeout per attempt); the dashboard's ", kHealthWindowHours,
      "-hour health sees attempts up to ", absl::FormatDuration(limit),
      " after a delivery is created or requeued. Shorten the schedule or --max_retry_after"));
}

}  // namespace octo::delivery
