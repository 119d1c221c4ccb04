#pragma once
// The walk of a claimed delivery: admit -> render -> sign -> send -> record.
// Dispatch takes a claimed batch: deliveries of disabled webhooks are
// cancelled; the others are admitted by DestinationAdmission (start, wait in
// line, or be released for later), rendered and signed (dispatch_render.h)
// and handed to the transport. OnTransfers takes the transport's results,
// frees their admission and decides the outcome (RetryPolicy, DecideOutcome);
// every result goes to the ResultRecorder. Thread-safe: Dispatch runs on the
// claim thread, OnTransfers on the transport's.
//
// Example:
//   DeliveryPipeline pipeline(options, RealClock(), *transport, recorder);
//   transport->Start([&](std::vector<TransferResult> r) { pipeline.OnTransfers(std::move(r)); });
//   pipeline.Dispatch(batch);
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/clock.h"
#include "services/common/metrics.h"
#include "services/delivery/destination_admission.h"
#include "services/delivery/dispatch_outcome.h"
#include "services/delivery/dispatch_render.h"
#include "services/delivery/dispatch_store.h"
#include "services/delivery/http_transport.h"
#include "services/delivery/result_recorder.h"

namespace octo::delivery {

struct PipelineOptions {
  RetryPolicy retry_policy;
  AdmissionOptions admission;
  // Claims and releases are counted here (docs/observability.md); null: not.
  metrics::DeliveryMetrics* metrics = nullptr;
};

// What became of a claimed batch: how many of its deliveries were released
// unsent because their destination could not start them within the lease
// (ClaimScheduler::Admitted slows claiming down while that happens).
struct DispatchSummary {
  int claimed = 0;
  int backlogged = 0;
};

// Claimed deliveries released unsent, by reason (also metrics::Released).
struct ReleaseCounts {
  int64_t backlog = 0;     // the destination could not start it within the lease
  int64_t queue_wait = 0;  // it waited in its destination's line too long
  int64_t limit = 0;       // its webhook's rate or concurrency
  int64_t shutdown = 0;    // the dispatcher stopped before it started
};

class DeliveryPipeline {
 public:
  DeliveryPipeline(PipelineOptions options, const Clock& clock, HttpTransport& transport, ResultRecorder& recorder);

  ~DeliveryPipeline();

  // Runs ExpireWaiting every `period` (of real time; ages are read from the
  // clock) until StopSending: a line that no result or claim moves still
  // releases what waited too long.
  void StartTicking(absl::Duration period);
  DispatchSummary Dispatch(const ClaimBatch& batch);
  void OnTransfers(std::vector<TransferResult> done);
  // Releases requests that waited in line longer than the admission allows
  // (also done on every Dispatch and OnTransfers), and starts those their
  // webhook's rate held back in line.
  void ExpireWaiting();
  // Shutdown: nothing more is handed to the transport; requests waiting in
  // line are released unsent (their leases cleared) for the next claimer.
  void StopSending();
  // Destinations whose parked backlog may be made due now
  // (DestinationAdmission::TakePulls; the claimer calls this after a claim
  // that found less than it asked for).
  std::vector<BacklogPull> TakePulls();
  // Whether a suspect delivery (ClaimedDelivery::suspect) is being sent or
  // waits to be: the claimer then takes no other (DispatchStore::Suspects).
  bool SuspectInFlight() const;
  // What a pull made due (DestinationAdmission::PullDone).
  void PullDone(const BacklogPull& pull, int pulled);
  // Claimed deliveries handed on whose result has not come back.
  std::size_t Outstanding() const;
  absl::Duration render_time() const;
  ReleaseCounts releases() const;

 private:
  // What the recorder needs to know of a claimed delivery.
  struct Job {
    std::string delivery_id;
    std::string webhook_id;
    int64_t lease_us = 0;
    int attempt_number = 1;
    bool retry_on_error = true;
    bool admitted = false;  // holds a DestinationAdmission ticket
    std::string event;      // for metrics: the event's type and creation time
    absl::Time event_created_at;
    int64_t created_us = 0;  // ClaimedDelivery::created_us
    int64_t ordered_resource_id = 0;  // ClaimedDelivery::ordered_resource_id
    bool suspect = false;             // ClaimedDelivery::suspect
  };
  static DeliveryResult NoAttempt(const Job& job, DeliveryResult::Action action,
                                  absl::Duration delay = absl::ZeroDuration());
  using EventCache = std::unordered_map<std::string, absl::StatusOr<ParsedEvent>>;

  void DispatchOne(const ClaimedDelivery& d, const ClaimBatch& batch, int64_t timestamp, EventCache& events,
                   std::unordered_map<std::string, int>& deferred, std::vector<OutgoingRequest>& start,
                   std::vector<DeliveryResult>& results, DispatchSummary& summary);
  // Counts a release unsent (ReleaseCounts' member, metrics label).
  void CountRelease(int64_t ReleaseCounts::*counter, std::string_view reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLocked(std::vector<DeliveryResult>& results) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  DeliveryResult ToResult(const Job& job, TransferResult&& t);
  // Hands `start` to the transport, or releases it when stopping.
  void Submit(std::vector<OutgoingRequest> start);
  void StopTicking();

  const PipelineOptions options_;
  const Clock& clock_;
  HttpTransport& transport_;
  ResultRecorder& recorder_;

  mutable absl::Mutex mu_;
  DestinationAdmission admission_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Job> jobs_ ABSL_GUARDED_BY(mu_);
  uint64_t next_tag_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ticking_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_expiry_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration render_time_ ABSL_GUARDED_BY(mu_);
  ReleaseCounts releases_ ABSL_GUARDED_BY(mu_);
  absl::Mutex bitgen_mu_;
  absl::BitGen bitgen_ ABSL_GUARDED_BY(bitgen_mu_);
  std::thread ticker_;
};

}  // namespace octo::delivery
