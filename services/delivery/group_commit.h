#pragma once
// Group commit of concurrent Enqueue calls: the batches that arrive within a
// short window are stored by ONE EventStore::EnqueueGroup call (one
// transaction, one commit and fsync for all of them), and each caller gets
// its own answer, as if it had been alone (store.h: a caller's NOT_FOUND or a
// constraint its events break fails only that caller).
//
// The first caller of a group waits until `window` has passed since it
// arrived or `max_events` events are waiting, then stores the group while
// the next callers gather into the next one; groups may commit concurrently
// (each on its own pooled connection). A single batch of `max_events` or more
// goes at once. A window of zero stores every call on its own.
//
// Example:
//   PgEventStore pg(pool);
//   GroupCommitEventStore store(&pg, {absl::Milliseconds(1), 500});
//   DeliveryServiceImpl service(&store);
#include <cstddef>
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
  };

  // Waits for the group the caller opened to fill, takes it and stores it
  // (unlocking `mu_` meanwhile), and hands every call of it its result.
  void LeadGroup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventStore* const store_;
  const GroupCommitOptions options_;
  mutable absl::Mutex mu_;
  std::vector<Call*> pending_ ABSL_GUARDED_BY(mu_);
  std::size_t pending_events_ ABSL_GUARDED_BY(mu_) = 0;
  bool leader_waiting_ ABSL_GUARDED_BY(mu_) = false;
  std::size_t groups_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace octo::delivery
