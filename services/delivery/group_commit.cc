#include "services/delivery/group_commit.h"

#include <exception>
#include <utility>

namespace octo::delivery {

EnqueueResult GroupCommitEventStore::Enqueue(const std::vector<EventToStore>& events) {
  if (options_.window <= absl::ZeroDuration() || events.empty()) return store_->Enqueue(events);
  Call call{&events, std::nullopt};
  absl::MutexLock lock(&mu_);
  pending_.push_back(&call);
  pending_events_ += events.size();
  if (!leader_waiting_) {
    LeadGroup();
  } else {
    mu_.Await(absl::Condition(
        +[](Call* c) { return c->result.has_value(); }, &call));
  }
  return *std::move(call.result);
}

void GroupCommitEventStore::LeadGroup() {
  leader_waiting_ = true;
  const absl::Time deadline = absl::Now() + options_.window;
  mu_.AwaitWithDeadline(
      absl::Condition(
          +[](GroupCommitEventStore* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return self->pending_events_ >= self->options_.max_events;
          },
          this),
      deadline);
  std::vector<Call*> group = std::move(pending_);
  pending_.clear();
  pending_events_ = 0;
  leader_waiting_ = false;
  ++groups_;

  std::vector<const std::vector<EventToStore>*> batches;
  batches.reserve(group.size());
  for (const Call* c : group) batches.push_back(c->events);
  mu_.Unlock();
  std::vector<EnqueueResult> results;
  try {
    results = store_->EnqueueGroup(batches);
  } catch (const std::exception&) {
    results.clear();  // every caller is answered INTERNAL below
  }
  mu_.Lock();
  for (std::size_t i = 0; i < group.size(); ++i) {
    group[i]->result = i < results.size()
                           ? std::move(results[i])
                           : EnqueueResult(absl::InternalError("enqueue: no answer for a batch"));
  }
}

std::size_t GroupCommitEventStore::groups() const {
  absl::MutexLock lock(&mu_);
  return groups_;
}

}  // namespace octo::delivery
