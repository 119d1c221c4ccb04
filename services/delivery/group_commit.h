#pragma once
// Group commit of concurrent Enqueue calls: the batches that arrive within a
// short window are stored by ONE EventStore::EnqueueGroup call (one
// transaction, one commit and fsync for all of them), and each caller gets
// its own answer, as if it had been alone (store.h: a caller's NOT_FOUND or a
// constraint its events break fails only that caller).
//
// The first caller of a group leads it: it waits until `window` has passed
// or `max_events` events are waiting, then until fewer than `max_concurrent`
// groups are being stored (meanwhile the group keeps growing: when the
// database is the bottleneck, groups get larger instead of queueing for
// connections), then takes the waiting callers in arrival order up to
// `max_events` events (at least one caller) and stores them while the next
// group gathers, led by the first caller left waiting. A window of zero
// stores every call on its own.
//
// Example:
//   PgEventStore pg(pool);
//   GroupCommitEventStore store(&pg, {absl::Milliseconds(1), 500});
//   DeliveryServiceImpl service(&store);
#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/delivery/store.h"

namespace octo::delivery {

struct GroupCommitOptions {
  absl::Duration window = absl::Milliseconds(1);
  std::size_t max_events = 500;
  std::size_t max_concurrent = 4;  // groups being stored at once (>= 1)
};

class GroupCommitEventStore final : public EventStore {
 public:
  // `store` must outlive this one.
  GroupCommitEventStore(EventStore* store, GroupCommitOptions options)
      : store_(store), options_(options) {}

  EnqueueResult Enqueue(const std::vector<EventToStore>& events) override;

  // Groups stored so far (for tests and logs).
  std::size_t groups() const;

 private:
  struct Call {
    const std::vector<EventToStore>* events;
    std::optional<EnqueueResult> result;
    bool lead = false;  // this caller leads the next group
  };

  // Waits for the group to fill and for a slot, takes it and stores it
  // (unlocking `mu_` meanwhile), and hands every call of it its result.
  void LeadGroup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes the first waiting caller the leader if no group is forming.
  void PromoteNextLeader() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool GroupFull() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SlotFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventStore* const store_;
  const GroupCommitOptions options_;
  mutable absl::Mutex mu_;
  std::deque<Call*> pending_ ABSL_GUARDED_BY(mu_);
  std::size_t pending_events_ ABSL_GUARDED_BY(mu_) = 0;
  bool leading_ ABSL_GUARDED_BY(mu_) = false;  // a leader is gathering a group
  std::size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t groups_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace octo::delivery
