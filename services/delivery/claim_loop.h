#pragma once
// Claiming: when to claim due deliveries and how many (ClaimScheduler), and
// the thread that does it (ClaimLoop). A delivery holds one of max_in_flight
// slots from its claim until its result is written, so claims never exceed
// the free capacity and unwritten results stay bounded. A claim is made
// when woken (NOTIFY, a full batch, a release due now) and there are at
// least a quarter batch of free slots, when a retry this process scheduled
// falls due, or at the latest every poll_interval.
//
// Claims follow what admission can dispose of: while the last batch had
// deliveries released unsent because their destination could not start
// them within the lease (Admitted), the next claim waits for the poll or a
// due retry (not for a wake: NOTIFY, a full batch, a release due now) and
// takes at most the slots freed since the last claim (sent, released into
// a later slot, given up), at least a sixteenth of a batch. A batch that
// admission refused whole only moved a due backlog into its later slots
// (none returns within a second): the next claim comes at once, a whole
// batch, so what is due behind the backlog (other destinations'
// deliveries, claims being oldest next_attempt_at first) is reached at the
// speed of claims instead of waiting for polls or for the backlogged
// destination to send. Each parked delivery is claimed again about once per
// its destination's backlog horizon (DestinationAdmission::BacklogWait);
// retry hints wake the claimer at most once per kRetryHintStep.
//
// Example:
//   ClaimScheduler scheduler({.claim_batch = 200, .max_in_flight = 1000,
//                             .poll_interval = absl::Seconds(1)}, RealClock());
//   ClaimLoop loop(scheduler, store, lease, [&](ClaimBatch b) { pipeline.Dispatch(b); });
//   loop.Start();  ...  scheduler.Stop(); loop.Join();
#include <cstdint>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/clock.h"
#include "services/common/metrics.h"
#include "services/delivery/destination_admission.h"
#include "services/delivery/dispatch_store.h"

namespace octo::delivery {

struct ClaimOptions {
  int claim_batch = 200;
  int max_in_flight = 1000;
  absl::Duration poll_interval = absl::Seconds(1);
};

// Thread-safe.
class ClaimScheduler {
 public:
  ClaimScheduler(ClaimOptions options, const Clock& clock);

  // Deliveries were enqueued: claim as soon as there is room.
  void Wake();
  // `count` claimed deliveries are done with (results written or given up);
  // `due_in` holds, for the ones released or retried, when they fall due
  // again (zero or less: now, which wakes the claimer).
  void Finished(int count, const std::vector<absl::Duration>& due_in);
  // Of a dispatched batch of `claimed`, `backlogged` were released unsent
  // because their destination could not start them within the lease.
  void Admitted(int claimed, int backlogged);
  // The claim of `limit` returned `claimed` (the unused slots come back; a
  // full batch means more may be due), or failed (claimed < 0).
  void Claimed(int limit, int claimed);
  // A result writer starts (true) or stops (false) holding results through
  // a lost database connection. No claim is made while any does: results
  // answered during an outage are written before their deliveries, whose
  // leases may have run out, could be claimed and sent again.
  void ResultsHeld(bool held);
  // Hand-off (handoff.h): up to `wanted` free slots for deliveries leased
  // at their insert, as many as are free (never waiting, never beyond
  // max_in_flight). While a claim is due but waits for room (slots were
  // short when it came due), a quarter batch is left free for it, so that a
  // steady stream of hand-offs cannot starve retries, releases and the rows
  // inserted unleased. 0 once stopping, and while a result writer holds
  // results through a lost connection (ResultsHeld): a delivery sent then
  // could not have its result written before its lease ran out, and
  // another replica would claim and send it again.
  // At most a claim batch per call (an enqueue hands off no more than a
  // claim would take), and none while admission releases backlog: while
  // the last claimed batch had deliveries released as backlog (Admitted),
  // or for one poll interval after a handed-off batch had (HandoffBacklogged),
  // new deliveries go to the queue, where claims follow what admission can
  // dispose of, instead of being leased and released again at once.
  int Reserve(int wanted);
  // `count` reserved slots were not used.
  void Unreserve(int count);
  // A handed-off batch had deliveries released as backlog.
  void HandoffBacklogged();

  // How many to claim now (that many slots reserved), or 0: not yet.
  int TakeClaim();
  // When TakeClaim should be asked again without being signalled.
  absl::Time NextCheck() const;
  // Blocks until TakeClaim gives a claim (returned) or Stop (0).
  int AwaitClaim();
  // Waits `d` unless stopped first; false when stopped.
  bool SleepUnlessStopped(absl::Duration d);
  void Stop();
  int InFlight() const;
  // The scheduler's clock, read.
  absl::Time Now() const { return clock_.Now(); }

  // Retry hints: at most one per step (10 ms: a claim's own time), at most
  // this many (the earliest kept; 100 s of steps).
  static constexpr absl::Duration kRetryHintStep = absl::Milliseconds(10);
  static constexpr std::size_t kMaxRetryHints = 10000;

 private:
  int TakeClaimLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextCheckLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int FreeSlots() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return options_.max_in_flight - in_flight_; }

  const ClaimOptions options_;
  const int min_claim_;
  const int min_backlogged_claim_;  // the least claimed at the poll while backlogged
  const Clock& clock_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool signalled_ ABSL_GUARDED_BY(mu_) = false;  // something changed since the last check
  bool wake_ ABSL_GUARDED_BY(mu_) = true;        // claim as soon as there is room
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;       // claimed, result not yet written
  int writers_holding_ ABSL_GUARDED_BY(mu_) = 0;  // writers whose results wait for the database
  bool backlogged_ ABSL_GUARDED_BY(mu_) = false;  // the last batch had deliveries admission refused
  bool poll_due_ ABSL_GUARDED_BY(mu_) = false;    // the poll or a retry came due while slots were short
  bool passing_backlog_ ABSL_GUARDED_BY(mu_) = false;  // the last batch was all refused as backlog
  int freed_since_claim_ ABSL_GUARDED_BY(mu_) = 0;  // slots freed (sent or not) since the last claim
  absl::Time last_claim_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time handoff_paused_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // When retries this process scheduled fall due (coalesced per kRetryHintStep).
  std::set<absl::Time> retry_hints_ ABSL_GUARDED_BY(mu_);
};

// The claiming thread: AwaitClaim -> DispatchStore::Claim -> `dispatch`.
// Store errors are logged and retried with backoff (100 ms doubling to 5 s).
// After a claim that found less than it asked for (nothing more is due),
// the parked backlogs `pulls` names (destinations with spare capacity
// again, DestinationAdmission::TakePulls) are made due now
// (DispatchStore::PullForward) and the next claim comes at once.
class ClaimLoop {
 public:
  struct Stats {
    int64_t claims = 0;
    int64_t claimed = 0;
    absl::Duration claim_time;
    int64_t pulls = 0;   // PullForward statements
    int64_t pulled = 0;  // parked deliveries they made due
  };
  // Which parked backlogs to pull, and what each pull made due.
  struct Pulls {
    std::function<std::vector<BacklogPull>()> take;
    std::function<void(const BacklogPull&, int pulled)> done;
  };
  // `suspect_in_flight` says whether a suspect delivery of this process is
  // being sent (DeliveryPipeline::SuspectInFlight): claims then take none.
  ClaimLoop(ClaimScheduler& scheduler, DispatchStore& store, absl::Duration lease,
            std::function<void(const ClaimBatch&)> dispatch, metrics::PgMetrics* pg_metrics, Pulls pulls = {},
            std::function<bool()> suspect_in_flight = {});
  ~ClaimLoop() { Join(); }
  void Start();
  // Returns once the thread ended (after ClaimScheduler::Stop).
  void Join();
  Stats stats() const { return stats_; }  // after Join

 private:
  void Run();
  void PullBacklogs();
  ClaimScheduler& scheduler_;
  DispatchStore& store_;
  const absl::Duration lease_;
  const std::function<void(const ClaimBatch&)> dispatch_;
  metrics::PgMetrics* const pg_metrics_;
  const Pulls pulls_;
  const std::function<bool()> suspect_in_flight_;
  Stats stats_;  // the thread's
  std::thread thread_;
};

}  // namespace octo::delivery
