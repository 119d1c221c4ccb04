#include "services/delivery/claim_loop.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "services/common/log.h"

namespace octo::delivery {

ClaimScheduler::ClaimScheduler(ClaimOptions options, const Clock& clock)
    : options_(options),
      min_claim_(std::max(1, std::min(options.claim_batch, options.max_in_flight) / 4)),
      min_backlogged_claim_(std::max(1, min_claim_ / 4)),
      clock_(clock) {}

void ClaimScheduler::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
  signalled_ = true;
}

void ClaimScheduler::Finished(int count, const std::vector<absl::Duration>& due_in) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  in_flight_ -= count;
  // Every slot freed (sent, released unsent or given up) counts: a backlog
  // released into its future slots makes room for other destinations'
  // deliveries as much as a send does.
  freed_since_claim_ += count;
  // Hints coalesce: one per kRetryHintStep (rounded up, so a claim never
  // comes before its retry is due), so a backlog released into thousands
  // of slots wakes the claimer at most once per step. When they are too
  // many the latest go (the poll still claims them), not the newest: the
  // earliest decide when the next claim is due.
  for (absl::Duration d : due_in) {
    if (d <= absl::ZeroDuration()) {
      wake_ = true;
      continue;
    }
    const absl::Time at = absl::UnixEpoch() + absl::Ceil(now + d - absl::UnixEpoch(), kRetryHintStep);
    retry_hints_.insert(at);
    if (retry_hints_.size() > kMaxRetryHints) retry_hints_.erase(std::prev(retry_hints_.end()));
  }
  signalled_ = true;
}

void ClaimScheduler::Claimed(int limit, int claimed) {
  absl::MutexLock lock(&mu_);
  in_flight_ -= limit - std::max(0, claimed);
  // A full batch: there may be more due. A failure: try again (after the
  // caller's backoff).
  if (claimed == limit || claimed < 0) wake_ = true;
  // Nothing due: no backlog is waiting to be claimed.
  if (claimed == 0) backlogged_ = false;
  signalled_ = true;
}

void ClaimScheduler::Admitted(int claimed, int backlogged) {
  absl::MutexLock lock(&mu_);
  // A full batch says more is due, but admission could not take all of it:
  // the next claim waits for the poll or a due retry, sized by the slots
  // freed since this claim. Wakes that come meanwhile are kept for when the
  // backlog ends (the counts are the claim's, kept since TakeClaim).
  if (backlogged > 0) {
    backlogged_ = true;
  } else if (claimed > 0) {
    backlogged_ = false;
  }
  // Every one refused: the claim only moved a due backlog into its later
  // slots (none comes back sooner than kMinBacklogDefer), and deliveries
  // due behind it wait until it is all moved. The next claim comes at
  // once, a whole batch (TakeClaim); it ends with a batch admission took
  // some of, or one that finds nothing due.
  passing_backlog_ = claimed > 0 && backlogged == claimed;
}

void ClaimScheduler::ResultsHeld(bool held) {
  absl::MutexLock lock(&mu_);
  writers_holding_ += held ? 1 : -1;
  if (writers_holding_ == 0) wake_ = true;  // what waited may be claimed now
  signalled_ = true;
}

int ClaimScheduler::Reserve(int wanted) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || wanted <= 0 || backlogged_ || writers_holding_ > 0 || clock_.Now() < handoff_paused_until_) {
    return 0;
  }
  const int keep = poll_due_ ? min_claim_ : 0;
  const int slots = std::clamp(FreeSlots() - keep, 0, std::min(wanted, options_.claim_batch));
  in_flight_ += slots;
  return slots;
}

void ClaimScheduler::Unreserve(int count) {
  if (count <= 0) return;
  absl::MutexLock lock(&mu_);
  in_flight_ -= count;
  signalled_ = true;  // a claim waiting for room may go
}

void ClaimScheduler::HandoffBacklogged() {
  absl::MutexLock lock(&mu_);
  handoff_paused_until_ = clock_.Now() + options_.poll_interval;
}

int ClaimScheduler::TakeClaim() {
  absl::MutexLock lock(&mu_);
  return TakeClaimLocked();
}

int ClaimScheduler::TakeClaimLocked() {
  const absl::Time now = clock_.Now();
  // Backlogged, only the poll or a due retry claims: a wake (NOTIFY, a full
  // batch, a release due now) waits for it.
  const bool woken = wake_ && !backlogged_;
  bool due = woken || poll_due_ || passing_backlog_;
  if (!due && now >= NextCheckLocked()) {
    due = true;  // the poll, or a retry fell due
    retry_hints_.erase(retry_hints_.begin(), retry_hints_.upper_bound(now));
  }
  if (!due || FreeSlots() < min_claim_ || writers_holding_ > 0) {
    poll_due_ = due;  // claims once there is room (a written result signals)
    return 0;
  }
  int limit = std::min(options_.claim_batch, FreeSlots());
  // Backlogged: as many as freed a slot since the last claim (sent,
  // released into a later slot, given up), so claims keep pace with what
  // admission disposes of; at least a few, so that claims go on while the
  // backlogged destination frees nothing. Passing a due backlog (the last
  // batch refused whole): a whole batch at once, every one of which
  // admission releases into its later slot at once, so the deliveries due
  // behind the backlog (other destinations') are reached at the speed of
  // claims, not of polls.
  if (backlogged_ && !passing_backlog_) limit = std::min(limit, std::max(min_backlogged_claim_, freed_since_claim_));
  freed_since_claim_ = 0;
  poll_due_ = false;
  passing_backlog_ = false;
  in_flight_ += limit;  // reserved until the claim returns
  wake_ = false;
  last_claim_ = now;
  return limit;
}

absl::Time ClaimScheduler::NextCheck() const {
  absl::MutexLock lock(&mu_);
  return NextCheckLocked();
}

// Already due (woken and not backlogged, or the poll came while slots were
// short): waiting for free capacity only, which a written result signals.
// Otherwise until the poll or a scheduled retry.
absl::Time ClaimScheduler::NextCheckLocked() const {
  if ((wake_ && !backlogged_) || poll_due_ || passing_backlog_) return absl::InfiniteFuture();
  const absl::Time retry_at = retry_hints_.empty() ? absl::InfiniteFuture() : *retry_hints_.begin();
  return std::min(last_claim_ + options_.poll_interval, retry_at);
}

int ClaimScheduler::AwaitClaim() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (const int limit = TakeClaimLocked(); limit > 0) return limit;
    signalled_ = false;
    // The clock's deadline on the real clock (they are one in production).
    const absl::Duration wait = NextCheckLocked() - clock_.Now();
    mu_.AwaitWithTimeout(absl::Condition(&signalled_), std::max(wait, absl::ZeroDuration()));
  }
  return 0;
}

bool ClaimScheduler::SleepUnlessStopped(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

void ClaimScheduler::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  signalled_ = true;
}

int ClaimScheduler::InFlight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

ClaimLoop::ClaimLoop(ClaimScheduler& scheduler, DispatchStore& store, absl::Duration lease,
                     std::function<void(const ClaimBatch&)> dispatch, metrics::PgMetrics* pg_metrics, Pulls pulls,
                     std::function<bool()> suspect_in_flight)
    : scheduler_(scheduler),
      store_(store),
      lease_(lease),
      dispatch_(std::move(dispatch)),
      pg_metrics_(pg_metrics),
      pulls_(std::move(pulls)),
      suspect_in_flight_(std::move(suspect_in_flight)) {}

void ClaimLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ClaimLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

void ClaimLoop::Run() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (const int limit = scheduler_.AwaitClaim()) {
    const absl::Time t0 = absl::Now();
    const absl::Time claimed_at = scheduler_.Now();
    // The previous batch is dispatched by now (dispatch_ runs on this
    // thread), so its suspect, if any, is in flight.
    const DispatchStore::Suspects suspects = suspect_in_flight_ && suspect_in_flight_()
                                                 ? DispatchStore::Suspects::kNone
                                                 : DispatchStore::Suspects::kOneAlone;
    absl::StatusOr<ClaimBatch> batch = store_.Claim(limit, lease_, suspects);
    const absl::Duration took = absl::Now() - t0;
    ++stats_.claims;
    stats_.claim_time += took;
    if (pg_metrics_ != nullptr) pg_metrics_->Query("dispatch_claim", absl::ToDoubleSeconds(took), batch.ok());
    if (!batch.ok()) {
      log::Warn("claiming deliveries failed; retrying", {{"error", std::string(batch.status().ToString())}});
      scheduler_.Claimed(limit, -1);
      if (!scheduler_.SleepUnlessStopped(backoff)) return;
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = absl::Milliseconds(100);
    const int claimed = static_cast<int>(batch->deliveries.size());
    stats_.claimed += claimed;
    batch->claimed_at = claimed_at;
    scheduler_.Claimed(limit, claimed);
    if (claimed > 0) dispatch_(*batch);
    if (claimed < limit && pulls_.take) PullBacklogs();
  }
}

// Nothing more was due: a destination that has spare capacity again gets
// its parked deliveries back now rather than at their slots (spaced at the
// pace it had when they were parked, or unknown to this process after a
// restart). A failed pull is only logged: the slots still hold.
void ClaimLoop::PullBacklogs() {
  int pulled = 0;
  for (const BacklogPull& pull : pulls_.take()) {
    const absl::Time t0 = absl::Now();
    const absl::StatusOr<int> n = store_.PullForward(pull.webhook_ids, pull.limit);
    ++stats_.pulls;
    if (pg_metrics_ != nullptr) {
      pg_metrics_->Query("dispatch_pull_forward", absl::ToDoubleSeconds(absl::Now() - t0), n.ok());
    }
    if (!n.ok()) {
      log::Warn("pulling a parked backlog forward failed",
                {{"destination", pull.destination}, {"error", std::string(n.status().ToString())}});
      return;
    }
    pulled += *n;
    if (pulls_.done) pulls_.done(pull, *n);
  }
  stats_.pulled += pulled;
  if (pulled > 0) scheduler_.Wake();  // they are due now: claim them at once
}

}  // namespace octo::delivery
