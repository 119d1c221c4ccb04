#include "services/delivery/delivery_pipeline.h"

#include <optional>
#include <utility>

#include "absl/time/clock.h"
#include "services/common/log.h"

namespace octo::delivery {
namespace {

std::string StdString(absl::string_view s) { return std::string(s.data(), s.size()); }

std::string_view DecisionName(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::kSucceeded:
      return "succeeded";
    case DecisionKind::kRetry:
      return "retry";
    case DecisionKind::kFailed:
      return "failed";
    case DecisionKind::kGone:
      return "gone";
  }
  return "failed";
}

template <typename T>
void Append(std::vector<T>& to, std::vector<T> from) {
  for (T& x : from) to.push_back(std::move(x));
}

}  // namespace

// A result that records no attempt: cancelled, or released for another claim
// after `delay` (zero: at once). Every result carries the attempt number its
// claim reserved (ClaimedDelivery::attempt_count + 1), so that a result
// written twice is recorded once, and the delivery's ordered resource, whose
// row the writer locks first (dispatch_store.cc, Write).
DeliveryResult DeliveryPipeline::NoAttempt(const Job& job, DeliveryResult::Action action, absl::Duration delay) {
  DeliveryResult r;
  r.delivery_id = job.delivery_id;
  r.webhook_id = job.webhook_id;
  r.lease_us = job.lease_us;
  r.created_us = job.created_us;
  r.ordered_resource_id = job.ordered_resource_id;
  r.attempt_number = job.attempt_number;
  r.action = action;
  r.decision.retry_delay = delay;
  return r;
}

DeliveryPipeline::DeliveryPipeline(PipelineOptions options, const Clock& clock, HttpTransport& transport,
                                   ResultRecorder& recorder)
    : options_(std::move(options)),
      clock_(clock),
      transport_(transport),
      recorder_(recorder),
      admission_(options_.admission, clock) {}

DispatchSummary DeliveryPipeline::Dispatch(const ClaimBatch& batch) {
  const absl::Time t0 = absl::Now();
  DispatchSummary summary;
  summary.claimed = static_cast<int>(batch.deliveries.size());
  if (options_.metrics != nullptr) {
    if (batch.handed_off) {
      options_.metrics->HandedOff(summary.claimed);
    } else {
      options_.metrics->Claimed(summary.claimed);
    }
  }
  const int64_t timestamp = absl::ToUnixSeconds(clock_.Now());
  EventCache events;
  std::unordered_map<std::string, int> deferred;  // per webhook, in this batch
  std::vector<OutgoingRequest> start;
  std::vector<DeliveryResult> results;
  start.reserve(batch.deliveries.size());
  for (const ClaimedDelivery& d : batch.deliveries) {
    DispatchOne(d, batch, timestamp, events, deferred, start, results, summary);
  }
  {
    absl::MutexLock lock(&mu_);
    ExpireLocked(results);
    render_time_ += absl::Now() - t0;
  }
  recorder_.Add(std::move(results));
  Submit(std::move(start));
  return summary;
}

void DeliveryPipeline::DispatchOne(const ClaimedDelivery& d, const ClaimBatch& batch, int64_t timestamp,
                                   EventCache& events, std::unordered_map<std::string, int>& deferred,
                                   std::vector<OutgoingRequest>& start, std::vector<DeliveryResult>& results,
                                   DispatchSummary& summary) {
  Job job{d.id,          d.webhook_id, d.lease_us,   d.attempt_count + 1,  d.retry_on_error,
          false,         "",           absl::InfinitePast(), d.created_us, d.ordered_resource_id,
          d.suspect};
  if (!d.webhook_enabled) {  // disabled since it was enqueued: cancelled unsent
    results.push_back(NoAttempt(job, DeliveryResult::Action::kCancel));
    return;
  }
  if (const auto e = batch.events.find(d.event_id); e != batch.events.end()) {
    job.event = e->second.event;
    job.event_created_at = e->second.created_at;
  }
  // An unparsable URL is not admitted: the transport answers it as malformed.
  // Nor is a suspect: sent at once, past its destination's line and its
  // webhook's limits, so that its claim is not released unsent and the
  // test whether it crashes the process is not left open (the store keeps
  // a released suspect's count, see OCTO_EVIDENCE). One request over the
  // limits at most: a process has one suspect in flight (SuspectInFlight).
  const std::optional<std::string> destination = d.suspect ? std::nullopt : DestinationKey(d.url);
  uint64_t tag = 0;
  Admission admission;
  {
    absl::MutexLock lock(&mu_);
    tag = next_tag_++;
    if (destination.has_value()) {
      admission = admission_.Admit(
          {tag, *destination, d.webhook_id, d.rate_limit_per_second, d.max_concurrency, batch.claimed_at, d.parked},
          deferred[d.webhook_id]);
      if (admission.verdict == Admission::kDefer) {
        if (admission.backlogged) {
          ++summary.backlogged;
          CountRelease(&ReleaseCounts::backlog, "backlog");
        } else {
          CountRelease(&ReleaseCounts::limit, "limit");
        }
        results.push_back(NoAttempt(job, DeliveryResult::Action::kRelease, admission.defer));
        results.back().parked = admission.backlogged;
        return;
      }
      job.admitted = true;
    }
    jobs_.emplace(tag, job);
  }
  // Render and sign (the event parsed once per batch), outside the lock.
  auto event = events.find(d.event_id);
  if (event == events.end()) {
    const auto stored = batch.events.find(d.event_id);
    event = events
                .emplace(d.event_id, stored == batch.events.end()
                                         ? absl::StatusOr<ParsedEvent>(absl::InternalError("event not loaded"))
                                         : ParseClaimedEvent(stored->second))
                .first;
  }
  absl::StatusOr<OutgoingRequest> request =
      event->second.ok() ? RenderRequest(d, *event->second, timestamp) : event->second.status();
  absl::MutexLock lock(&mu_);
  // Its job gone, a result was written meanwhile: writing another would
  // free its claim slot twice.
  if (!jobs_.contains(tag)) return;
  if (!request.ok()) {
    // Recorded as an attempt that failed on our side (error class internal).
    log::Error("cannot render delivery", {{"delivery_id", d.id}, {"error", StdString(request.status().ToString())}});
    if (job.admitted) Append(start, admission_.Withdraw(tag));
    jobs_.erase(tag);
    TransferResult t;
    t.tag = tag;
    t.attempt.error_class = ErrorClass::kInternal;
    t.error_detail = StdString(request.status().message());
    t.started_at = clock_.Now();
    results.push_back(ToResult(job, std::move(t)));
    // The event's row is gone (deleted by hand, or a week dropped around a
    // delivery): no later claim could render it either, so the delivery
    // fails now rather than running through its whole retry schedule (an
    // ordered one holding its resource all that time).
    if (!batch.events.contains(d.event_id)) results.back().decision = {DecisionKind::kFailed, {}};
    return;
  }
  request->tag = tag;
  if (admission.verdict == Admission::kWait) {
    Append(start, admission_.Enqueue(std::move(*request)));
  } else {
    start.push_back(std::move(*request));
  }
}

void DeliveryPipeline::OnTransfers(std::vector<TransferResult> done) {
  std::vector<std::pair<Job, TransferResult>> finished;
  std::vector<OutgoingRequest> start;
  std::vector<DeliveryResult> results;
  finished.reserve(done.size());
  {
    absl::MutexLock lock(&mu_);
    // Requests waiting too long go before a freed slot could start them.
    ExpireLocked(results);
    for (TransferResult& t : done) {
      auto it = jobs_.find(t.tag);
      if (it == jobs_.end()) continue;  // cannot happen: every tag is registered before sending
      if (it->second.admitted) {
        Append(start, admission_.Finished(t.tag, t.duration, t.sent, {t.opened_connection, t.connection_kept}));
      }
      if (!t.sent) CountRelease(&ReleaseCounts::shutdown, "shutdown");
      finished.emplace_back(std::move(it->second), std::move(t));
      jobs_.erase(it);
    }
    ExpireLocked(results);
  }
  for (auto& [job, t] : finished) results.push_back(ToResult(job, std::move(t)));
  recorder_.Add(std::move(results));
  Submit(std::move(start));
}

void DeliveryPipeline::Submit(std::vector<OutgoingRequest> start) {
  if (start.empty()) return;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      // Promoted from a line after the shutdown began: released unsent.
      // Each release frees a slot its line may promote into: those are
      // released too, until none is promoted.
      std::vector<DeliveryResult> released;
      std::vector<uint64_t> tags;
      for (const OutgoingRequest& r : start) tags.push_back(r.tag);
      while (!tags.empty()) {
        const uint64_t tag = tags.back();
        tags.pop_back();
        auto it = jobs_.find(tag);
        if (it == jobs_.end()) continue;
        if (it->second.admitted) {
          for (const OutgoingRequest& next : admission_.Finished(tag, absl::ZeroDuration(), false, {})) {
            tags.push_back(next.tag);
          }
        }
        CountRelease(&ReleaseCounts::shutdown, "shutdown");
        released.push_back(NoAttempt(it->second, DeliveryResult::Action::kRelease));
        jobs_.erase(it);
      }
      ExpireLocked(released);
      recorder_.Add(std::move(released));
      return;
    }
  }
  transport_.Submit(std::move(start));
}

void DeliveryPipeline::ExpireWaiting() {
  std::vector<DeliveryResult> results;
  std::vector<OutgoingRequest> start;
  {
    absl::MutexLock lock(&mu_);
    last_expiry_ = absl::InfinitePast();
    ExpireLocked(results);
    start = admission_.PromoteAll();  // those their webhook's rate held back
    ExpireLocked(results);
  }
  recorder_.Add(std::move(results));
  Submit(std::move(start));
}

// Requests that waited in line too long are released, so that none is held
// past its lease: those a freed slot found too old at once, the lines
// scanned every 100 ms at most.
void DeliveryPipeline::ExpireLocked(std::vector<DeliveryResult>& results) {
  const absl::Time now = clock_.Now();
  const bool scan = now - last_expiry_ >= absl::Milliseconds(100);
  if (scan) last_expiry_ = now;
  for (const ExpiredRequest& e : admission_.ExpireWaiting(scan)) {
    auto it = jobs_.find(e.tag);
    if (it == jobs_.end()) continue;
    CountRelease(&ReleaseCounts::queue_wait, "queue_wait");
    results.push_back(NoAttempt(it->second, DeliveryResult::Action::kRelease, e.defer));
    results.back().parked = true;  // into its destination's backlog slot (BacklogWait)
    jobs_.erase(it);
  }
}

void DeliveryPipeline::StartTicking(absl::Duration period) {
  ticker_ = std::thread([this, period] {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stop_ticking_), period)) return;
      }
      ExpireWaiting();
    }
  });
}

void DeliveryPipeline::StopTicking() {
  {
    absl::MutexLock lock(&mu_);
    stop_ticking_ = true;
  }
  if (ticker_.joinable()) ticker_.join();
}

DeliveryPipeline::~DeliveryPipeline() { StopTicking(); }

void DeliveryPipeline::StopSending() {
  std::vector<DeliveryResult> released;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    ExpireLocked(released);
    for (uint64_t tag : admission_.DropWaiting()) {
      auto it = jobs_.find(tag);
      if (it == jobs_.end()) continue;
      CountRelease(&ReleaseCounts::shutdown, "shutdown");
      released.push_back(NoAttempt(it->second, DeliveryResult::Action::kRelease));
      jobs_.erase(it);
    }
  }
  StopTicking();
  recorder_.Add(std::move(released));
}

bool DeliveryPipeline::SuspectInFlight() const {
  absl::MutexLock lock(&mu_);
  for (const auto& [tag, job] : jobs_) {
    if (job.suspect) return true;
  }
  return false;
}

std::vector<BacklogPull> DeliveryPipeline::TakePulls() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return {};
  return admission_.TakePulls();
}

void DeliveryPipeline::PullDone(const BacklogPull& pull, int pulled) {
  absl::MutexLock lock(&mu_);
  admission_.PullDone(pull, pulled);
}

std::size_t DeliveryPipeline::Outstanding() const {
  absl::MutexLock lock(&mu_);
  return jobs_.size();
}

absl::Duration DeliveryPipeline::render_time() const {
  absl::MutexLock lock(&mu_);
  return render_time_;
}

ReleaseCounts DeliveryPipeline::releases() const {
  absl::MutexLock lock(&mu_);
  return releases_;
}

void DeliveryPipeline::CountRelease(int64_t ReleaseCounts::*counter, std::string_view reason) {
  ++(releases_.*counter);
  if (options_.metrics != nullptr) options_.metrics->Released(reason);
}

DeliveryResult DeliveryPipeline::ToResult(const Job& job, TransferResult&& t) {
  if (!t.sent) {  // the transport shut down first: another claim may take it
    return NoAttempt(job, DeliveryResult::Action::kRelease);
  }
  DeliveryResult r = NoAttempt(job, DeliveryResult::Action::kAttempt);
  r.event = job.event;
  r.event_created_at = job.event_created_at;
  r.started_at = t.started_at;
  r.duration = t.duration;
  r.snippet = SanitizeSnippet(t.body_prefix);
  r.attempt = std::move(t.attempt);
  {
    absl::MutexLock lock(&bitgen_mu_);
    r.decision = DecideOutcome(r.attempt, job.attempt_number, job.retry_on_error, options_.retry_policy,
                               clock_.Now(), bitgen_);
  }
  if (r.decision.kind != DecisionKind::kSucceeded) {
    const std::string status = r.attempt.error_class == ErrorClass::kNone ? std::to_string(r.attempt.http_status) : "";
    log::Debug("delivery attempt failed", {{"delivery_id", job.delivery_id},
                                           {"webhook_id", job.webhook_id},
                                           {"attempt", std::to_string(job.attempt_number)},
                                           {"http_status", status},
                                           {"error_class", ErrorClassName(r.attempt.error_class)},
                                           {"error", t.error_detail},
                                           {"decision", DecisionName(r.decision.kind)}});
  }
  return r;
}

}  // namespace octo::delivery
