#include "services/delivery/store.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <map>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include <boost/json/parse.hpp>
#include <pqxx/pqxx>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/strings.h"
#include "services/delivery/payload/json_diff.h"
#include "services/delivery/payload/json_text.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::delivery {
namespace {

struct Statement {
  const char* name;
  const char* sql;
};

// clang-format off
#define OCTO_TIMESTAMP(param) "('epoch'::timestamptz + " param "::bigint * interval '1 microsecond')"
// clang-format on

// Transaction-scoped advisory locks on what the batch writes (its
// idempotency keys and resources), taken in ascending order: two batches
// that share keys or resources serialise instead of deadlocking on each
// other's rows (which PostgreSQL only detects after deadlock_timeout).
constexpr Statement kLockKeys{
    "enqueue_lock_keys", "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k"};

// The suppliers and connections of the batch, locked FOR KEY SHARE so that
// they cannot be deleted before the commit (the rows below reference them).
constexpr Statement kLockSuppliers{
    "enqueue_lock_suppliers",
    "SELECT id::text FROM suppliers WHERE id = ANY($1::uuid[]) FOR KEY SHARE"};
constexpr Statement kLockConnections{
    "enqueue_lock_connections",
    "SELECT id::text, supplier_id::text FROM connections WHERE id = ANY($1::uuid[]) "
    "FOR KEY SHARE"};

// The event and its deliveries in one statement. `targets` keeps only the
// webhooks that exist, are enabled, want this event and belong to the
// supplier (and connection); FOR KEY SHARE keeps them until the commit (a
// webhook deleted meanwhile is skipped, not a foreign-key error). A duplicate
// key inserts nothing and returns no row.
constexpr Statement kInsertEvent{
    "enqueue_insert_event",
    "WITH targets AS ("
    "  SELECT w.id FROM webhooks w JOIN connections c ON c.id = w.connection_id"
    "  WHERE w.id = ANY($14::uuid[]) AND c.supplier_id = $1::uuid"
    "    AND ($3::uuid IS NULL OR w.connection_id = $3::uuid)"
    "    AND w.event = $4 AND w.status = 'enabled'"
    "  FOR KEY SHARE OF w), "
    "inserted AS ("
    "  INSERT INTO events (supplier_id, idempotency_key, connection_id, event, resource_kind,"
    "    resource_key, resource, localized, diff, diff_supplied, product_id, option_id,"
    "    occurred_at, delivery_count)"
    "  SELECT $1::uuid, $2, $3::uuid, $4, $5, $6, $7::json, $8::json, $9::json, $10::boolean,"
    "    $11, $12, " OCTO_TIMESTAMP("$13") ", count(*)::integer FROM targets"
    "  ON CONFLICT (supplier_id, idempotency_key) DO NOTHING"
    "  RETURNING id, delivery_count), "
    "queued AS ("
    "  INSERT INTO deliveries (event_id, webhook_id)"
    "  SELECT inserted.id, targets.id FROM inserted CROSS JOIN targets) "
    "SELECT id::text, delivery_count FROM inserted"};
constexpr Statement kSelectEvent{"enqueue_select_event",
                                 "SELECT id::text, delivery_count FROM events "
                                 "WHERE supplier_id = $1::uuid AND idempotency_key = $2"};

// First event of a resource: its snapshot. Returns a row only when inserted.
constexpr Statement kInsertSnapshot{
    "enqueue_insert_snapshot",
    "INSERT INTO resource_snapshots (supplier_id, resource_kind, resource_key, resource,"
    "  occurred_at) VALUES ($1::uuid, $2, $3, $4::json, " OCTO_TIMESTAMP("$5") ") "
    "ON CONFLICT (supplier_id, resource_kind, resource_key) DO NOTHING RETURNING 1"};
// The publisher supplied the diff: only keep the snapshot current.
constexpr Statement kUpsertSnapshot{
    "enqueue_upsert_snapshot",
    "INSERT INTO resource_snapshots AS s (supplier_id, resource_kind, resource_key, resource,"
    "  occurred_at) VALUES ($1::uuid, $2, $3, $4::json, " OCTO_TIMESTAMP("$5") ") "
    "ON CONFLICT (supplier_id, resource_kind, resource_key) DO UPDATE"
    "  SET resource = EXCLUDED.resource, occurred_at = EXCLUDED.occurred_at, updated_at = now()"
    "  WHERE s.occurred_at <= EXCLUDED.occurred_at"};
constexpr Statement kLockSnapshot{
    "enqueue_lock_snapshot",
    "SELECT resource::text FROM resource_snapshots "
    "WHERE supplier_id = $1::uuid AND resource_kind = $2 AND resource_key = $3 FOR UPDATE"};
// The computed diff onto the event; the snapshot replaced unless the event
// is older than it.
constexpr Statement kReplaceSnapshot{
    "enqueue_replace_snapshot",
    "WITH replaced AS ("
    "  UPDATE resource_snapshots SET resource = $4::json, occurred_at = " OCTO_TIMESTAMP("$5") ","
    "    updated_at = now()"
    "  WHERE supplier_id = $1::uuid AND resource_kind = $2 AND resource_key = $3"
    "    AND occurred_at <= " OCTO_TIMESTAMP("$5") ") "
    "UPDATE events SET diff = $6::json WHERE id = $7::uuid"};

constexpr std::array kStatements = {kLockKeys,       kLockSuppliers, kLockConnections,
                                    kInsertEvent,    kSelectEvent,   kInsertSnapshot,
                                    kUpsertSnapshot, kLockSnapshot,  kReplaceSnapshot};

void PrepareAll(pqxx::connection& conn) {
  for (const Statement& s : kStatements) conn.prepare(s.name, s.sql);
}

// A PostgreSQL array literal of UUIDs (validated: no quoting needed).
template <typename Strings>
std::string UuidArray(const Strings& ids) {
  std::string out = "{";
  for (const auto& id : ids) {
    if (out.size() > 1) out.push_back(',');
    out.append(id.data(), id.size());
  }
  out.push_back('}');
  return out;
}

std::string Lower(std::string_view s) { return absl::AsciiStrToLower(AbslView(s)); }

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
std::string LockKeys(const std::vector<EventToStore>& events) {
  std::set<std::int64_t> keys;
  for (const EventToStore& e : events) {
    const std::string supplier = Lower(e.supplier_id);
    keys.insert(LockKey({"event", supplier, e.idempotency_key}));
    keys.insert(LockKey(
        {"snapshot", supplier, payload::ResourceKindName(e.valid->kind), e.valid->resource_key}));
  }
  std::string out = "{";
  for (std::int64_t key : keys) {
    if (out.size() > 1) out.push_back(',');
    out += std::to_string(key);
  }
  out.push_back('}');
  return out;
}

// libpqxx passes a null const char* as SQL NULL.
const char* NullIfEmpty(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

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

}  // namespace

absl::StatusOr<std::vector<StoredEvent>> PgEventStore::Enqueue(
    const std::vector<EventToStore>& events) {
  thread_local absl::BitGen bitgen;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::vector<StoredEvent>> result = EnqueueOnce(events);
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

absl::StatusOr<std::vector<StoredEvent>> PgEventStore::EnqueueOnce(
    const std::vector<EventToStore>& events) {
  std::vector<StoredEvent> results;
  results.reserve(events.size());
  if (events.empty()) return results;

  absl::StatusOr<PgPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  Where where;
  const absl::Time start = absl::Now();
  try {
    PrepareAll(lease->conn());
    pqxx::work txn(lease->conn(), "enqueue");
    where.operation = kLockKeys.name;
    txn.exec_prepared(kLockKeys.name, LockKeys(events));

    // ---- suppliers and connections: exist, and stay until the commit ----
    std::set<std::string> supplier_ids;
    std::set<std::string> connection_ids;
    for (const EventToStore& e : events) {
      supplier_ids.insert(Lower(e.supplier_id));
      if (!e.connection_id.empty()) connection_ids.insert(Lower(e.connection_id));
    }
    where.operation = kLockSuppliers.name;
    std::set<std::string> found_suppliers;
    for (const pqxx::row& row : txn.exec_prepared(kLockSuppliers.name, UuidArray(supplier_ids))) {
      found_suppliers.insert(row[0].as<std::string>());
    }
    std::map<std::string, std::string> connection_supplier;
    if (!connection_ids.empty()) {
      where.operation = kLockConnections.name;
      for (const pqxx::row& row :
           txn.exec_prepared(kLockConnections.name, UuidArray(connection_ids))) {
        connection_supplier.emplace(row[0].as<std::string>(), row[1].as<std::string>());
      }
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
      const std::string supplier = Lower(events[i].supplier_id);
      if (found_suppliers.count(supplier) == 0) {
        return absl::NotFoundError(absl::StrCat("events[", i, "].supplier_id: no such supplier"));
      }
      if (events[i].connection_id.empty()) continue;
      auto it = connection_supplier.find(Lower(events[i].connection_id));
      if (it == connection_supplier.end() || it->second != supplier) {
        return absl::NotFoundError(
            absl::StrCat("events[", i, "].connection_id: no such connection of this supplier"));
      }
    }

    // ---- the events, in request order (later events of a resource diff
    //      against earlier ones of the same batch) ----
    int new_deliveries = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const EventToStore& e = events[i];
      const ValidEvent& v = *e.valid;
      where.index = static_cast<int>(i);
      const std::string supplier(e.supplier_id);
      const std::string key(e.idempotency_key);
      const std::string connection(e.connection_id);
      const std::string kind(payload::ResourceKindName(v.kind));
      const std::string resource(e.resource_json);
      const std::string product(e.product_id);
      const std::string option(e.option_id);
      const std::string diff = e.diff_json ? std::string(*e.diff_json) : std::string("[]");

      where.operation = kInsertEvent.name;
      const pqxx::result inserted =
          txn.exec_prepared(kInsertEvent.name, supplier, key, NullIfEmpty(connection),
                            std::string(e.event), kind, v.resource_key, resource, v.localized_json,
                            diff, e.diff_json ? "true" : "false", NullIfEmpty(product),
                            NullIfEmpty(option), v.occurred_at_micros, UuidArray(e.webhook_ids));
      StoredEvent stored;
      if (inserted.empty()) {
        // The key exists (committed before, by a concurrent transaction we
        // waited for, or earlier in this batch): answer as it was.
        where.operation = kSelectEvent.name;
        const pqxx::row row = txn.exec_prepared1(kSelectEvent.name, supplier, key);
        stored.event_id = row[0].as<std::string>();
        stored.delivery_count = row[1].as<int>();
        stored.duplicate = true;
        results.push_back(std::move(stored));
        continue;
      }
      stored.event_id = inserted[0][0].as<std::string>();
      stored.delivery_count = inserted[0][1].as<int>();
      new_deliveries += stored.delivery_count;

      // ---- the snapshot, and the diff when the publisher sent none ----
      if (e.diff_json) {
        where.operation = kUpsertSnapshot.name;
        txn.exec_prepared0(kUpsertSnapshot.name, supplier, kind, v.resource_key, resource,
                           v.occurred_at_micros);
      } else {
        where.operation = kInsertSnapshot.name;
        const pqxx::result first = txn.exec_prepared(
            kInsertSnapshot.name, supplier, kind, v.resource_key, resource, v.occurred_at_micros);
        if (first.empty()) {  // a previous state exists: diff against it
          where.operation = kLockSnapshot.name;
          const pqxx::row previous =
              txn.exec_prepared1(kLockSnapshot.name, supplier, kind, v.resource_key);
          std::error_code ec;
          const auto before_text = previous[0].as<std::string>();
          const boost::json::value before = boost::json::parse(before_text, ec);
          if (ec) {
            log::Error("stored snapshot is not valid JSON", {{"operation", where.operation}});
            return absl::InternalError(
                absl::StrCat(Prefix(where), ": the stored snapshot of the resource is unreadable"));
          }
          const std::string computed =
              payload::SerializeCompact(payload::ComputeDiff(before, v.resource));
          where.operation = kReplaceSnapshot.name;
          txn.exec_prepared0(kReplaceSnapshot.name, supplier, kind, v.resource_key, resource,
                             v.occurred_at_micros, computed, stored.event_id);
        }
      }
      results.push_back(std::move(stored));
    }

    where = Where{};
    if (new_deliveries > 0) {
      where.operation = "notify";
      txn.exec0(absl::StrCat("NOTIFY ", kDeliveriesChannel));
    }
    where.operation = "commit";
    txn.commit();
    pool_->RecordOperation("enqueue", absl::Now() - start, true);
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
