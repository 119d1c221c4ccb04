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
#include "services/delivery/enqueue_sql.h"
#include "services/delivery/enqueue_txn.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::delivery {
namespace {

using enqueue::CheckOwners;
using enqueue::EnqueueTxn;
using enqueue::Events;
using enqueue::Flat;
using enqueue::Flatten;
using enqueue::Lower;
using enqueue::Prefix;
using enqueue::Statement;
using enqueue::Where;

void PrepareAll(pqxx::connection& conn) {
  for (const Statement& s : enqueue::kStatements) conn.prepare(s.name, s.sql);
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

