#pragma once
// The dispatcher: claims due deliveries from PostgreSQL, renders and signs
// them, sends them with libcurl's multi interface and records every attempt.
// See docs/delivery.md.
//
// Threads: a claimer (claim, render, sign, hand to the sender), the sender
// (libcurl multi, dispatch_sender.h), result writers (batched transactions)
// and a LISTEN connection. A delivery holds one of max_in_flight slots from
// its claim until its result is written, so claims never exceed the free
// capacity and unwritten results stay bounded.
//
// Example:
//   DispatcherOptions options;
//   options.database_url = conninfo;
//   options.retry_schedule = *ParseRetrySchedule("100ms,1s");  // check .ok() first
//   absl::StatusOr<std::unique_ptr<Dispatcher>> dispatcher = Dispatcher::Start(options);
//   ...
//   (*dispatcher)->Stop();  // on SIGTERM
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/metrics.h"
#include "services/common/address_guard.h"

namespace octo::delivery {

inline constexpr char kDefaultRetrySchedule[] = "5s,5m,30m,2h,5h,10h,10h";
// kDefaultRetrySchedule as durations.
std::vector<std::chrono::milliseconds> DefaultRetrySchedule();

struct DispatcherOptions {
  std::string database_url;  // libpq conninfo
  int claim_batch = 200;
  int max_in_flight = 1000;  // global cap on concurrent transfers
  int max_per_host = 64;     // cap per destination host:port
  // Deliveries that may wait for a destination already at max_per_host;
  // beyond that they are released (no attempt) and claimed again a second
  // later, so one slow destination cannot hold all of max_in_flight.
  // 0: max(4 * max_per_host, max_in_flight / 2 - max_per_host).
  int max_queued_per_host = 0;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};
  std::chrono::milliseconds lease_margin{15000};  // lease = request_timeout + margin
  // Delays after attempt 1, 2, ...: a delivery gets retry_schedule.size() + 1
  // attempts (with retryOnError); empty = one attempt. Default: kDefaultRetrySchedule.
  std::vector<std::chrono::milliseconds> retry_schedule = DefaultRetrySchedule();
  std::chrono::milliseconds min_retry_after{1000};
  std::chrono::milliseconds max_retry_after{3600 * 1000};
  std::chrono::milliseconds poll_interval{1000};
  int result_batch = 500;  // results written per transaction at most
  int result_writers = 1;  // threads (each with its own connection) writing results
  // Where recorded attempts, outcomes and the claim/write queries are
  // counted (docs/observability.md); null = not counted. Must outlive the
  // dispatcher.
  metrics::DeliveryMetrics* metrics = nullptr;
  metrics::PgMetrics* pg_metrics = nullptr;
  // SSRF guard: the addresses deliveries may connect to. Default: public
  // addresses only (production); see address_guard.h.
  DestinationPolicy destination_policy;
  // Endpoint health: a webhook whose attempts have all failed for longer
  // than this is disabled (its pending deliveries cancelled).
  std::chrono::milliseconds disable_after_failing_for{std::chrono::hours(5 * 24)};
  // A delivery whose claims end this many times in a row without a result
  // (the process stops while sending it: a crash, kill -9) is quarantined:
  // failed, with the reason in its attempt log, instead of being claimed
  // forever.
  int max_unreported_claims = 3;
};

class Dispatcher {
 public:
  // Connects (UNAVAILABLE when PostgreSQL cannot be reached) and starts the
  // threads. INVALID_ARGUMENT for a non-positive batch, cap or timeout, or a
  // negative retry delay. The schema must already be migrated.
  static absl::StatusOr<std::unique_ptr<Dispatcher>> Start(DispatcherOptions options);
  virtual ~Dispatcher() = default;
  // Stops claiming, lets in-flight transfers finish (bounded by the request
  // timeout), writes their results, then returns. Deliveries claimed but not
  // yet started are released (lease cleared) for the next claimer.
  // Idempotent and thread-safe; the destructor calls it.
  virtual void Stop() = 0;
};

// "5s,5m,30m,2h" -> durations; absl duration syntax ("250ms", "1h30m"),
// whitespace around items ignored, "" -> no retries. INVALID_ARGUMENT for an
// empty item, an unparsable, negative or infinite duration.
absl::StatusOr<std::vector<std::chrono::milliseconds>> ParseRetrySchedule(const std::string& text);

}  // namespace octo::delivery
