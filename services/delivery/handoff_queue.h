#pragma once
// The dispatcher's side of the hand-off (handoff.h): slots reserved from the
// ClaimScheduler, and a thread that walks each committed batch the enqueue
// hands over through the same pipeline as a claimed one (admit, render,
// sign, send, record), so that neither the enqueue's caller nor the claimer
// waits for the rendering.
//
// Example:
//   HandoffQueue handoff(scheduler, lease, [&](const ClaimBatch& b) { pipeline.Dispatch(b); });
//   handoff.Start();  ...  scheduler.Stop(); handoff.Stop(absl::Now() + absl::Seconds(10));
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/delivery/claim_loop.h"
#include "services/delivery/handoff.h"

namespace octo::delivery {

class HandoffQueue final : public DeliveryHandoff {
 public:
  struct Stats {
    int64_t batches = 0;
    int64_t deliveries = 0;
    int64_t dropped = 0;  // handed over after Stop: left to their leases
  };
  HandoffQueue(ClaimScheduler& scheduler, absl::Duration lease, std::function<void(const ClaimBatch&)> dispatch)
      : scheduler_(scheduler), lease_(lease), dispatch_(std::move(dispatch)) {}
  ~HandoffQueue() override { Stop(absl::Now()); }

  int Reserve(int wanted) override;
  void Unreserve(int count) override;
  void Dispatch(ClaimBatch batch) override;
  absl::Duration lease() const override { return lease_; }
  absl::Time Now() const override { return scheduler_.Now(); }

  void Start();
  // After ClaimScheduler::Stop (nothing more is reserved): waits until
  // `deadline` for the reservations still out (enqueue transactions
  // running) to be handed over or given back, dispatches what was handed
  // over, and ends the thread. A batch handed over later is not sent: its
  // leases run out and the next claim records the lost attempt.
  void Stop(absl::Time deadline);
  Stats stats() const;

 private:
  void Run();

  ClaimScheduler& scheduler_;
  const absl::Duration lease_;
  const std::function<void(const ClaimBatch&)> dispatch_;
  mutable absl::Mutex mu_;
  std::deque<ClaimBatch> queue_ ABSL_GUARDED_BY(mu_);
  int reserved_ ABSL_GUARDED_BY(mu_) = 0;  // slots reserved, not yet handed over or given back
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // the thread ended: nothing more is sent
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace octo::delivery
