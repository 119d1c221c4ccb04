// Fuzz target: ParseRetryAfter (services/delivery/dispatch_outcome.h), which
// reads the Retry-After header of a receiver's 429 or 503, and the
// decision that uses it.
//
// Input: the header value.
//
// Checked: a delay is never negative; delta-seconds ("120", surrounding
// whitespace allowed) read as exactly that many seconds (beyond ten digits:
// "very long", at least 10^9 s); an HTTP date gives the time from `now` to
// it, zero for the past, the same whatever `now` within that bound; the
// retry decision on 503 clamps the delay to the policy's bounds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "services/delivery/dispatch_outcome.h"

namespace {

using octo::delivery::ParseRetryAfter;

[[noreturn]] void Fail(const char* what, std::string_view value) {
  fprintf(stderr, "invariant broken: %s\nRetry-After: %.*s\n", what, static_cast<int>(value.size()),
          value.data());
  abort();
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string value(reinterpret_cast<const char*>(data), size);
  const absl::Time now = absl::FromUnixSeconds(1'767'225'600);  // 2026-01-01T00:00:00Z
  const std::optional<absl::Duration> delay = ParseRetryAfter(value, now);
  const absl::string_view trimmed = absl::StripAsciiWhitespace(value);
  if (AllDigits(trimmed)) {
    if (!delay.has_value()) Fail("delta-seconds not read", value);
    int64_t seconds = 0;
    if (trimmed.size() <= 10) {
      if (!absl::SimpleAtoi(trimmed, &seconds) || *delay != absl::Seconds(seconds)) {
        Fail("delta-seconds read as another delay", value);
      }
    } else if (*delay < absl::Seconds(1'000'000'000)) {
      Fail("a very long delta-seconds read as short", value);
    }
  }
  if (!delay.has_value()) return 0;
  if (*delay < absl::ZeroDuration()) Fail("a negative delay", value);
  if (!AllDigits(trimmed)) {
    // A date: an hour later, the delay is an hour shorter (or zero).
    const std::optional<absl::Duration> later = ParseRetryAfter(value, now + absl::Hours(1));
    if (!later.has_value() || *later != std::max(absl::ZeroDuration(), *delay - absl::Hours(1))) {
      Fail("a date read differently an hour later", value);
    }
  }
  octo::delivery::RetryPolicy policy;
  policy.schedule = {absl::Seconds(30)};
  absl::InsecureBitGen bitgen;
  const octo::delivery::AttemptResult result{503, octo::delivery::ErrorClass::kNone, value};
  const octo::delivery::Decision d = octo::delivery::DecideOutcome(result, 1, true, policy, now, bitgen);
  if (d.kind != octo::delivery::DecisionKind::kRetry || d.retry_delay < policy.min_retry_after ||
      d.retry_delay > policy.max_retry_after) {
    Fail("a retry delay outside the policy's bounds", value);
  }
  return 0;
}
