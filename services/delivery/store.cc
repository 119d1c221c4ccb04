#include "services/delivery/store.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <pqxx/pqxx>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/strings.h"
#include "services/delivery/payload/json_diff.h"
#include "services/delivery/payload/json_text.h"
#include "services/delivery/notification_ranges.h"
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

// The webhooks the new events name that exist and are enabled, with what an
// event must match (supplier, connection, event type); locked FOR KEY SHARE
// until the commit, in id order.
constexpr Statement kLockWebhooks{
    "enqueue_lock_webhooks",
    "SELECT w.id::text, w.connection_id::text, c.supplier_id::text, w.event,"
    "  w.dialect = 'notification', array_to_string(w.event_types, ',')"
    " FROM webhooks w JOIN connections c ON c.id = w.connection_id"
    " WHERE w.id = ANY($1::uuid[]) AND w.status = 'enabled'"
    " ORDER BY w.id FOR KEY SHARE OF w"};

// The batch's new events ($1, a JSON array: ids made by the caller, final
// diffs, delivery counts) and their deliveries ($2 event ids, $3 webhook
// ids, pairwise), in one statement without joins: the planner's row
// estimates for JSON input are guesses, and a join between two of these
// CTEs became a nested loop (2.4 s for 500 events x 5 webhooks). No ON
// CONFLICT: the key locks make a conflict impossible, and if one happens
// anyway (unique_violation) the transaction is rerun, answering it as a
// duplicate.
constexpr Statement kInsertEvents{
    "enqueue_insert_events",
    "WITH new_events AS ("
    "  INSERT INTO events (id, supplier_id, idempotency_key, connection_id, event, resource_kind,"
    "    resource_key, resource, localized, diff, diff_supplied, product_id, option_id,"
    "    occurred_at, delivery_count, notification_date_start, notification_date_end)"
    "  SELECT x.id, x.supplier_id, x.idempotency_key, x.connection_id, x.event, x.resource_kind,"
    "    x.resource_key, x.resource, x.localized, x.diff, x.diff_supplied,"
    "    x.product_id, x.option_id, " OCTO_TIMESTAMP("x.occurred_at") ", x.delivery_count,"
    "    x.notification_date_start, x.notification_date_end"
    "  FROM json_to_recordset($1::json) AS x(id uuid, supplier_id uuid, idempotency_key text,"
    "    connection_id uuid, event text, resource_kind text, resource_key text, resource json,"
    "    localized json, diff json, diff_supplied boolean, product_id text, option_id text,"
    "    occurred_at bigint, delivery_count integer, notification_date_start date,"
    "    notification_date_end date)), "
    "new_deliveries AS ("
    "  INSERT INTO deliveries (event_id, webhook_id)"
    "  SELECT * FROM unnest($2::uuid[], $3::uuid[])) "
    "SELECT 1"};
// The keys of the batch that are stored already: their answers as they were.
constexpr Statement kSelectEvents{
    "enqueue_select_events",
    "SELECT x.ord, e.id::text, e.delivery_count"
    " FROM json_to_recordset($1::json) AS x(ord integer, supplier_id uuid, idempotency_key text)"
    " JOIN events e ON e.supplier_id = x.supplier_id AND e.idempotency_key = x.idempotency_key"};

// The current snapshots of the resources of the new events, locked until
// the commit (diffs are computed against them in C++).
constexpr Statement kLockSnapshots{
    "enqueue_lock_snapshots",
    "SELECT x.supplier_id, x.resource_kind, x.resource_key, s.resource::text,"
    "  (extract(epoch FROM s.occurred_at) * 1000000)::bigint"
    " FROM json_to_recordset($1::json) AS x(supplier_id text, resource_kind text,"
    "   resource_key text)"
    " JOIN resource_snapshots s ON s.supplier_id = x.supplier_id::uuid"
    "   AND s.resource_kind = x.resource_kind AND s.resource_key = x.resource_key"
    " ORDER BY s.supplier_id, s.resource_kind, s.resource_key FOR UPDATE OF s"};
// The last state of each resource the batch changed; never replaces a newer
// snapshot.
constexpr Statement kUpsertSnapshots{
    "enqueue_upsert_snapshots",
    "INSERT INTO resource_snapshots AS s (supplier_id, resource_kind, resource_key, resource,"
    "  occurred_at)"
    " SELECT x.supplier_id::uuid, x.resource_kind, x.resource_key, x.resource,"
    "   " OCTO_TIMESTAMP("x.occurred_at")
    " FROM json_to_recordset($1::json) AS x(supplier_id text, resource_kind text,"
    "   resource_key text, resource json, occurred_at bigint)"
    " ON CONFLICT (supplier_id, resource_kind, resource_key) DO UPDATE"
    "  SET resource = EXCLUDED.resource, occurred_at = EXCLUDED.occurred_at, updated_at = now()"
    "  WHERE s.occurred_at <= EXCLUDED.occurred_at"};

constexpr std::array kStatements = {kLockKeys,      kLockSuppliers, kLockConnections,
                                    kSelectEvents,  kLockSnapshots, kLockWebhooks,
                                    kInsertEvents,  kUpsertSnapshots};

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

// `count` random (version 4) UUIDs, lower-case text.
std::vector<std::string> NewUuids(std::size_t count) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string random = crypto::RandomBytes(16 * count);
  std::vector<std::string> ids;
  ids.reserve(count);
  for (std::size_t n = 0; n < count; ++n) {
    unsigned char b[16];
    for (int k = 0; k < 16; ++k) b[k] = static_cast<unsigned char>(random[16 * n + k]);
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    std::string id;
    id.reserve(36);
    for (int k = 0; k < 16; ++k) {
      if (k == 4 || k == 6 || k == 8 || k == 10) id.push_back('-');
      id.push_back(kHex[b[k] >> 4]);
      id.push_back(kHex[b[k] & 0x0f]);
    }
    ids.push_back(std::move(id));
  }
  return ids;
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

// The JSON array of objects a json_to_recordset parameter reads, written
// directly (no DOM): Row() starts an object, then one call per field.
class Recordset {
 public:
  Recordset& Row() {
    text_ += rows_++ == 0 ? "[{" : "},{";
    first_field_ = true;
    return *this;
  }
  Recordset& Text(std::string_view name, std::string_view value) {
    Key(name);
    payload::AppendJsonString(value, text_);
    return *this;
  }
  // "" is SQL NULL (optional UUIDs and ids).
  Recordset& TextOrNull(std::string_view name, std::string_view value) {
    if (!value.empty()) return Text(name, value);
    Key(name);
    text_ += "null";
    return *this;
  }
  // A JSON value (validated before: ValidateEvent, or our own output) as it
  // is, without escaping: json_to_recordset hands a `json` column the
  // value's text unchanged, so it is parsed once, not unescaped and parsed
  // again. Whitespace around the value is insignificant and dropped.
  Recordset& Json(std::string_view name, std::string_view json) {
    Key(name);
    const absl::string_view trimmed = absl::StripAsciiWhitespace(AbslView(json));
    text_.append(trimmed.data(), trimmed.size());
    return *this;
  }
  Recordset& Int(std::string_view name, std::int64_t value) {
    Key(name);
    text_ += std::to_string(value);
    return *this;
  }
  Recordset& Bool(std::string_view name, bool value) {
    Key(name);
    text_ += value ? "true" : "false";
    return *this;
  }
  bool empty() const { return rows_ == 0; }
  std::string Finish() {
    text_ += rows_ == 0 ? "[]" : "}]";
    return std::move(text_);
  }

 private:
  void Key(std::string_view name) {
    if (!first_field_) text_.push_back(',');
    first_field_ = false;
    payload::AppendJsonString(name, text_);
    text_.push_back(':');
  }
  std::string text_;
  std::size_t rows_ = 0;
  bool first_field_ = true;
};

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
    if (state == "23505" && std::string_view(where.operation) == kInsertEvents.name) {
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

    // ---- idempotency: the first event of each key in the batch stands for
    //      the later ones; keys stored before answer as they were. The
    //      advisory locks above keep any other transaction from inserting
    //      these keys until the commit, so what this sees stays true ----
    std::vector<std::size_t> first(events.size());
    {
      std::map<std::pair<std::string, std::string_view>, std::size_t> by_key;
      for (std::size_t i = 0; i < events.size(); ++i) {
        first[i] =
            by_key.emplace(std::pair(Lower(events[i].supplier_id), events[i].idempotency_key), i)
                .first->second;
      }
    }
    std::vector<std::optional<StoredEvent>> stored(events.size());
    {
      Recordset keys;
      for (std::size_t i = 0; i < events.size(); ++i) {
        if (first[i] != i) continue;
        keys.Row()
            .Int("ord", static_cast<std::int64_t>(i))
            .Text("supplier_id", Lower(events[i].supplier_id))
            .Text("idempotency_key", events[i].idempotency_key);
      }
      where.operation = kSelectEvents.name;
      for (const pqxx::row& row : txn.exec_prepared(kSelectEvents.name, keys.Finish())) {
        StoredEvent s;
        s.event_id = row[1].as<std::string>();
        s.delivery_count = row[2].as<int>();
        s.duplicate = true;
        stored.at(row[0].as<std::size_t>()) = std::move(s);
      }
    }
    std::vector<std::size_t> fresh;  // the events to insert, in request order
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (first[i] == i && !stored[i]) fresh.push_back(i);
    }

    // ---- snapshots and diffs: the new events of a resource chain in
    //      request order from its stored snapshot (locked), so a later
    //      event of the batch diffs against an earlier one ----
    struct Snapshot {
      bool exists = false;
      bool changed = false;
      std::string_view resource;  // into `stored_text` or an event
      const boost::json::value* parsed = nullptr;  // of an event of the batch
      std::string stored_text;
      std::int64_t occurred_at = 0;
    };
    using ResourceId = std::tuple<std::string, std::string_view, std::string_view>;
    auto resource_id = [&events](std::size_t i) {
      const ValidEvent& v = *events[i].valid;
      return ResourceId{Lower(events[i].supplier_id), payload::ResourceKindName(v.kind),
                        std::string_view(v.resource_key)};
    };
    std::map<ResourceId, Snapshot> snapshots;
    {
      Recordset ids;
      for (std::size_t i : fresh) {
        ResourceId id = resource_id(i);
        if (!snapshots.emplace(id, Snapshot{}).second) continue;
        ids.Row()
            .Text("supplier_id", std::get<0>(id))
            .Text("resource_kind", std::get<1>(id))
            .Text("resource_key", std::get<2>(id));
      }
      if (!ids.empty()) {
        where.operation = kLockSnapshots.name;
        const pqxx::result rows = txn.exec_prepared(kLockSnapshots.name, ids.Finish());
        for (const pqxx::row& row : rows) {
          const auto supplier = row[0].as<std::string>();
          const auto kind = row[1].as<std::string>();
          const auto key = row[2].as<std::string>();
          Snapshot& s = snapshots.at(ResourceId{supplier, kind, key});
          s.exists = true;
          s.stored_text = row[3].as<std::string>();
          s.resource = s.stored_text;
          s.occurred_at = row[4].as<std::int64_t>();
        }
      }
    }
    std::vector<std::string> diffs(events.size());
    for (std::size_t i : fresh) {
      const EventToStore& e = events[i];
      const ValidEvent& v = *e.valid;
      Snapshot& s = snapshots.at(resource_id(i));
      if (e.diff_json) {
        diffs[i] = std::string(*e.diff_json);
      } else if (!s.exists) {
        diffs[i] = "[]";  // the first state known of the resource
      } else {
        boost::json::value before_storage;
        const boost::json::value* before = s.parsed;
        if (before == nullptr) {
          std::error_code ec;
          before_storage = boost::json::parse(s.resource, ec);
          if (ec) {
            where.index = static_cast<int>(i);
            log::Error("stored snapshot is not valid JSON", {{"operation", where.operation}});
            return absl::InternalError(
                absl::StrCat(Prefix(where), ": the stored snapshot of the resource is unreadable"));
          }
          before = &before_storage;
        }
        diffs[i] = payload::SerializeCompact(payload::ComputeDiff(*before, v.resource));
      }
      // The snapshot follows the newest state (an older event diffs against
      // it and leaves it).
      if (!s.exists || s.occurred_at <= v.occurred_at_micros) {
        s.exists = true;
        s.changed = true;
        s.resource = e.resource_json;
        s.parsed = &v.resource;
        s.occurred_at = v.occurred_at_micros;
      }
    }

    // ---- the webhooks of the new events: exist, are enabled, and stay
    //      until the commit (FOR KEY SHARE; a webhook deleted meanwhile is
    //      skipped, not a foreign-key error); matched to each event below ----
    struct Webhook {
      std::string connection_id;
      std::string supplier_id;
      std::string event;
      bool notification = false;  // the thin-body dialect
      std::string event_types;    // notification: every type it wants, comma-separated
      bool Wants(std::string_view e) const {
        if (event == e) return true;
        if (!notification) return false;
        std::string_view rest = event_types;
        while (!rest.empty()) {
          const std::size_t comma = rest.find(',');
          if (rest.substr(0, comma) == e) return true;
          rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
        return false;
      }
    };
    std::map<std::string, Webhook, std::less<>> webhooks;
    {
      std::set<std::string> ids;
      for (std::size_t i : fresh) {
        for (std::string_view id : events[i].webhook_ids) ids.insert(Lower(id));
      }
      if (!ids.empty()) {
        where.operation = kLockWebhooks.name;
        for (const pqxx::row& row : txn.exec_prepared(kLockWebhooks.name, UuidArray(ids))) {
          webhooks.emplace(row[0].as<std::string>(),
                           Webhook{row[1].as<std::string>(), row[2].as<std::string>(),
                                   row[3].as<std::string>(), row[4].as<bool>(),
                                   row[5].as<std::string>()});
        }
      }
    }

    // ---- the new events and their deliveries: one statement, no joins
    //      (the ids are made here, the webhooks matched above) ----
    int new_deliveries = 0;
    // An availability publish reaches a notification subscription once per
    // product, with the range of its dates.
    NotificationRanges ranges;
    for (std::size_t i : fresh) {
      if (events[i].valid->kind != payload::ResourceKind::kAvailability) continue;
      ranges.Add(Lower(events[i].supplier_id), events[i].product_id, events[i].valid->resource);
    }
    if (!fresh.empty()) {
      const std::vector<std::string> event_ids = NewUuids(fresh.size());
      Recordset rows;
      std::string delivery_events = "{";
      std::string delivery_webhooks = "{";
      for (std::size_t n = 0; n < fresh.size(); ++n) {
        const std::size_t i = fresh[n];
        const EventToStore& e = events[i];
        const ValidEvent& v = *e.valid;
        const std::string supplier = Lower(e.supplier_id);
        const std::string connection = Lower(e.connection_id);
        std::set<std::string> targets;  // distinct
        for (std::string_view id : e.webhook_ids) {
          std::string lower = Lower(id);
          auto w = webhooks.find(lower);
          if (w == webhooks.end() || w->second.supplier_id != supplier ||
              (!connection.empty() && w->second.connection_id != connection) ||
              !w->second.Wants(e.event)) {
            continue;  // gone, disabled, another supplier/connection, another event
          }
          if (w->second.notification && v.kind == payload::ResourceKind::kAvailability &&
              !ranges.FirstFor(lower, supplier, e.product_id)) {
            continue;  // this publish's range for the product is on its way already
          }
          targets.insert(std::move(lower));
        }
        for (const std::string& webhook : targets) {
          if (delivery_events.size() > 1) {
            delivery_events.push_back(',');
            delivery_webhooks.push_back(',');
          }
          delivery_events += event_ids[n];
          delivery_webhooks += webhook;
        }
        StoredEvent stored_event;
        stored_event.event_id = event_ids[n];
        stored_event.delivery_count = static_cast<int>(targets.size());
        new_deliveries += stored_event.delivery_count;
        stored[i] = std::move(stored_event);
        rows.Row()
            .Text("id", event_ids[n])
            .Text("supplier_id", supplier)
            .Text("idempotency_key", e.idempotency_key)
            .TextOrNull("connection_id", connection)
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
            .Int("delivery_count", static_cast<std::int64_t>(targets.size()));
        const DateRange* range = v.kind == payload::ResourceKind::kAvailability
                                     ? ranges.Find(supplier, e.product_id)
                                     : nullptr;
        rows.TextOrNull("notification_date_start", range != nullptr ? range->start : "")
            .TextOrNull("notification_date_end", range != nullptr ? range->end : "");
      }
      delivery_events.push_back('}');
      delivery_webhooks.push_back('}');
      where.operation = kInsertEvents.name;
      txn.exec_prepared(kInsertEvents.name, rows.Finish(), delivery_events, delivery_webhooks);

      Recordset changed;
      for (const auto& [id, s] : snapshots) {
        if (!s.changed) continue;
        changed.Row()
            .Text("supplier_id", std::get<0>(id))
            .Text("resource_kind", std::get<1>(id))
            .Text("resource_key", std::get<2>(id))
            .Json("resource", s.resource)
            .Int("occurred_at", s.occurred_at);
      }
      if (!changed.empty()) {
        where.operation = kUpsertSnapshots.name;
        txn.exec_prepared0(kUpsertSnapshots.name, changed.Finish());
      }
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (first[i] == i) continue;  // a later event of a key answers as the first
      StoredEvent s = *stored[first[i]];
      s.duplicate = true;
      stored[i] = std::move(s);
    }
    for (std::optional<StoredEvent>& s : stored) results.push_back(std::move(*s));

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
