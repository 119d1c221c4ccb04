#pragma once
// The enqueue transaction's statements after its locks (store.cc runs them):
// which callers' suppliers and connections exist (CheckOwners), then, for
// the events of the callers still standing, idempotency, snapshots and
// diffs, the one webhook resolution, the inserts (EnqueueTxn). Internal to
// the delivery store.
#include <cstddef>
#include <optional>
#include <set>
#include <string_view>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/log.h"
#include "services/delivery/enqueue_handoff.h"
#include "services/delivery/enqueue_plan.h"
#include "services/delivery/enqueue_recordset.h"
#include "services/delivery/enqueue_sql.h"
#include "services/delivery/store.h"

namespace octo::delivery::enqueue {

// A PostgreSQL array literal of values that need no quoting (validated UUIDs
// and event names).
template <typename Strings>
std::string PlainArray(const Strings& values) {
  std::string out = "{";
  for (const auto& value : values) {
    if (out.size() > 1) out.push_back(',');
    out.append(value.data(), value.size());
  }
  out.push_back('}');
  return out;
}

// Which statement was running, for messages and logs.
struct Where {
  const char* operation = "enqueue";
  int index = -1;  // the event, or -1 for the batch
};

std::string Prefix(const Where& where);

// Every event of a group, in order, with its caller's batch and its index
// there (for messages).
struct Flat {
  Events events;
  std::vector<std::size_t> batch_of;
  std::vector<std::size_t> index_in_batch;
};

// The events of `batches`, skipping the batches whose `keep` status is not
// OK (when given).
Flat Flatten(const std::vector<const std::vector<EventToStore>*>& batches,
             const std::vector<absl::Status>* keep = nullptr);

// The suppliers and connections of the group exist (locked FOR KEY SHARE
// until the commit). One status per batch: NOT_FOUND names its first event
// whose supplier or connection is missing.
std::vector<absl::Status> CheckOwners(pqxx::work& txn, const Flat& all, std::size_t batches,
                                      Where& where);

// The statements of one enqueue transaction after the locks and the owner
// checks, over the events of the batches still standing: idempotency, diffs,
// webhooks, inserts. The commit is the caller's.
class EnqueueTxn {
 public:
  // `handoff` (may be null: none) takes the deliveries inserted leased.
  EnqueueTxn(pqxx::work& txn, Where& where, const Flat& flat, EnqueueHandoff* handoff = nullptr)
      : txn_(txn),
        where_(where),
        flat_(flat),
        handoff_(handoff),
        first_(enqueue::FirstOfKey(flat.events)),
        stored_(flat.events.size()) {}

  absl::Status Run() {
    SelectStoredKeys();
    for (std::size_t i = 0; i < flat_.events.size(); ++i) {
      if (first_[i] == i && !stored_[i]) fresh_.push_back(i);
    }
    if (!fresh_.empty()) {
      LockSnapshots();
      std::vector<std::string> diffs;
      int bad = -1;
      absl::Status s = enqueue::ChainDiffs(flat_.events, fresh_, snapshots_, &diffs, &bad);
      if (!s.ok()) {
        where_.index = static_cast<int>(flat_.index_in_batch[bad]);
        log::Error("stored snapshot is not valid JSON", {{"operation", where_.operation}});
        return absl::InternalError(absl::StrCat(Prefix(where_), ": ", s.message()));
      }
      const enqueue::WebhookIndex webhooks = ResolveWebhooks();
      InsertEvents(diffs, webhooks);
      UpsertSnapshots();
      // Last: the resource rows it locks hold back the result writers
      // finishing deliveries of these resources until the commit, so they
      // are taken as late as the transaction allows.
      if (!ordered_.empty()) InsertOrderedDeliveries(ordered_);
    }
    AnswerRepeatedKeys();
    return absl::OkStatus();
  }

  int new_deliveries() const { return new_deliveries_; }
  // Of those, inserted leased for the hand-off.
  int leased_deliveries() const { return handoff_ == nullptr ? 0 : handoff_->leased(); }
  StoredEvent& result(std::size_t i) { return *stored_[i]; }

 private:
  // The first event of each key stands for the later ones; keys stored
  // before answer as they were. The advisory locks keep any other
  // transaction from inserting these keys until the commit.
  void SelectStoredKeys() {
    Recordset keys;
    for (std::size_t i = 0; i < flat_.events.size(); ++i) {
      if (first_[i] != i) continue;
      keys.Row()
          .Int("ord", static_cast<std::int64_t>(i))
          .Text("supplier_id", Lower(flat_.events[i]->supplier_id))
          .Text("idempotency_key", flat_.events[i]->idempotency_key);
    }
    where_.operation = enqueue::kSelectEvents.name;
    for (const pqxx::row& row : txn_.exec_prepared(enqueue::kSelectEvents.name, keys.Finish())) {
      StoredEvent s;
      s.event_id = row[1].as<std::string>();
      s.delivery_count = row[2].as<int>();
      s.duplicate = true;
      stored_.at(row[0].as<std::size_t>()) = std::move(s);
    }
  }

  // The stored snapshots of the new events' resources, locked until the
  // commit; an entry (maybe empty) for every resource.
  void LockSnapshots() {
    Recordset ids;
    for (std::size_t i : fresh_) {
      enqueue::ResourceId id = enqueue::ResourceOf(*flat_.events[i]);
      if (!snapshots_.emplace(id, enqueue::Snapshot{}).second) continue;
      ids.Row()
          .Text("supplier_id", std::get<0>(id))
          .Text("resource_kind", std::get<1>(id))
          .Text("resource_key", std::get<2>(id));
    }
    where_.operation = enqueue::kLockSnapshots.name;
    for (const pqxx::row& row : txn_.exec_prepared(enqueue::kLockSnapshots.name, ids.Finish())) {
      const auto supplier = row[0].as<std::string>();
      const auto kind = row[1].as<std::string>();
      const auto key = row[2].as<std::string>();
      enqueue::Snapshot& s = snapshots_.at(enqueue::ResourceId{supplier, kind, key});
      s.exists = true;
      s.stored_text = row[3].as<std::string>();
      s.resource = s.stored_text;
      s.occurred_at = row[4].as<std::int64_t>();
    }
  }

  // The one resolution of the new events' webhooks (kResolveWebhooks).
  enqueue::WebhookIndex ResolveWebhooks() {
    std::set<std::string> suppliers;
    std::set<std::string_view> event_names;  // validated: no quoting needed
    for (std::size_t i : fresh_) {
      suppliers.insert(Lower(flat_.events[i]->supplier_id));
      event_names.insert(flat_.events[i]->event);
    }
    std::vector<enqueue::WebhookRow> rows;
    where_.operation = enqueue::kResolveWebhooks.name;
    for (const pqxx::row& row : txn_.exec_prepared(enqueue::kResolveWebhooks.name,
                                                   PlainArray(suppliers), PlainArray(event_names))) {
      rows.push_back(enqueue::WebhookRow{
          row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
          row[3].as<std::string>(), row[4].as<bool>(),
          absl::StrSplit(row[5].as<std::string>(), ',', absl::SkipEmpty()), row[6].as<bool>()});
    }
    return enqueue::WebhookIndex(std::move(rows));
  }

  // A delivery of an ordered webhook, inserted after the events.
  struct OrderedDelivery {
    std::string event_id;
    const enqueue::WebhookRow* webhook;
    const EventToStore* event;
  };

  void InsertEvents(const std::vector<std::string>& diffs, const enqueue::WebhookIndex& webhooks);
  // An unordered delivery of InsertEvents, before it is known whether it
  // is handed off.
  struct Unordered {
    const enqueue::WebhookRow* webhook;
    std::size_t index;       // of its event in flat_ (and stored_: the event's id)
    const DateRange* range;  // availability: its publish's dates
  };
  // Leases the first of `deliveries` the hand-off has slots for (leased
  // first in the arrays: ids for those only) and fills the arrays.
  void SplitForHandoff(const std::vector<Unordered>& deliveries, const std::vector<std::string>& diffs,
                       std::vector<EnqueueHandoff::Leased>* leased, std::string* events, std::string* webhooks,
                       std::string* ids);
  void InsertOrderedDeliveries(const std::vector<OrderedDelivery>& deliveries);
  void UpsertSnapshots();

  // A later event of a key answers as its first.
  void AnswerRepeatedKeys() {
    for (std::size_t i = 0; i < stored_.size(); ++i) {
      if (first_[i] == i) continue;
      StoredEvent s = *stored_[first_[i]];
      s.duplicate = true;
      stored_[i] = std::move(s);
    }
  }

  pqxx::work& txn_;
  Where& where_;
  const Flat& flat_;
  EnqueueHandoff* const handoff_;
  const std::vector<std::size_t> first_;
  std::vector<std::optional<StoredEvent>> stored_;
  std::vector<std::size_t> fresh_;  // the events to insert, in request order
  std::vector<OrderedDelivery> ordered_;  // of ordered webhooks, inserted after the snapshots
  enqueue::Snapshots snapshots_;
  int new_deliveries_ = 0;
};

}  // namespace octo::delivery::enqueue
