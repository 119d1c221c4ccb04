#include "services/delivery/result_recorder.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "services/common/log.h"

namespace octo::delivery {
namespace {

bool Transient(const absl::Status& status) { return absl::IsUnavailable(status) || absl::IsAborted(status); }

std::string StatusText(const absl::Status& s) { return std::string(s.ToString()); }

}  // namespace

ResultRecorder::ResultRecorder(RecorderOptions options, DoneFn on_done)
    : options_(options), on_done_(std::move(on_done)), side_by_side_(std::max<std::size_t>(1, options.batch / 2)) {}

// A writer with nothing of its own starts a round when results wait and no
// other writer is writing, or, beside the others, once half a batch waits:
// writers add commits running side by side only when one falls behind, and
// otherwise keep their batches large (each commit costs the database as
// much whatever its size).
bool ResultRecorder::Ready() const {
  if (stopping_) return true;
  return !added_.empty() && (busy_writers_ == 0 || added_.size() >= side_by_side_);
}

ResultRecorder::~ResultRecorder() { Stop(absl::Now()); }

void ResultRecorder::Add(std::vector<DeliveryResult> results) {
  if (results.empty()) return;
  absl::MutexLock lock(&mu_);
  if (added_.empty()) {
    added_ = std::move(results);
  } else {
    for (auto& r : results) added_.push_back(std::move(r));
  }
}

void ResultRecorder::StartWriters(const std::vector<DispatchStore*>& stores) {
  for (DispatchStore* store : stores) writers_.emplace_back([this, store] { WriterLoop(*store); });
}

void ResultRecorder::Stop(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      deadline_ = deadline;
    }
  }
  for (std::thread& w : writers_) {
    if (w.joinable()) w.join();
  }
}

ResultRecorder::Stats ResultRecorder::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void ResultRecorder::WriterLoop(DispatchStore& store) {
  std::vector<Pending> backlog;  // taken, not yet written
  absl::Duration backoff = absl::Milliseconds(100);
  bool last_failed = false;
  bool holding = false;  // reported through on_results_held
  while (true) {
    bool stopping = false;
    absl::Time deadline;
    {
      absl::MutexLock lock(&mu_);
      if (last_failed) {
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
      } else if (backlog.empty()) {
        mu_.Await(absl::Condition(this, &ResultRecorder::Ready));
      }
      stopping = stopping_;
      deadline = deadline_;
      if (stopping && added_.empty() && backlog.empty()) return;
      ++busy_writers_;
    }
    bool outage = false;
    const bool ok = WriteOnce(store, backlog, &outage, static_cast<std::size_t>(options_.batch));
    {
      absl::MutexLock lock(&mu_);
      --busy_writers_;
    }
    SetHeld(holding, outage);
    last_failed = !ok;
    backoff = ok ? absl::Milliseconds(100) : std::min(backoff * 2, absl::Seconds(5));
    if (!ok && stopping && absl::Now() >= deadline) {
      log::Error("giving up writing delivery results at shutdown; their leases will expire and they "
                 "will be sent again",
                 {{"results", std::to_string(backlog.size())}});
      Done(backlog.size(), {});
      backlog.clear();
      SetHeld(holding, false);
      absl::MutexLock lock(&mu_);
      if (added_.empty()) return;
    }
  }
}

void ResultRecorder::SetHeld(bool& holding, bool held) {
  if (holding == held) return;
  holding = held;
  if (options_.on_results_held) options_.on_results_held(held);
}

bool ResultRecorder::WriteOnce(DispatchStore& store, std::vector<Pending>& backlog, bool* outage, std::size_t take) {
  if (outage != nullptr) *outage = false;
  {
    absl::MutexLock lock(&mu_);
    // The oldest first, up to `take` in all: what is left is for the next
    // writer free, so that writers commit side by side.
    const std::size_t room = backlog.size() < take ? take - backlog.size() : 0;
    const std::size_t n = std::min(room, added_.size());
    for (std::size_t i = 0; i < n; ++i) backlog.push_back({std::move(added_[i]), 0});
    added_.erase(added_.begin(), added_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  const std::size_t chunk = static_cast<std::size_t>(options_.batch);
  std::vector<Pending> keep;
  std::size_t done = 0;
  bool unavailable = false;
  while (done < backlog.size() && !unavailable) {
    const std::size_t n = std::min(chunk, backlog.size() - done);
    const absl::Status status = WriteChunk(store, backlog, done, n);
    if (status.ok()) {
      done += n;
      continue;
    }
    if (Transient(status)) {
      if (outage != nullptr) *outage = absl::IsUnavailable(status);
      log::Warn("writing delivery results failed; will retry",
                {{"results", std::to_string(backlog.size() - done)}, {"error", StatusText(status)}});
      break;
    }
    // A lasting refusal: one at a time, so one bad result holds back no other.
    for (std::size_t i = done; i < done + n; ++i) {
      Pending& p = backlog[i];
      const absl::Status one = unavailable ? absl::UnavailableError("") : n == 1 ? status : WriteChunk(store, backlog, i, 1);
      if (one.ok()) continue;
      if (Transient(one)) {
        if (outage != nullptr && !unavailable) *outage = absl::IsUnavailable(one);
        unavailable = true;
        keep.push_back(std::move(p));
      } else if (++p.failures >= kMaxWriteFailures) {
        log::Error("giving up a delivery result the database refuses; its lease will expire and it will be "
                   "sent again",
                   {{"delivery_id", p.result.delivery_id}, {"error", StatusText(one)}});
        Done(1, {});
      } else {
        log::Warn("the database refused a delivery result; will retry",
                  {{"delivery_id", p.result.delivery_id}, {"error", StatusText(one)}});
        keep.push_back(std::move(p));
      }
    }
    done += n;
  }
  for (std::size_t i = done; i < backlog.size(); ++i) keep.push_back(std::move(backlog[i]));
  CountDisabled(store);
  backlog = std::move(keep);
  return backlog.empty();
}

absl::Status ResultRecorder::WriteChunk(DispatchStore& store, const std::vector<Pending>& backlog, std::size_t from,
                                        std::size_t n) {
  std::vector<DeliveryResult> chunk;
  chunk.reserve(n);
  for (std::size_t i = from; i < from + n; ++i) chunk.push_back(backlog[i].result);
  const absl::Time t0 = absl::Now();
  const absl::Status status = store.WriteResults(chunk);
  const absl::Duration took = absl::Now() - t0;
  {
    absl::MutexLock lock(&mu_);
    ++stats_.writes;
    stats_.write_time += took;
    if (status.ok()) stats_.written += static_cast<int64_t>(n);
  }
  if (options_.pg_metrics != nullptr) {
    options_.pg_metrics->Query("dispatch_write_results", absl::ToDoubleSeconds(took), status.ok());
  }
  if (status.ok()) Done(n, chunk);
  return status;
}

void ResultRecorder::Done(std::size_t count, const std::vector<DeliveryResult>& written) {
  if (options_.metrics != nullptr) RecordAttemptMetrics(*options_.metrics, written);
  on_done_(count, written);
}

// The webhooks that committed writes disabled (410, failing too long).
void ResultRecorder::CountDisabled(DispatchStore& store) {
  if (options_.metrics == nullptr) return;
  const DispatchStore::DisabledCounts disabled = store.TakeDisabledCounts();
  for (int i = 0; i < disabled.gone; ++i) options_.metrics->WebhookDisabled("gone");
  for (int i = 0; i < disabled.failing; ++i) options_.metrics->WebhookDisabled("failing");
}

void RecordAttemptMetrics(metrics::DeliveryMetrics& m, const std::vector<DeliveryResult>& written) {
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

}  // namespace octo::delivery
