#include "services/delivery/handoff_queue.h"

#include <string>
#include <utility>

#include "services/common/log.h"

namespace octo::delivery {

int HandoffQueue::Reserve(int wanted) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return 0;
  const int slots = scheduler_.Reserve(wanted);
  reserved_ += slots;
  return slots;
}

void HandoffQueue::Unreserve(int count) {
  if (count <= 0) return;
  scheduler_.Unreserve(count);
  absl::MutexLock lock(&mu_);
  reserved_ -= count;
}

void HandoffQueue::Dispatch(ClaimBatch batch) {
  const int count = static_cast<int>(batch.deliveries.size());
  if (count == 0) return;
  absl::MutexLock lock(&mu_);
  reserved_ -= count;
  if (stopped_) {
    // The dispatcher has stopped: nothing would send or record them. Their
    // slots are the stopped scheduler's; their leases run out.
    stats_.dropped += count;
    log::Warn("deliveries handed over after the dispatcher stopped; left to their leases",
              {{"deliveries", std::to_string(count)}});
    return;
  }
  batch.handed_off = true;
  queue_.push_back(std::move(batch));
}

void HandoffQueue::Start() {
  thread_ = std::thread([this] { Run(); });
}

void HandoffQueue::Run() {
  while (true) {
    ClaimBatch batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](HandoffQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
            return !q->queue_.empty() || (q->stopping_ && q->reserved_ <= 0);
          },
          this));
      if (queue_.empty()) {  // stopping, and nothing more is coming
        stopped_ = true;
        return;
      }
      batch = std::move(queue_.front());
      queue_.pop_front();
      ++stats_.batches;
      stats_.deliveries += static_cast<int64_t>(batch.deliveries.size());
    }
    dispatch_(batch);
  }
}

void HandoffQueue::Stop(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopping_ = true;
    // The enqueue transactions holding reservations end (handing over or
    // giving back) or the deadline passes.
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](HandoffQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) { return q->reserved_ <= 0; },
                              this),
                          deadline);
    if (reserved_ > 0) {
      log::Warn("enqueue transactions still hold dispatcher slots at shutdown; their deliveries are left to their "
                "leases",
                {{"slots", std::to_string(reserved_)}});
      reserved_ = 0;  // lets the thread end once the queue is empty
    }
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

HandoffQueue::Stats HandoffQueue::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace octo::delivery
