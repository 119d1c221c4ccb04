#include "services/delivery/dispatcher.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <queue>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/common/log.h"
#include "services/common/strings.h"
#include "services/delivery/dispatch_outcome.h"
#include "services/delivery/dispatch_render.h"
#include "services/delivery/dispatch_sender.h"
#include "services/delivery/dispatch_store.h"

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

namespace {

absl::Status ValidateOptions(const DispatcherOptions& o) {
  if (o.database_url.empty()) return absl::InvalidArgumentError("dispatcher: database_url is required");
  if (o.claim_batch < 1 || o.max_in_flight < 1 || o.max_per_host < 1 || o.result_batch < 1 ||
      o.result_writers < 1) {
    return absl::InvalidArgumentError(
        "dispatcher: claim_batch, max_in_flight, max_per_host, result_batch and result_writers must be at least 1");
  }
  if (o.max_queued_per_host < 0) return absl::InvalidArgumentError("dispatcher: max_queued_per_host must not be negative");
  if (o.connect_timeout.count() <= 0 || o.request_timeout.count() <= 0 || o.poll_interval.count() <= 0) {
    return absl::InvalidArgumentError("dispatcher: connect_timeout, request_timeout and poll_interval must be positive");
  }
  if (o.lease_margin.count() <= 0) return absl::InvalidArgumentError("dispatcher: lease_margin must be positive");
  if (o.disable_after_failing_for.count() <= 0) {
    return absl::InvalidArgumentError("dispatcher: disable_after_failing_for must be positive");
  }
  if (o.min_retry_after.count() < 0 || o.max_retry_after < o.min_retry_after) {
    return absl::InvalidArgumentError(
        "dispatcher: min_retry_after must not be negative, max_retry_after not below min_retry_after");
  }
  for (auto d : o.retry_schedule) {
    if (d.count() < 0) return absl::InvalidArgumentError("dispatcher: retry delays must not be negative");
  }
  return absl::OkStatus();
}

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

std::string StdString(absl::string_view s) { return std::string(s.data(), s.size()); }

class DispatcherImpl final : public Dispatcher {
 public:
  explicit DispatcherImpl(DispatcherOptions options)
      : options_(std::move(options)),
        lease_(absl::FromChrono(options_.request_timeout) + absl::FromChrono(options_.lease_margin)),
        min_claim_(std::max(1, std::min(options_.claim_batch, options_.max_in_flight) / 4)) {
    for (auto d : options_.retry_schedule) policy_.schedule.push_back(absl::FromChrono(d));
    policy_.min_retry_after = absl::FromChrono(options_.min_retry_after);
    policy_.max_retry_after = absl::FromChrono(options_.max_retry_after);
  }

  ~DispatcherImpl() override { Stop(); }

  absl::Status Init() {
    DispatchStoreOptions store_options;
    store_options.disable_after = absl::FromChrono(options_.disable_after_failing_for);
    store_options.max_unreported_claims = options_.max_unreported_claims;
    absl::StatusOr<std::unique_ptr<PgDispatchStore>> claim_store =
        PgDispatchStore::Connect(options_.database_url, store_options);
    if (!claim_store.ok()) return claim_store.status();
    claim_store_ = std::move(*claim_store);
    for (int i = 0; i < options_.result_writers; ++i) {
      absl::StatusOr<std::unique_ptr<PgDispatchStore>> store =
          PgDispatchStore::Connect(options_.database_url, store_options);
      if (!store.ok()) return store.status();
      write_stores_.push_back(std::move(*store));
    }

    CurlSenderOptions sender_options;
    sender_options.max_in_flight = options_.max_in_flight;
    sender_options.max_per_host = options_.max_per_host;
    sender_options.connect_timeout = options_.connect_timeout;
    sender_options.request_timeout = options_.request_timeout;
    sender_options.destination_policy = options_.destination_policy;
    // A request may wait for its destination at most half the lease margin,
    // so it is sent (and its result written) before the lease runs out.
    sender_options.max_queue_wait = std::max(std::chrono::milliseconds(1), options_.lease_margin / 2);
    // One destination may hold this many deliveries waiting beyond its
    // running ones; the rest of the claimed capacity stays for the others.
    sender_options.max_queued_per_host =
        options_.max_queued_per_host > 0
            ? options_.max_queued_per_host
            : std::max(4 * options_.max_per_host, options_.max_in_flight / 2 - options_.max_per_host);
    destination_cap_ = options_.max_per_host + sender_options.max_queued_per_host;
    absl::StatusOr<std::unique_ptr<HttpSender>> sender =
        NewCurlSender(sender_options, [this](std::vector<TransferResult> done) { OnTransfers(std::move(done)); });
    if (!sender.ok()) return sender.status();
    sender_ = std::move(*sender);

    for (auto& store : write_stores_) writers_.emplace_back([this, s = store.get()] { WriteLoop(*s); });
    claimer_ = std::thread([this] { ClaimLoop(); });
    listener_ = std::make_unique<NotificationListener>(options_.database_url, kDeliveryChannel, [this] { Wake(); });
    started_ = true;
    return absl::OkStatus();
  }

  void Stop() override {
    std::call_once(stop_once_, [this] { StopOnce(); });
  }

 private:
  // A result waiting to be written, and how often the database refused it.
  struct PendingResult {
    DeliveryResult result;
    int failures = 0;
  };

  // What the writer needs to know about a claimed delivery.
  struct Job {
    std::string delivery_id;
    std::string webhook_id;
    int64_t lease_us = 0;
    int attempt_number = 1;
    bool retry_on_error = true;
    bool cancel = false;  // its webhook is disabled: cancel, do not send
    std::string destination;  // counted in load_by_destination_ ("" = not)
    std::string event;    // for metrics: the event's type and creation time
    absl::Time event_created_at;
    bool limited = false;  // holds one of its webhook's EndpointLimit slots until its result
    // Over its webhook's limits: not sent, released to be claimed again after this.
    absl::Duration defer;
  };

  // A webhook's per-endpoint limits in this process (rate_limit_per_second,
  // max_concurrency): requests spaced at least 1/rate apart (GCRA, no
  // burst) and at most max_concurrency running.
  struct EndpointLimit {
    int in_flight = 0;
    absl::Time next_send = absl::InfinitePast();  // earliest start the rate allows
    absl::Duration typical_duration = absl::Milliseconds(100);  // moving average of attempts
  };

  void StopOnce() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (claimer_.joinable()) claimer_.join();
    listener_.reset();
    // Running transfers finish (bounded by the request timeout); queued ones
    // come back unsent and are released.
    if (sender_ != nullptr) sender_->Shutdown(absl::Now() + absl::FromChrono(options_.request_timeout));
    {
      absl::MutexLock lock(&results_mu_);
      writer_stopping_ = true;
      // Results still unwritten by then are given up (their leases expire and
      // the deliveries are sent again).
      writer_deadline_ = absl::Now() + absl::Seconds(10);
    }
    for (std::thread& w : writers_) w.join();
    if (started_) {
      absl::MutexLock lock(&stats_mu_);
      // Where the time went, for tuning (not metrics: those are the caller's).
      log::Info("dispatcher stopped",
                {{"claims", std::to_string(stats_.claims)},
                 {"claimed", std::to_string(stats_.claimed)},
                 {"claim_time", absl::FormatDuration(stats_.claim_time)},
                 {"render_time", absl::FormatDuration(stats_.render_time)},
                 {"result_writes", std::to_string(stats_.writes)},
                 {"results_written", std::to_string(stats_.written)},
                 {"write_time", absl::FormatDuration(stats_.write_time)}});
    }
  }

  // ------------------------------------------------------------ claiming --

  void Wake() {
    absl::MutexLock lock(&mu_);
    wake_ = true;
  }

  int FreeSlots() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return options_.max_in_flight - in_flight_; }

  bool ClaimReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || rearm_ || (wake_ && FreeSlots() >= min_claim_ && writers_holding_ == 0);
  }

  void ClaimLoop() {
    absl::Time last_claim = absl::InfinitePast();
    absl::Duration backoff = absl::Milliseconds(100);
    while (true) {
      int limit = 0;
      {
        absl::MutexLock lock(&mu_);
        // Already woken: waiting for free capacity only, which a written
        // result signals. Otherwise until the poll or a scheduled retry.
        const absl::Time retry_at = retry_hints_.empty() ? absl::InfiniteFuture() : retry_hints_.top();
        const absl::Time poll_at =
            wake_ ? absl::InfiniteFuture()
                  : std::min(last_claim + absl::FromChrono(options_.poll_interval), retry_at);
        waiting_until_ = poll_at;
        mu_.AwaitWithDeadline(absl::Condition(this, &DispatcherImpl::ClaimReady), poll_at);
        waiting_until_ = absl::InfiniteFuture();
        if (stopping_) return;
        if (rearm_) {  // a retry falls due before poll_at: wait again with the new deadline
          rearm_ = false;
          continue;
        }
        const absl::Time now = absl::Now();
        if (now >= poll_at) {
          wake_ = true;
          while (!retry_hints_.empty() && retry_hints_.top() <= now) retry_hints_.pop();
        }
        // Results held through an outage are written before anything is
        // claimed again: their deliveries' leases may have run out, and a
        // claim would send them again.
        if (!wake_ || FreeSlots() < min_claim_ || writers_holding_ > 0) continue;
        limit = std::min(options_.claim_batch, FreeSlots());
        in_flight_ += limit;  // reserved until the claim returns
        wake_ = false;
      }
      last_claim = absl::Now();
      absl::StatusOr<ClaimBatch> batch = claim_store_->Claim(limit, lease_);
      {
        absl::MutexLock lock(&stats_mu_);
        ++stats_.claims;
        stats_.claim_time += absl::Now() - last_claim;
        if (options_.pg_metrics != nullptr)
          options_.pg_metrics->Query("dispatch_claim", absl::ToDoubleSeconds(absl::Now() - last_claim), batch.ok());
        if (batch.ok()) stats_.claimed += static_cast<int64_t>(batch->deliveries.size());
      }
      if (!batch.ok()) {
        log::Warn("claiming deliveries failed; retrying", {{"error", StdString(batch.status().ToString())}});
        absl::MutexLock lock(&mu_);
        in_flight_ -= limit;
        wake_ = true;
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
        backoff = std::min(backoff * 2, absl::Seconds(5));
        continue;
      }
      backoff = absl::Milliseconds(100);
      const int claimed = static_cast<int>(batch->deliveries.size());
      {
        absl::MutexLock lock(&mu_);
        in_flight_ -= limit - claimed;
        if (claimed == limit) wake_ = true;  // there may be more due
      }
      const absl::Time t0 = absl::Now();
      if (claimed > 0) Dispatch(*batch);
      {
        absl::MutexLock lock(&stats_mu_);
        stats_.render_time += absl::Now() - t0;
      }
    }
  }

  // Renders and signs a claimed batch and hands it to the sender.
  void Dispatch(const ClaimBatch& batch) {
    std::unordered_map<std::string, absl::StatusOr<ParsedEvent>> events;
    const int64_t timestamp = absl::ToUnixSeconds(absl::Now());
    std::vector<std::pair<uint64_t, Job>> jobs;
    std::vector<OutgoingRequest> requests;
    std::vector<TransferResult> immediate;
    std::unordered_map<std::string, std::optional<std::string>> destinations;  // by URL
    jobs.reserve(batch.deliveries.size());
    requests.reserve(batch.deliveries.size());
    // Per webhook: deliveries of this batch deferred by its limits so far.
    std::unordered_map<std::string, int> deferred;
    for (const ClaimedDelivery& d : batch.deliveries) {
      const uint64_t tag = next_tag_.fetch_add(1);
      const auto stored_event = batch.events.find(d.event_id);
      const bool has_event = stored_event != batch.events.end();
      Job job;
      job.delivery_id = d.id;
      job.webhook_id = d.webhook_id;
      job.lease_us = d.lease_us;
      job.attempt_number = d.attempt_count + 1;
      job.retry_on_error = d.retry_on_error;
      job.cancel = !d.webhook_enabled;
      if (has_event) {
        job.event = stored_event->second.event;
        job.event_created_at = stored_event->second.created_at;
      }
      bool send = d.webhook_enabled;
      // A destination that already holds all the requests the sender would
      // take (running + waiting) refuses this one too: released unrendered,
      // as the sender would release it, without the cost of rendering and
      // signing a body that is thrown away.
      bool backlogged = false;
      absl::Duration backlog_wait;
      if (send) {
        auto dest = destinations.find(d.url);
        if (dest == destinations.end()) dest = destinations.emplace(d.url, DestinationKey(d.url)).first;
        if (dest->second.has_value()) {
          if (ReserveDestination(*dest->second, &backlog_wait)) {
            job.destination = *dest->second;
          } else {
            backlogged = true;
            send = false;
          }
        }
      }
      // Per-endpoint limits, checked last so that a delivery refused above
      // uses none of its webhook's rate or concurrency.
      if (send && (d.rate_limit_per_second > 0 || d.max_concurrency > 0)) {
        job.defer = AdmitLimited(d, deferred[d.webhook_id]);
        job.limited = job.defer <= absl::ZeroDuration();
        if (!job.limited) {
          absl::MutexLock lock(&jobs_mu_);
          ReleaseDestination(job.destination, nullptr);
          job.destination.clear();
          send = false;
        }
      }
      jobs.emplace_back(tag, std::move(job));
      if (!send) {
        // Cancelled (webhook disabled), or released unsent (its destination
        // is backlogged, or its webhook over its limits).
        TransferResult r;
        r.tag = tag;
        r.sent = false;
        r.backlogged = backlogged;
        r.backlog_wait = backlog_wait;
        immediate.push_back(std::move(r));
        continue;
      }
      absl::Status status;
      auto it = events.find(d.event_id);
      if (it == events.end()) {
        auto stored = batch.events.find(d.event_id);
        absl::StatusOr<ParsedEvent> parsed = stored == batch.events.end()
                                                 ? absl::StatusOr<ParsedEvent>(absl::InternalError("event not loaded"))
                                                 : ParseClaimedEvent(stored->second);
        it = events.emplace(d.event_id, std::move(parsed)).first;
      }
      if (it->second.ok()) {
        absl::StatusOr<OutgoingRequest> request = RenderRequest(d, *it->second, timestamp);
        if (request.ok()) {
          request->tag = tag;
          requests.push_back(std::move(*request));
          continue;
        }
        status = request.status();
      } else {
        status = it->second.status();
      }
      // Recorded as an attempt that failed on our side (error class internal).
      log::Error("cannot render delivery", {{"delivery_id", d.id}, {"error", StdString(status.ToString())}});
      TransferResult r;
      r.tag = tag;
      r.attempt.error_class = ErrorClass::kInternal;
      r.error_detail = StdString(status.message());
      r.started_at = absl::Now();
      immediate.push_back(std::move(r));
    }
    {
      absl::MutexLock lock(&jobs_mu_);
      for (auto& [tag, job] : jobs) jobs_.emplace(tag, std::move(job));
    }
    sender_->Submit(std::move(requests));
    if (!immediate.empty()) OnTransfers(std::move(immediate));
  }

  // Counts a request to `destination` unless it already has destination_cap_.
  // When it has, `*wait` is about when the destination will have drained
  // what is ahead (as the sender estimates it for the requests it turns
  // away), so that a slow destination's surplus comes back at its pace
  // instead of every second.
  bool ReserveDestination(const std::string& destination, absl::Duration* wait) {
    absl::MutexLock lock(&jobs_mu_);
    DestinationLoad& load = load_by_destination_[destination];
    if (load.outstanding >= destination_cap_) {
      const int ahead = load.outstanding + ++load.turned_away;
      const auto pace = pace_by_destination_.find(destination);
      const absl::Duration typical = pace == pace_by_destination_.end() ? absl::ZeroDuration() : pace->second;
      *wait = std::clamp(typical * ahead / options_.max_per_host, absl::ZeroDuration(), absl::Minutes(10));
      return false;
    }
    ++load.outstanding;
    return true;
  }

  // A reserved request's result came back (`t`), or the reservation is
  // undone unsent (null).
  void ReleaseDestination(const std::string& destination, const TransferResult* t)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(jobs_mu_) {
    if (t != nullptr && t->sent && t->duration > absl::ZeroDuration()) {
      // Kept while the destination is idle too (bounded: a cleared map only
      // loses estimates).
      if (pace_by_destination_.size() > kMaxPaces) pace_by_destination_.clear();
      auto [pace, fresh] = pace_by_destination_.try_emplace(destination, t->duration);
      if (!fresh) pace->second = pace->second * 0.8 + t->duration * 0.2;
    }
    auto it = load_by_destination_.find(destination);
    if (it == load_by_destination_.end()) return;
    DestinationLoad& load = it->second;
    --load.outstanding;
    // Nothing waits behind the running ones any more: the earlier refusals
    // have been taken into account (as the sender does).
    if (load.outstanding <= options_.max_per_host) load.turned_away = 0;
    if (load.outstanding <= 0) load_by_destination_.erase(it);
  }

  // Whether a delivery of a limited webhook may start now: zero, and a slot
  // of the webhook is taken (released by LimitedDone); else how long to
  // defer it. `deferred` counts this batch's deferrals of the webhook so
  // that they come back spread out, at the pace the limits allow, instead of
  // all at once.
  absl::Duration AdmitLimited(const ClaimedDelivery& d, int& deferred) {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&limits_mu_);
    if (limits_.size() > kMaxIdleLimits) {
      std::erase_if(limits_, [&](const auto& kv) { return kv.second.in_flight == 0 && kv.second.next_send < now; });
    }
    EndpointLimit& limit = limits_[d.webhook_id];
    if (d.max_concurrency > 0 && limit.in_flight >= d.max_concurrency) {
      // A slot frees when a running attempt ends: about one typical
      // duration, per max_concurrency deferred deliveries.
      const absl::Duration typical = std::clamp(limit.typical_duration, absl::Milliseconds(20), absl::Seconds(5));
      ++deferred;
      return std::min(kMaxLimitDefer, typical * (1.0 + static_cast<double>(deferred - 1) / d.max_concurrency));
    }
    if (d.rate_limit_per_second > 0) {
      const absl::Duration interval = absl::Seconds(1.0 / d.rate_limit_per_second);
      if (limit.next_send > now) {
        ++deferred;
        return std::clamp((limit.next_send - now) + interval * (deferred - 1), kMinLimitDefer, kMaxLimitDefer);
      }
      limit.next_send = now + interval;
    }
    ++limit.in_flight;
    return absl::ZeroDuration();
  }

  // The result of an admitted delivery of a limited webhook arrived.
  void LimitedDone(const std::string& webhook_id, const TransferResult& t) {
    absl::MutexLock lock(&limits_mu_);
    auto it = limits_.find(webhook_id);
    if (it == limits_.end()) return;
    if (it->second.in_flight > 0) --it->second.in_flight;
    if (t.sent && t.duration > absl::ZeroDuration()) {
      it->second.typical_duration = it->second.typical_duration * 0.8 + t.duration * 0.2;
    }
  }

  // ------------------------------------------------------------- results --

  // On the sender's thread: hand over and return.
  void OnTransfers(std::vector<TransferResult> done) {
    absl::MutexLock lock(&results_mu_);
    if (results_.empty()) {
      results_ = std::move(done);
    } else {
      for (auto& r : done) results_.push_back(std::move(r));
    }
  }

  bool WriterReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(results_mu_) {
    return !results_.empty() || writer_stopping_;
  }

  DeliveryResult ToResult(const Job& job, TransferResult&& t, absl::BitGenRef bitgen) {
    DeliveryResult r;
    r.delivery_id = job.delivery_id;
    r.webhook_id = job.webhook_id;
    r.lease_us = job.lease_us;
    r.attempt_number = job.attempt_number;
    if (job.cancel) {
      r.action = DeliveryResult::Action::kCancel;
      return r;
    }
    if (!t.sent) {
      // Nothing was sent: another claim may take it. Deferred a little when
      // its destination is backlogged, so the claim does not come straight
      // back, or as long as its webhook's limits say.
      r.action = DeliveryResult::Action::kRelease;
      if (t.backlogged) r.decision.retry_delay = std::max(kBacklogDefer, t.backlog_wait);
      if (job.defer > absl::ZeroDuration()) r.decision.retry_delay = job.defer;
      return r;
    }
    r.action = DeliveryResult::Action::kAttempt;
    r.event = job.event;
    r.event_created_at = job.event_created_at;
    r.started_at = t.started_at;
    r.duration = t.duration;
    r.snippet = SanitizeSnippet(t.body_prefix);
    r.attempt = std::move(t.attempt);
    r.decision = DecideOutcome(r.attempt, job.attempt_number, job.retry_on_error, policy_, absl::Now(), bitgen);
    if (r.decision.kind != DecisionKind::kSucceeded) {
      const std::string status =
          r.attempt.error_class == ErrorClass::kNone ? std::to_string(r.attempt.http_status) : "";
      log::Debug("delivery attempt failed",
                 {{"delivery_id", job.delivery_id},
                  {"webhook_id", job.webhook_id},
                  {"attempt", std::to_string(job.attempt_number)},
                  {"http_status", status},
                  {"error_class", ErrorClassName(r.attempt.error_class)},
                  {"error", t.error_detail},
                  {"decision", DecisionName(r.decision.kind)}});
    }
    return r;
  }

  void WriteLoop(DispatchStore& store) {
    absl::BitGen bitgen;
    std::vector<PendingResult> backlog;  // converted, not yet written
    absl::Duration backoff = absl::Milliseconds(100);
    bool last_write_failed = false;
    bool holding = false;  // counted in writers_holding_
    while (true) {
      std::vector<TransferResult> taken;
      bool stopping = false;
      absl::Time deadline;
      {
        absl::MutexLock lock(&results_mu_);
        if (last_write_failed) {
          results_mu_.AwaitWithTimeout(absl::Condition(&writer_stopping_), backoff);
        } else if (backlog.empty()) {
          results_mu_.Await(absl::Condition(this, &DispatcherImpl::WriterReady));
        }
        taken.swap(results_);
        stopping = writer_stopping_;
        deadline = writer_deadline_;
      }
      if (!taken.empty()) {
        std::vector<Job> jobs;
        jobs.reserve(taken.size());
        {
          absl::MutexLock lock(&jobs_mu_);
          for (TransferResult& t : taken) {
            auto it = jobs_.find(t.tag);
            if (it == jobs_.end()) {  // cannot happen: every tag is registered before sending
              jobs.emplace_back();
              continue;
            }
            if (!it->second.destination.empty()) ReleaseDestination(it->second.destination, &t);
            if (it->second.limited) LimitedDone(it->second.webhook_id, t);
            jobs.push_back(std::move(it->second));
            jobs_.erase(it);
          }
        }
        for (std::size_t i = 0; i < taken.size(); ++i) {
          if (jobs[i].delivery_id.empty()) continue;
          backlog.push_back({ToResult(jobs[i], std::move(taken[i]), bitgen), 0});
        }
      }
      if (backlog.empty()) {
        if (stopping && sender_->Pending() == 0) {
          absl::MutexLock lock(&results_mu_);
          if (results_.empty()) return;
        }
        last_write_failed = false;
        continue;
      }
      bool outage = false;
      const bool ok = WriteBacklog(store, backlog, &outage);
      last_write_failed = !ok;
      if (outage != holding) {
        holding = outage;
        absl::MutexLock lock(&mu_);
        writers_holding_ += holding ? 1 : -1;
      }
      if (ok) {
        backoff = absl::Milliseconds(100);
      } else {
        backoff = std::min(backoff * 2, absl::Seconds(5));
        if (stopping && absl::Now() >= deadline) {
          log::Error("giving up writing delivery results at shutdown; their leases will expire and they "
                     "will be sent again",
                     {{"results", std::to_string(backlog.size())}});
          Finished(backlog.size(), {});
          backlog.clear();
        }
      }
    }
  }

  static bool Transient(const absl::Status& status) {
    return absl::IsUnavailable(status) || absl::IsAborted(status);
  }

  // Writes the backlog in chunks of result_batch. Returns true when it is
  // empty afterwards; what could not be written stays for the next try.
  // A chunk the database refuses for a lasting reason is written one result
  // at a time so that one bad result does not hold back the others; a result
  // refused kMaxWriteFailures times is given up (logged; its lease expires
  // and the delivery is sent again: at least once).
  bool WriteBacklog(DispatchStore& store, std::vector<PendingResult>& backlog, bool* outage) {
    const std::size_t chunk_size = static_cast<std::size_t>(options_.result_batch);
    std::vector<PendingResult> keep;
    std::size_t done = 0;
    bool unavailable = false;
    while (done < backlog.size() && !unavailable) {
      const std::size_t n = std::min(chunk_size, backlog.size() - done);
      std::vector<DeliveryResult> chunk;
      chunk.reserve(n);
      for (std::size_t i = done; i < done + n; ++i) chunk.push_back(backlog[i].result);
      const absl::Time t0 = absl::Now();
      const absl::Status status = store.WriteResults(chunk);
      {
        absl::MutexLock lock(&stats_mu_);
        ++stats_.writes;
        stats_.write_time += absl::Now() - t0;
        if (options_.pg_metrics != nullptr)
          options_.pg_metrics->Query("dispatch_write_results", absl::ToDoubleSeconds(absl::Now() - t0), status.ok());
        if (status.ok()) stats_.written += static_cast<int64_t>(chunk.size());
      }
      if (status.ok()) {
        Finished(chunk.size(), chunk);
        done += n;
        continue;
      }
      if (Transient(status)) {
        *outage = absl::IsUnavailable(status);
        log::Warn("writing delivery results failed; will retry",
                  {{"results", std::to_string(backlog.size() - done)}, {"error", StdString(status.ToString())}});
        unavailable = true;
        break;
      }
      for (std::size_t i = done; i < done + n; ++i) {
        PendingResult& p = backlog[i];
        const absl::Status one =
            unavailable ? absl::UnavailableError("") : n == 1 ? status : store.WriteResults({p.result});
        if (one.ok()) {
          Finished(1, {p.result});
        } else if (Transient(one)) {
          unavailable = true;
          keep.push_back(std::move(p));
        } else if (++p.failures >= kMaxWriteFailures) {
          log::Error("giving up a delivery result the database refuses; its lease will expire and it will be "
                     "sent again",
                     {{"delivery_id", p.result.delivery_id}, {"error", StdString(one.ToString())}});
          Finished(1, {});
        } else {
          log::Warn("the database refused a delivery result; will retry",
                    {{"delivery_id", p.result.delivery_id}, {"error", StdString(one.ToString())}});
          keep.push_back(std::move(p));
        }
      }
      done += n;
    }
    for (std::size_t i = done; i < backlog.size(); ++i) keep.push_back(std::move(backlog[i]));
    if (options_.metrics != nullptr) {
      const DispatchStore::DisabledCounts disabled = store.TakeDisabledCounts();
      for (int i = 0; i < disabled.gone; ++i) options_.metrics->WebhookDisabled("gone");
      for (int i = 0; i < disabled.failing; ++i) options_.metrics->WebhookDisabled("failing");
    }
    backlog = std::move(keep);
    return backlog.empty();
  }

  // Frees the slots of written (or given up) results and notes when the
  // retries they scheduled fall due.
  void Finished(std::size_t count, const std::vector<DeliveryResult>& written) {
    if (options_.metrics != nullptr) RecordMetrics(*options_.metrics, written);
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    in_flight_ -= static_cast<int>(count);
    for (const DeliveryResult& r : written) {
      const bool released = r.action == DeliveryResult::Action::kRelease;
      if (released && r.decision.retry_delay <= absl::ZeroDuration()) wake_ = true;
      if ((released || (r.action == DeliveryResult::Action::kAttempt && r.decision.kind == DecisionKind::kRetry)) &&
          r.decision.retry_delay > absl::ZeroDuration() && retry_hints_.size() < kMaxRetryHints) {
        const absl::Time due = now + r.decision.retry_delay;
        retry_hints_.push(due);
        if (due < waiting_until_) rearm_ = true;
      }
    }
  }

  // Counts the attempts of written results (docs/observability.md); the
  // webhooks disabled are counted from the store (WriteBacklog).
  static void RecordMetrics(metrics::DeliveryMetrics& m, const std::vector<DeliveryResult>& written) {
    for (const DeliveryResult& r : written) {
      if (r.action != DeliveryResult::Action::kAttempt) continue;
      const bool responded = r.attempt.error_class == ErrorClass::kNone;
      const std::string_view outcome = r.decision.kind == DecisionKind::kSucceeded ? "success"
                                       : r.decision.kind == DecisionKind::kRetry   ? "retry"
                                                                                   : "failed";
      m.Attempt(r.event, outcome, responded ? "none" : ErrorClassName(r.attempt.error_class),
                metrics::StatusClass(responded ? r.attempt.http_status : 0), absl::ToDoubleSeconds(r.duration));
      if (r.decision.kind == DecisionKind::kSucceeded) {
        m.Delivered(r.event, absl::ToDoubleSeconds(r.started_at + r.duration - r.event_created_at));
      } else if (outcome == "failed") {
        m.GivenUp(r.event);
      }
    }
  }

  static constexpr std::size_t kMaxRetryHints = 10000;
  // Limiter entries kept before idle ones are forgotten.
  static constexpr std::size_t kMaxIdleLimits = 10000;
  // Destinations whose transfer time is remembered before the map is reset.
  static constexpr std::size_t kMaxPaces = 10000;
  // The longest deferral of a delivery over its webhook's limits.
  static constexpr absl::Duration kMaxLimitDefer = absl::Hours(1);
  // The shortest deferral of a delivery over its webhook's rate.
  static constexpr absl::Duration kMinLimitDefer = absl::Milliseconds(10);
  static constexpr int kMaxWriteFailures = 5;
  // How long a delivery refused by a backlogged destination waits before it
  // may be claimed again.
  static constexpr absl::Duration kBacklogDefer = absl::Seconds(1);
  absl::Mutex stats_mu_;
  struct Stats {
    int64_t claims = 0;
    int64_t claimed = 0;
    absl::Duration claim_time;
    absl::Duration render_time;
    int64_t writes = 0;
    int64_t written = 0;
    absl::Duration write_time;
  } stats_ ABSL_GUARDED_BY(stats_mu_);

  const DispatcherOptions options_;
  const absl::Duration lease_;
  const int min_claim_;
  RetryPolicy policy_;
  bool started_ = false;
  std::once_flag stop_once_;

  std::unique_ptr<DispatchStore> claim_store_;  // claimer thread only
  std::vector<std::unique_ptr<DispatchStore>> write_stores_;  // one per writer thread
  std::unique_ptr<HttpSender> sender_;
  std::unique_ptr<NotificationListener> listener_;
  std::thread claimer_;
  std::vector<std::thread> writers_;
  std::atomic<uint64_t> next_tag_{1};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = true;   // claim as soon as there is room
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // claimed, result not yet written
  int writers_holding_ ABSL_GUARDED_BY(mu_) = 0;  // writers whose results wait for the database
  // The claimer's current wait deadline, and whether an earlier one is due.
  absl::Time waiting_until_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool rearm_ ABSL_GUARDED_BY(mu_) = false;
  // When retries this process scheduled fall due (earliest on top).
  std::priority_queue<absl::Time, std::vector<absl::Time>, std::greater<>> retry_hints_ ABSL_GUARDED_BY(mu_);

  absl::Mutex limits_mu_;
  std::unordered_map<std::string, EndpointLimit> limits_ ABSL_GUARDED_BY(limits_mu_);

  absl::Mutex jobs_mu_;
  std::unordered_map<uint64_t, Job> jobs_ ABSL_GUARDED_BY(jobs_mu_);
  // Requests handed to the sender per destination whose result is not back
  // yet, and the most the sender takes for one (max_per_host running plus
  // max_queued_per_host waiting).
  struct DestinationLoad {
    int outstanding = 0;
    int turned_away = 0;  // refused since nothing last waited behind the running ones
  };
  std::unordered_map<std::string, DestinationLoad> load_by_destination_ ABSL_GUARDED_BY(jobs_mu_);
  // Moving average of each destination's transfer times.
  std::unordered_map<std::string, absl::Duration> pace_by_destination_ ABSL_GUARDED_BY(jobs_mu_);
  int destination_cap_ = 0;

  absl::Mutex results_mu_;
  std::vector<TransferResult> results_ ABSL_GUARDED_BY(results_mu_);
  bool writer_stopping_ ABSL_GUARDED_BY(results_mu_) = false;
  absl::Time writer_deadline_ ABSL_GUARDED_BY(results_mu_) = absl::InfiniteFuture();
};

}  // namespace

absl::StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Start(DispatcherOptions options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  if (options.pg_metrics != nullptr) {
    options.pg_metrics->Declare("dispatch_claim");
    options.pg_metrics->Declare("dispatch_write_results");
  }
  auto dispatcher = std::make_unique<DispatcherImpl>(std::move(options));
  if (absl::Status s = dispatcher->Init(); !s.ok()) {
    dispatcher->Stop();
    return s;
  }
  log::Info("dispatcher started");
  return dispatcher;
}

}  // namespace octo::delivery
