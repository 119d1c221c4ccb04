#pragma once
// Storing published events: the accepting half of the delivery engine
// (docs/delivery.md, "Idempotency", "Diff").
//
// EventStore::Enqueue writes a batch of validated events in ONE transaction,
// with a fixed number of set-based statements whatever the batch size: the
// keys stored before answer as they were (looked up under the key's
// advisory lock: a concurrent duplicate waits for the first transaction
// and then answers as a duplicate; a key is remembered while its event is
// kept, docs/delivery.md "Retention"; a key repeated in the batch answers as
// its first occurrence), the snapshots of the resources are locked and the
// diffs computed in request order (a later event of a resource diffs against
// an earlier one of the same batch), then one statement inserts the new
// events and one `deliveries` row per webhook due now, one more upserts the
// snapshots; then `NOTIFY octo_deliveries` and commit. With a hand-off
// (SetHandoff), unordered deliveries are inserted leased to this process's
// dispatcher as far as it has free slots and handed to it after the commit
// (handoff.h); NOTIFY only when some delivery was not handed off. A duplicate writes
// nothing and answers the original {event_id, delivery_count} with
// duplicate = true. The transaction first takes advisory locks on the
// batch's idempotency keys and resources in one global order, so concurrent
// batches that share some serialise instead of deadlocking (and what the
// transaction read about them stays true until the commit).
//
// The webhooks are resolved here, once, inside the transaction: the enabled
// webhooks of the event's supplier that want the event (only those of the
// event's connection when it names one), locked FOR KEY SHARE until the
// commit so none can be deleted before its deliveries are stored. A webhook
// disabled or deleted before the statement is not a receiver; an event no
// webhook wants is stored all the same (delivery_count 0). delivery_count is
// the number of deliveries created.
//
// EnqueueGroup stores the batches of several callers (group commit,
// group_commit.h) in ONE transaction and answers each batch on its own: a
// batch whose supplier or connection does not exist gets its NOT_FOUND and
// the others are stored; if the shared transaction fails on something one
// batch brought (a constraint), each batch is run again in a transaction of
// its own, so one caller's bad input never fails another's events. Keys and
// diffs work across the batches of a group as within one batch (in order).
//
// Status codes:
//   NOT_FOUND           an event's supplier, or its connection (for this
//                       supplier), does not exist: "events[i].supplier_id: ...".
//   INVALID_ARGUMENT    a value the database constraints refuse (validation
//                       should have caught it): "enqueue: ..." (the batch).
//   ABORTED             a deadlock or serialization failure, still there after
//                       the bounded reruns; retry the whole batch.
//   UNAVAILABLE         the database is unreachable (nothing was committed);
//                       retrying with the same keys is safe.
//   UNKNOWN             the connection was lost during the commit: the batch
//                       may or may not be stored (IsCommitInDoubt). Never
//                       rerun here; publishing again with the same keys is
//                       safe (a key stores at most once).
//   INTERNAL            anything else.
// The codes are pg_status.h's one table, run by RunInTransaction.
// Messages carry the operation, index and SQLSTATE, never stored values.
//
// Example:
//   PgEventStore store(pool.get());
//   absl::StatusOr<std::vector<StoredEvent>> r = store.Enqueue(events);
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/pg_pool.h"
#include "services/delivery/event_validation.h"
#include "services/delivery/handoff.h"

namespace octo::delivery {

// One validated event. The views must outlive the
// Enqueue call (they usually point into the gRPC request).
struct EventToStore {
  std::string_view supplier_id;
  std::string_view idempotency_key;
  std::string_view connection_id;             // "" = every connection of the supplier
  std::string_view event;                     // booking_update, ...
  std::string_view resource_json;             // stored byte for byte (whitespace around it dropped)
  std::optional<std::string_view> diff_json;  // the publisher's diff, if any
  std::string_view product_id;                // availability_update only
  std::string_view option_id;
  const ValidEvent* valid = nullptr;          // from ValidateEvent; not null
};

struct StoredEvent {
  std::string event_id;
  int delivery_count = 0;
  bool duplicate = false;
};

using EnqueueResult = absl::StatusOr<std::vector<StoredEvent>>;

// Implementations are thread-safe.
class EventStore {
 public:
  virtual ~EventStore() = default;
  // One result per event, in order. See the file comment.
  virtual EnqueueResult Enqueue(const std::vector<EventToStore>& events) = 0;
  // One result per batch, in order, each as Enqueue would answer it alone.
  // This default stores each batch on its own; PgEventStore stores them in
  // one transaction.
  virtual std::vector<EnqueueResult> EnqueueGroup(
      const std::vector<const std::vector<EventToStore>*>& batches) {
    std::vector<EnqueueResult> results;
    results.reserve(batches.size());
    for (const auto* batch : batches) results.push_back(Enqueue(*batch));
    return results;
  }
};

// EventStore on PostgreSQL (libpqxx), over services/schema/migrations.
// Statements are prepared once per pooled connection under constant names.
class PgEventStore final : public EventStore {
 public:
  // `pool` must outlive the store; the store registers its statements
  // with it. A transaction that hits a deadlock or a serialization failure
  // is rerun (RunInTransaction), up to `max_attempts` runs in all.
  explicit PgEventStore(PgPool* pool, int max_attempts = 5);

  EnqueueResult Enqueue(const std::vector<EventToStore>& events) override;
  std::vector<EnqueueResult> EnqueueGroup(
      const std::vector<const std::vector<EventToStore>*>& batches) override;

  // Hand-off (handoff.h): from now on, unordered deliveries are inserted
  // leased to `handoff` (this process's dispatcher) as far as it has free
  // slots, and handed to it after the commit; null: none (the default).
  // `handoff` must outlive the store's use of it.
  void SetHandoff(DeliveryHandoff* handoff) { handoff_.store(handoff, std::memory_order_release); }

 private:
  // The group in one transaction (RunInTransaction: rerun while it aborts,
  // and once on a new connection lost before the commit). A status here is
  // the whole group's.
  absl::StatusOr<std::vector<EnqueueResult>> RunGroup(
      const std::vector<const std::vector<EventToStore>*>& batches);

  PgPool* const pool_;
  const int max_attempts_;
  const absl::Status registered_;  // of the enqueue statements with pool_
  std::atomic<DeliveryHandoff*> handoff_{nullptr};
};

// The channel `NOTIFY`ed after a transaction that created deliveries.
inline constexpr char kDeliveriesChannel[] = "octo_deliveries";

}  // namespace octo::delivery
