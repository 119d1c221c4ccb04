#pragma once
// The dispatcher: claims due deliveries from PostgreSQL, renders and signs
// them, sends them with libcurl's multi interface and records every attempt.
// See docs/delivery.md ("Dispatch core").
//
// One straight walk, each step its own part with its dependencies passed in:
//   claim   ClaimScheduler + ClaimLoop (claim_loop.h) over a DispatchStore
//   admit   DestinationAdmission (destination_admission.h): the one owner of
//           per-destination pace, caps, warm-up and backlog, and of the
//           per-webhook rate and concurrency limits
//   render, sign   RenderRequest (dispatch_render.h)
//   send    an HttpTransport (http_transport.h; libcurl: curl_transport.h)
//   record  ResultRecorder (result_recorder.h): batched writes
// wired by DeliveryPipeline (delivery_pipeline.h), woken by a
// NotificationSource (notification_source.h), timed by a Clock.
//
// Threads: the claimers (claim, admit, render, sign, hand to the transport),
// the hand-off's (the same walk for deliveries the enqueue leased at insert),
// the transport's, result writers (batched transactions) and the LISTEN
// connection's. A delivery holds one of max_in_flight slots from its claim
// until its result is written, so claims never exceed the free capacity and
// unwritten results stay bounded.
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
#include "services/common/address_guard.h"
#include "services/common/clock.h"
#include "services/common/metrics.h"
#include "services/delivery/dispatch_store.h"
#include "services/delivery/handoff.h"
#include "services/delivery/http_transport.h"
#include "services/delivery/notification_source.h"
#include "services/delivery/retry_policy.h"

namespace octo::delivery {

// The defaults here are the smallest sensible set-up, which the unit tests
// build on; octo-delivery's flags (service_config.cc) default to what was
// measured fastest (claim_batch 500, result_writers 2: docs/configuration.md).
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
  // Threads claiming (each with its own connection): one claims while
  // another dispatches what it claimed, so claims are not held up by
  // rendering and the claim's commit waits overlap. Only the first claims
  // a suspect delivery (DispatchStore::Suspects). Start opens this many
  // claim connections; Assemble runs one loop per claim store it is given.
  int claimers = 1;
  // Where recorded attempts, outcomes and the claim/write queries are
  // counted (docs/observability.md); null = not counted. Must outlive the
  // dispatcher.
  metrics::DeliveryMetrics* metrics = nullptr;
  metrics::PgMetrics* pg_metrics = nullptr;
  // SSRF guard: the addresses deliveries may connect to. Default: public
  // addresses only (production); see address_guard.h.
  DestinationPolicy destination_policy;
  // Passed to the transport (curl_transport.h): a CA bundle for receivers'
  // certificates ("" = the system's), and test-only DNS overrides.
  std::string ca_bundle;
  std::vector<std::string> resolve;
  // Endpoint health: a webhook whose attempts have all failed for longer
  // than this is disabled (its pending deliveries cancelled).
  std::chrono::milliseconds disable_after_failing_for{std::chrono::hours(5 * 24)};
  // A delivery whose claims end this many times in a row without a result
  // (the process stops while sending it: a crash, kill -9) is quarantined:
  // failed, with the reason in its attempt log, instead of being claimed
  // forever.
  int max_unreported_claims = 3;
};

// The parts a dispatcher is assembled from (Dispatcher::Assemble): what
// Start builds from options.database_url, or fakes in unit tests.
struct DispatcherParts {
  std::unique_ptr<DispatchStore> claim_store;                // the (first) claimer's
  std::vector<std::unique_ptr<DispatchStore>> more_claim_stores;  // one per further claimer
  std::vector<std::unique_ptr<DispatchStore>> write_stores;  // one per result writer
  std::unique_ptr<HttpTransport> transport;
  std::unique_ptr<NotificationSource> notifications;  // null: polling only
  const Clock* clock = &RealClock();                  // must outlive the dispatcher
};

class Dispatcher {
 public:
  // Connects (UNAVAILABLE when PostgreSQL cannot be reached) and starts the
  // threads. INVALID_ARGUMENT for a non-positive batch, cap or timeout, or a
  // negative retry delay. The schema must already be migrated.
  static absl::StatusOr<std::unique_ptr<Dispatcher>> Start(DispatcherOptions options);
  // Starts a dispatcher on the given parts (options.database_url unused).
  // INVALID_ARGUMENT as Start, or when a part is missing.
  static absl::StatusOr<std::unique_ptr<Dispatcher>> Assemble(DispatcherOptions options, DispatcherParts parts);
  virtual ~Dispatcher() = default;
  // Where this process's enqueue hands over the deliveries it inserts
  // leased (handoff.h, docs/delivery.md "Hand-off at enqueue"): sent on a
  // thread of its own, within the free slots. Lives as long as the
  // dispatcher; after Stop it reserves nothing.
  virtual DeliveryHandoff* handoff() = 0;
  // Stops claiming, lets in-flight transfers finish (bounded by the request
  // timeout), writes their results, then returns. Deliveries claimed but not
  // yet started are released (lease cleared) for the next claimer.
  // Idempotent and thread-safe; the destructor calls it.
  virtual void Stop() = 0;
};

}  // namespace octo::delivery
