#pragma once
// What an attempt's result means for its delivery (docs/delivery.md,
// "Outcomes"): the pure rules, without network, database or clock.
//
// Example:
//   AttemptResult r{.http_status = 503, .retry_after = "120"};
//   Decision d = DecideOutcome(r, /*attempt_number=*/1, /*retry_on_error=*/true,
//                              policy, absl::Now(), bitgen);
//   // d.kind == DecisionKind::kRetry, d.retry_delay == 120 s (within bounds)
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/random/random.h"
#include "absl/time/time.h"

namespace octo::delivery {

// Why an attempt got no usable HTTP status. Names as stored in
// delivery_attempts.error_class.
enum class ErrorClass {
  kNone,      // a response with a status was received
  kDns,       // the host name did not resolve
  kConnect,   // the TCP connection was refused or unreachable
  kTls,       // TLS handshake or certificate failure
  kTimeout,   // connect or total timeout
  kHttp,      // the server broke the exchange: malformed reply, reset, nothing received
  kBlocked,   // refused by our own policy (SSRF protection)
  kInternal,  // our side: bad URL, out of memory, render failure, ...
};

// "dns", "connect", ...; "" for kNone.
std::string_view ErrorClassName(ErrorClass error_class);

// The result of one attempt, as the sender observed it.
struct AttemptResult {
  int http_status = 0;                     // 100..599 when error_class == kNone
  ErrorClass error_class = ErrorClass::kNone;
  std::optional<std::string> retry_after;  // the Retry-After header, trimmed
};

enum class DecisionKind {
  kSucceeded,  // 2xx
  kRetry,      // pending again, next attempt after retry_delay
  kFailed,     // no attempts left, or retryOnError is false
  kGone,       // 410: failed, the webhook disabled, its pending deliveries cancelled
};

struct Decision {
  DecisionKind kind = DecisionKind::kFailed;
  absl::Duration retry_delay;  // kRetry only
};

struct RetryPolicy {
  // Delays after attempt 1, 2, ...: a delivery gets schedule.size() + 1 attempts.
  std::vector<absl::Duration> schedule;
  absl::Duration min_retry_after = absl::Seconds(1);
  absl::Duration max_retry_after = absl::Hours(1);
  double jitter = 0.2;  // delays are multiplied by uniform(1 - jitter, 1 + jitter)
};

// The delay a Retry-After value asks for: delta-seconds ("120") or an HTTP
// date (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", or the obsolete RFC 850
// and asctime forms), relative to `now` (a date in the past is zero).
// nullopt when the value is neither. Not clamped.
std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time now);

// `delay` scaled by (1 - jitter) + 2 * jitter * unit, unit in [0, 1]:
// unit 0 gives the lower bound, 1 the upper.
absl::Duration ApplyJitter(absl::Duration delay, double jitter, double unit);
// ApplyJitter with a uniform random unit.
absl::Duration JitteredDelay(absl::Duration delay, double jitter, absl::BitGenRef bitgen);

// The decision for attempt number `attempt_number` (1-based) of a delivery:
// 2xx -> succeeded; 410 -> gone; otherwise retry when retry_on_error and the
// schedule has a delay for this attempt (jittered; on 429/503 a parsable
// Retry-After replaces it, clamped to [min_retry_after, max_retry_after]),
// else failed.
Decision DecideOutcome(const AttemptResult& result, int attempt_number, bool retry_on_error,
                       const RetryPolicy& policy, absl::Time now, absl::BitGenRef bitgen);

// The stored response snippet: at most `max_bytes` bytes of valid UTF-8 from
// the start of `body`, invalid sequences and NUL (which PostgreSQL text
// cannot hold) replaced by U+FFFD, never cutting a character in two.
std::string SanitizeSnippet(std::string_view body, std::size_t max_bytes = 4096);

}  // namespace octo::delivery
