#pragma once
// Hand-off: deliveries this process enqueues, sent by its own dispatcher
// without a claim (docs/delivery.md, "Hand-off at enqueue").
//
// The enqueue transaction (store.cc) reserves dispatcher slots without
// blocking (Reserve), inserts that many of its unordered deliveries already
// leased to this process, exactly as a claim would lease them
// (lease_expires_at, claimed_attempt = 1), and after the commit hands them
// over in memory as a ClaimBatch (Dispatch) and gives back the slots it did
// not use (Unreserve). The rest of the deliveries are inserted unleased and
// claimed as before. A process that dies after the commit leaves leases that
// run out: the next claim records the lost attempt as `interrupted`, as
// after any claim.
//
// Example (store side):
//   const int slots = handoff->Reserve(wanted);   // before the insert
//   ... insert `slots` deliveries leased until now + handoff->lease() ...
//   commit; handoff->Dispatch(std::move(batch));  // batch.deliveries.size() <= slots
//   handoff->Unreserve(slots - batch.deliveries.size());
#include "absl/time/time.h"
#include "services/delivery/dispatch_store.h"

namespace octo::delivery {

// Implemented by the dispatcher (Dispatcher::handoff). Thread-safe.
class DeliveryHandoff {
 public:
  virtual ~DeliveryHandoff() = default;
  // Reserves up to `wanted` of the dispatcher's free slots without waiting;
  // returns how many (0 while stopping, or when none is free).
  virtual int Reserve(int wanted) = 0;
  // Gives back `count` reserved slots that carry no delivery.
  virtual void Unreserve(int count) = 0;
  // Sends a committed batch of deliveries leased at insert (each holds one
  // reserved slot until its result is written). Returns at once.
  virtual void Dispatch(ClaimBatch batch) = 0;
  // The lease the deliveries are inserted with (a claim's: request timeout
  // + lease margin).
  virtual absl::Duration lease() const = 0;
  // The dispatcher's clock: ClaimBatch::claimed_at is read from it.
  virtual absl::Time Now() const = 0;
};

}  // namespace octo::delivery
