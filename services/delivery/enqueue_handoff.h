#pragma once
// The hand-off's part of one enqueue transaction (handoff.h; docs/delivery.md,
// "Hand-off at enqueue"): the dispatcher slots it holds, which of its
// unordered deliveries are inserted leased, and the ClaimBatch it hands
// over after the commit. Internal to the delivery store (store.cc,
// enqueue_txn.cc).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/time/time.h"
#include "services/delivery/enqueue_plan.h"
#include "services/delivery/handoff.h"
#include "services/delivery/notification_ranges.h"
#include "services/delivery/store.h"

namespace octo::delivery::enqueue {

class EnqueueHandoff {
 public:
  // `target` null: nothing is handed off (no dispatcher, or --handoff=false).
  explicit EnqueueHandoff(DeliveryHandoff* target) : target_(target) {}
  EnqueueHandoff(const EnqueueHandoff&) = delete;
  EnqueueHandoff& operator=(const EnqueueHandoff&) = delete;
  // Slots still held are given back.
  ~EnqueueHandoff() { Finish(false); }

  // A run of the transaction begins (again, after an abort): what an
  // earlier run built is dropped; the slots stay reserved for this one.
  void Begin();
  // How many of `wanted` deliveries this run may insert leased: the slots
  // held, topped up without waiting (ClaimScheduler::Reserve).
  int Slots(int wanted);
  int64_t lease_ms() const { return target_ == nullptr ? 0 : absl::ToInt64Milliseconds(target_->lease()); }

  // One leased delivery of the insert (its id made by the caller), and the
  // event it carries (`flat_index`: its place in the group, for `diff`).
  struct Leased {
    std::string delivery_id;
    std::string event_id;
    std::string webhook_id;
    const EventToStore* event = nullptr;
    const std::string* diff = nullptr;
    const DateRange* range = nullptr;  // availability: its publish's dates
  };
  // Builds the batch from the insert's returned rows (kInsertEvents: one per
  // handed-off webhook, with the lease token and created_at).
  void Build(const std::vector<Leased>& leased, const pqxx::result& webhooks);
  // How many deliveries the run leased (whether or not their webhook came back).
  int leased() const { return leased_; }

  // After the transaction. Committed: the batch goes to the dispatcher and
  // the unused slots come back. Otherwise (failed, or the commit in doubt:
  // leased rows may exist, and their leases cover them until a claim takes
  // them) every slot comes back. Idempotent.
  void Finish(bool committed);

 private:
  DeliveryHandoff* const target_;
  int reserved_ = 0;
  bool reserved_once_ = false;  // the scheduler was asked (once per enqueue)
  int leased_ = 0;
  ClaimBatch batch_;
};

}  // namespace octo::delivery::enqueue
