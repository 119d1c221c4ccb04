#include "services/delivery/dispatch_outcome.h"

#include <algorithm>
#include <cstdint>

#include "absl/random/distributions.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "services/common/strings.h"

namespace octo::delivery {

std::string_view ErrorClassName(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kNone:
      return "";
    case ErrorClass::kDns:
      return "dns";
    case ErrorClass::kConnect:
      return "connect";
    case ErrorClass::kTls:
      return "tls";
    case ErrorClass::kTimeout:
      return "timeout";
    case ErrorClass::kHttp:
      return "http";
    case ErrorClass::kBlocked:
      return "blocked";
    case ErrorClass::kInternal:
      return "internal";
  }
  return "internal";
}

std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time now) {
  const absl::string_view v = absl::StripAsciiWhitespace(AbslView(value));
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); })) {
    // delta-seconds; anything beyond ten digits is "very long" (clamped later).
    if (v.size() > 10) return absl::Seconds(9'999'999'999LL);
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(v, &seconds)) return std::nullopt;
    return absl::Seconds(seconds);
  }
  // RFC 9110 section 5.6.7: IMF-fixdate, then the two obsolete forms.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // Sun, 06 Nov 1994 08:49:37 GMT
      "%A, %d-%b-%y %H:%M:%S GMT",  // Sunday, 06-Nov-94 08:49:37 GMT
      "%a %b %e %H:%M:%S %Y",       // Sun Nov  6 08:49:37 1994
  };
  for (const char* format : kFormats) {
    absl::Time when;
    std::string error;
    if (absl::ParseTime(format, v, absl::UTCTimeZone(), &when, &error)) {
      return std::max(absl::ZeroDuration(), when - now);
    }
  }
  return std::nullopt;
}

absl::Duration ApplyJitter(absl::Duration delay, double jitter, double unit) {
  unit = std::clamp(unit, 0.0, 1.0);
  jitter = std::clamp(jitter, 0.0, 1.0);
  const double factor = (1.0 - jitter) + 2.0 * jitter * unit;
  return std::max(absl::ZeroDuration(), delay * factor);
}

absl::Duration JitteredDelay(absl::Duration delay, double jitter, absl::BitGenRef bitgen) {
  return ApplyJitter(delay, jitter, absl::Uniform(absl::IntervalClosedClosed, bitgen, 0.0, 1.0));
}

Decision DecideOutcome(const AttemptResult& result, int attempt_number, bool retry_on_error,
                       const RetryPolicy& policy, absl::Time now, absl::BitGenRef bitgen) {
  if (result.error_class == ErrorClass::kNone) {
    if (result.http_status >= 200 && result.http_status <= 299) return {DecisionKind::kSucceeded, {}};
    if (result.http_status == 410) return {DecisionKind::kGone, {}};
  }
  if (!retry_on_error || attempt_number < 1 || static_cast<std::size_t>(attempt_number) > policy.schedule.size()) {
    return {DecisionKind::kFailed, {}};
  }
  absl::Duration delay = JitteredDelay(policy.schedule[attempt_number - 1], policy.jitter, bitgen);
  if (result.error_class == ErrorClass::kNone && (result.http_status == 429 || result.http_status == 503) &&
      result.retry_after.has_value()) {
    if (std::optional<absl::Duration> asked = ParseRetryAfter(*result.retry_after, now); asked.has_value()) {
      delay = std::clamp(*asked, policy.min_retry_after, std::max(policy.min_retry_after, policy.max_retry_after));
    }
  }
  return {DecisionKind::kRetry, delay};
}

namespace {

// Length of the valid UTF-8 sequence at the start of `s` (1..4), or 0 when
// it is not one (overlongs, surrogates and code points above U+10FFFF are
// invalid, as PostgreSQL also rejects them).
std::size_t ValidSequenceLength(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return c == 0 ? 0 : 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

std::string SanitizeSnippet(std::string_view body, std::size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(std::min(body.size(), max_bytes));
  std::size_t i = 0;
  while (i < body.size()) {
    const std::size_t n = ValidSequenceLength(body.substr(i));
    const std::string_view piece = n == 0 ? kReplacement : body.substr(i, n);
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    i += n == 0 ? 1 : n;
  }
  return out;
}

}  // namespace octo::delivery
