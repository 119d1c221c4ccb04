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
  PromoteNextLeader();
  // The first caller with no group forming leads one; a caller left behind
  // by a full group leads the next when it is first in line.
  mu_.Await(absl::Condition(
      +[](Call* c) { return c->result.has_value() || c->lead; }, &call));
  if (!call.result.has_value()) LeadGroup();
  return *std::move(call.result);
}

void GroupCommitEventStore::LeadGroup() {
  // Gather: the window, or enough events. Then wait for a free slot: while
  // every slot's transaction runs, the group keeps growing (the database is
  // the bottleneck, so larger groups are what it needs).
  const absl::Time deadline = absl::Now() + options_.window;
  mu_.AwaitWithDeadline(absl::Condition(this, &GroupCommitEventStore::GroupFull), deadline);
  mu_.Await(absl::Condition(this, &GroupCommitEventStore::SlotFree));

  // Take callers in arrival order up to max_events (at least one).
  std::vector<Call*> group;
  std::size_t events = 0;
  while (!pending_.empty() &&
         (group.empty() || events + pending_.front()->events->size() <= options_.max_events)) {
    events += pending_.front()->events->size();
    pending_events_ -= pending_.front()->events->size();
    group.push_back(pending_.front());
    pending_.pop_front();
  }
  leading_ = false;
  PromoteNextLeader();
  ++in_flight_;
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
  --in_flight_;
  for (std::size_t i = 0; i < group.size(); ++i) {
    group[i]->result = i < results.size()
                           ? std::move(results[i])
                           : EnqueueResult(absl::InternalError("enqueue: no answer for a batch"));
  }
  PromoteNextLeader();
}

void GroupCommitEventStore::PromoteNextLeader() {
  if (leading_ || pending_.empty()) return;
  leading_ = true;
  pending_.front()->lead = true;
}

bool GroupCommitEventStore::GroupFull() const { return pending_events_ >= options_.max_events; }

bool GroupCommitEventStore::SlotFree() const { return in_flight_ < options_.max_concurrent; }

std::size_t GroupCommitEventStore::groups() const {
  absl::MutexLock lock(&mu_);
  return groups_;
}

}  // namespace octo::delivery
