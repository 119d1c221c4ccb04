#include "services/delivery/store.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <pqxx/pqxx>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/uuid.h"
#include "services/delivery/enqueue_plan.h"
#include "services/delivery/enqueue_recordset.h"
#include "services/delivery/enqueue_sql.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::delivery {
namespace {

using enqueue::Events;
using enqueue::Lower;
using enqueue::Recordset;
using enqueue::Statement;

void PrepareAll(pqxx::connection& conn) {
  for (const Statement& s : enqueue::kStatements) conn.prepare(s.name, s.sql);
}

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

// A 64-bit advisory lock key for a row identity (hash collisions only make
// two batches wait for each other needlessly).
std::int64_t LockKey(std::initializer_list<std::string_view> parts) {
  std::string text;
  for (std::string_view part : parts) {
    text.append(part.data(), part.size());
    text.push_back('\0');
  }
  const std::string digest = crypto::Sha256(text);
  std::uint64_t key = 0;
  for (int i = 0; i < 8; ++i) key = (key << 8) | static_cast<unsigned char>(digest[i]);
  return static_cast<std::int64_t>(key);
}

// The sorted, distinct lock keys of a batch, as a PostgreSQL array literal.
std::string LockKeys(const Events& events) {
  std::set<std::int64_t> keys;
  for (const EventToStore* e : events) {
    const std::string supplier = Lower(e->supplier_id);
    keys.insert(LockKey({"event", supplier, e->idempotency_key}));
    keys.insert(LockKey(
        {"snapshot", supplier, payload::ResourceKindName(e->valid->kind), e->valid->resource_key}));
  }
  std::string out = "{";
  for (std::int64_t key : keys) {
    if (out.size() > 1) out.push_back(',');
    out += std::to_string(key);
  }
  out.push_back('}');
  return out;
}

// Which statement was running, for messages and logs.
struct Where {
  const char* operation = "enqueue";
  int index = -1;  // the event, or -1 for the batch
};

std::string Prefix(const Where& where) {
  return where.index < 0 ? std::string("enqueue") : absl::StrCat("events[", where.index, "]");
}

absl::Status MapException(const Where& where, const std::exception& e) {
  const std::string prefix = Prefix(where);
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    if (absl::StartsWith(state, "40")) {
      return absl::AbortedError(
          absl::StrCat(prefix, ": transaction aborted (SQLSTATE ", state, "), retry"));
    }
    // A key inserted despite the key locks (see kInsertEvents): rerun.
    if (state == "23505" && std::string_view(where.operation) == enqueue::kInsertEvents.name) {
      log::Warn("enqueue: an idempotency key appeared meanwhile; rerunning",
                {{"operation", where.operation}});
      return absl::AbortedError(absl::StrCat(prefix, ": an idempotency key appeared meanwhile, retry"));
    }
    // A value the validation let through but the schema refuses.
    if (absl::StartsWith(state, "23") || absl::StartsWith(state, "22")) {
      log::Warn("event rejected by a database constraint",
                {{"operation", where.operation}, {"sqlstate", state}});
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, ": rejected by a database constraint (SQLSTATE ", state, ")"));
    }
    if (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P") ||
        absl::StartsWith(state, "53")) {
      return absl::UnavailableError(
          absl::StrCat(prefix, ": database unavailable (SQLSTATE ", state, ")"));
    }
    // Class 42 messages name SQL, not data: worth logging whole. Others may
    // quote row values, so only the SQLSTATE is logged.
    if (absl::StartsWith(state, "42")) {
      log::Error("database statement error",
                 {{"operation", where.operation}, {"sqlstate", state}, {"error", e.what()}});
    } else {
      log::Error("database error", {{"operation", where.operation}, {"sqlstate", state}});
    }
    return absl::InternalError(absl::StrCat(prefix, ": database error (SQLSTATE ", state, ")"));
  }
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(
        "enqueue: the connection was lost during the commit; its outcome is unknown: publish "
        "again with the same idempotency keys");
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat(prefix, ": database connection lost"));
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return absl::AbortedError(absl::StrCat(prefix, ": transaction aborted, retry"));
  }
  return StatusFromException(where.operation, e);
}

// Every event of a group, in order, with its caller's batch and its index
// there (for messages).
struct Flat {
  Events events;
  std::vector<std::size_t> batch_of;
  std::vector<std::size_t> index_in_batch;
};

Flat Flatten(const std::vector<const std::vector<EventToStore>*>& batches,
             const std::vector<absl::Status>* keep = nullptr) {
  Flat flat;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    if (keep != nullptr && !(*keep)[b].ok()) continue;
    for (std::size_t i = 0; i < batches[b]->size(); ++i) {
      flat.events.push_back(&(*batches[b])[i]);
      flat.batch_of.push_back(b);
      flat.index_in_batch.push_back(i);
    }
  }
  return flat;
}

// The suppliers and connections of the group exist (locked FOR KEY SHARE
// until the commit). One status per batch: NOT_FOUND names its first event
// whose supplier or connection is missing.
std::vector<absl::Status> CheckOwners(pqxx::work& txn, const Flat& all, std::size_t batches,
                                      Where& where) {
  std::set<std::string> supplier_ids;
  std::set<std::string> connection_ids;
  for (const EventToStore* e : all.events) {
    supplier_ids.insert(Lower(e->supplier_id));
    if (!e->connection_id.empty()) connection_ids.insert(Lower(e->connection_id));
  }
  where.operation = enqueue::kLockSuppliers.name;
  std::set<std::string> found_suppliers;
  for (const pqxx::row& row :
       txn.exec_prepared(enqueue::kLockSuppliers.name, PlainArray(supplier_ids))) {
    found_suppliers.insert(row[0].as<std::string>());
  }
  std::map<std::string, std::string> connection_supplier;
  if (!connection_ids.empty()) {
    where.operation = enqueue::kLockConnections.name;
    for (const pqxx::row& row :
         txn.exec_prepared(enqueue::kLockConnections.name, PlainArray(connection_ids))) {
      connection_supplier.emplace(row[0].as<std::string>(), row[1].as<std::string>());
    }
  }
  std::vector<absl::Status> status(batches);
  for (std::size_t n = 0; n < all.events.size(); ++n) {
    absl::Status& s = status[all.batch_of[n]];
    if (!s.ok()) continue;
    const EventToStore& e = *all.events[n];
    const std::string supplier = Lower(e.supplier_id);
    if (found_suppliers.count(supplier) == 0) {
      s = absl::NotFoundError(
          absl::StrCat("events[", all.index_in_batch[n], "].supplier_id: no such supplier"));
      continue;
    }
    if (e.connection_id.empty()) continue;
    auto it = connection_supplier.find(Lower(e.connection_id));
    if (it == connection_supplier.end() || it->second != supplier) {
      s = absl::NotFoundError(absl::StrCat("events[", all.index_in_batch[n],
                                           "].connection_id: no such connection of this supplier"));
    }
  }
  return status;
}

// The statements of one enqueue transaction after the locks and the owner
// checks, over the events of the batches still standing: idempotency, diffs,
// webhooks, inserts. The commit is the caller's.
class EnqueueTxn {
 public:
  EnqueueTxn(pqxx::work& txn, Where& where, const Flat& flat)
      : txn_(txn),
        where_(where),
        flat_(flat),
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
    }
    AnswerRepeatedKeys();
    return absl::OkStatus();
  }

  int new_deliveries() const { return new_deliveries_; }
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
      rows.push_back(enqueue::WebhookRow{row[0].as<std::string>(), row[1].as<std::string>(),
                                         row[2].as<std::string>(), row[3].as<std::string>()});
    }
    return enqueue::WebhookIndex(std::move(rows));
  }

  void InsertEvents(const std::vector<std::string>& diffs, const enqueue::WebhookIndex& webhooks);
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
  const std::vector<std::size_t> first_;
  std::vector<std::optional<StoredEvent>> stored_;
  std::vector<std::size_t> fresh_;  // the events to insert, in request order
  enqueue::Snapshots snapshots_;
  int new_deliveries_ = 0;
};

// The new events and their deliveries: one statement, no joins (the ids are
// made here, the webhooks matched in C++).
void EnqueueTxn::InsertEvents(const std::vector<std::string>& diffs,
                              const enqueue::WebhookIndex& webhooks) {
  Recordset rows;
  std::string delivery_events = "{";
  std::string delivery_webhooks = "{";
  for (std::size_t i : fresh_) {
    const EventToStore& e = *flat_.events[i];
    const ValidEvent& v = *e.valid;
    const std::string event_id = NewUuidV4();
    const std::vector<const enqueue::WebhookRow*> receivers = webhooks.Receivers(e);
    for (const enqueue::WebhookRow* webhook : receivers) {
      if (delivery_events.size() > 1) {
        delivery_events.push_back(',');
        delivery_webhooks.push_back(',');
      }
      delivery_events += event_id;
      delivery_webhooks += webhook->id;
    }
    rows.Row()
        .Text("id", event_id)
        .Text("supplier_id", Lower(e.supplier_id))
        .Text("idempotency_key", e.idempotency_key)
        .TextOrNull("connection_id", Lower(e.connection_id))
        .Text("event", e.event)
        .Text("resource_kind", payload::ResourceKindName(v.kind))
        .Text("resource_key", v.resource_key)
        .Json("resource", e.resource_json)
        .Json("localized", v.localized_json)
        .Json("diff", diffs[i])
        .Bool("diff_supplied", e.diff_json.has_value())
        .TextOrNull("product_id", e.product_id)
        .TextOrNull("option_id", e.option_id)
        .Int("occurred_at", v.occurred_at_micros)
        .Int("delivery_count", static_cast<std::int64_t>(receivers.size()));
    StoredEvent stored;
    stored.event_id = event_id;
    stored.delivery_count = static_cast<int>(receivers.size());
    new_deliveries_ += stored.delivery_count;
    stored_[i] = std::move(stored);
  }
  delivery_events.push_back('}');
  delivery_webhooks.push_back('}');
  where_.operation = enqueue::kInsertEvents.name;
  txn_.exec_prepared(enqueue::kInsertEvents.name, rows.Finish(), delivery_events,
                     delivery_webhooks);
}

// The last state of each resource the batch changed.
void EnqueueTxn::UpsertSnapshots() {
  Recordset changed;
  for (const auto& [id, s] : snapshots_) {
    if (!s.changed) continue;
    changed.Row()
        .Text("supplier_id", std::get<0>(id))
        .Text("resource_kind", std::get<1>(id))
        .Text("resource_key", std::get<2>(id))
        .Json("resource", s.resource)
        .Int("occurred_at", s.occurred_at);
  }
  if (changed.empty()) return;
  where_.operation = enqueue::kUpsertSnapshots.name;
  txn_.exec_prepared0(enqueue::kUpsertSnapshots.name, changed.Finish());
}

bool AllEmpty(const std::vector<const std::vector<EventToStore>*>& batches) {
  return std::all_of(batches.begin(), batches.end(), [](const auto* b) { return b->empty(); });
}

}  // namespace

EnqueueResult PgEventStore::Enqueue(const std::vector<EventToStore>& events) {
  return std::move(EnqueueGroup({&events})[0]);
}

std::vector<EnqueueResult> PgEventStore::EnqueueGroup(
    const std::vector<const std::vector<EventToStore>*>& batches) {
  absl::StatusOr<std::vector<EnqueueResult>> group = RunWithRetries(batches);
  if (group.ok()) return *std::move(group);
  std::vector<EnqueueResult> results;
  results.reserve(batches.size());
  // The database is unreachable or the commit in doubt: every caller's
  // answer, and safe for each to retry. Anything else may be one batch's
  // doing: each runs again alone, so it only fails its own caller.
  if (batches.size() == 1 || absl::IsUnavailable(group.status())) {
    results.assign(batches.size(), group.status());
    return results;
  }
  log::Info("enqueue group failed; storing its batches one by one",
            {{"batches", std::to_string(batches.size())},
             {"error", std::string(group.status().message())}});
  for (const auto* batch : batches) {
    absl::StatusOr<std::vector<EnqueueResult>> alone = RunWithRetries({batch});
    results.push_back(alone.ok() ? std::move((*alone)[0]) : EnqueueResult(alone.status()));
  }
  return results;
}

absl::StatusOr<std::vector<EnqueueResult>> PgEventStore::RunWithRetries(
    const std::vector<const std::vector<EventToStore>*>& batches) {
  thread_local absl::BitGen bitgen;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::vector<EnqueueResult>> result = RunOnce(batches);
    if (result.ok() || !absl::IsAborted(result.status()) || attempt >= max_attempts_) {
      return result;
    }
    log::Info(
        "enqueue transaction aborted; retrying",
        {{"attempt", std::to_string(attempt)}, {"error", std::string(result.status().message())}});
    // 10 ms, 20 ms, 40 ms, ... with jitter, so that two batches that
    // deadlocked on each other do not meet again.
    const double base_ms = 10.0 * (1 << std::min(attempt - 1, 6));
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(
        absl::Uniform(bitgen, 0.5 * base_ms, 1.5 * base_ms)));
  }
}

absl::StatusOr<std::vector<EnqueueResult>> PgEventStore::RunOnce(
    const std::vector<const std::vector<EventToStore>*>& batches) {
  std::vector<EnqueueResult> results(batches.size(), std::vector<StoredEvent>{});
  if (AllEmpty(batches)) return results;
  absl::StatusOr<PgPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  Where where;
  const absl::Time start = absl::Now();
  try {
    PrepareAll(lease->conn());
    pqxx::work txn(lease->conn(), "enqueue");
    const Flat all = Flatten(batches);
    where.operation = enqueue::kLockKeys.name;
    txn.exec_prepared(enqueue::kLockKeys.name, LockKeys(all.events));
    const std::vector<absl::Status> owners = CheckOwners(txn, all, batches.size(), where);
    const Flat live = Flatten(batches, &owners);
    EnqueueTxn run(txn, where, live);
    if (!live.events.empty()) {
      if (absl::Status s = run.Run(); !s.ok()) return s;
    }
    where = Where{};
    if (run.new_deliveries() > 0) {
      where.operation = "notify";
      txn.exec0(absl::StrCat("NOTIFY ", kDeliveriesChannel));
    }
    where.operation = "commit";
    txn.commit();
    pool_->RecordOperation("enqueue", absl::Now() - start, true);
    for (std::size_t b = 0; b < batches.size(); ++b) {
      if (!owners[b].ok()) results[b] = owners[b];
    }
    for (std::size_t n = 0; n < live.events.size(); ++n) {
      results[live.batch_of[n]]->push_back(std::move(run.result(n)));
    }
    return results;
  } catch (const std::exception& e) {
    pool_->RecordOperation("enqueue", absl::Now() - start, false);
    if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
        dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr || !lease->conn().is_open()) {
      lease->MarkBroken();
    }
    return MapException(where, e);
  }
}

}  // namespace octo::delivery
