#include "services/delivery/store.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/pg_status.h"
#include "services/common/pg_transaction.h"
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
using enqueue::Where;

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

// The table's status for a failed enqueue (pg_status.h), worded for the
// publisher where the store has more to say: a value the validation let
// through but a constraint refuses (class 22/23) is the batch's
// INVALID_ARGUMENT, naming the statement's event when one was running.
absl::Status EnqueueStatus(const absl::Status& status, const Where& failed) {
  const std::string state = SqlstateOf(status);
  if (!absl::StartsWith(state, "22") && !absl::StartsWith(state, "23")) return status;
  log::Warn("event rejected by a database constraint",
            {{"operation", failed.operation}, {"sqlstate", state}});
  return absl::InvalidArgumentError(
      absl::StrCat(Prefix(failed), ": rejected by a database constraint (SQLSTATE ", state, ")"));
}

bool AllEmpty(const std::vector<const std::vector<EventToStore>*>& batches) {
  return std::all_of(batches.begin(), batches.end(), [](const auto* b) { return b->empty(); });
}

// The statements of one enqueue transaction; the commit is the caller's.
// `where` names the statement running, for messages.
absl::StatusOr<std::vector<EnqueueResult>> RunStatements(
    pqxx::work& txn, const std::vector<const std::vector<EventToStore>*>& batches, Where& where,
    enqueue::EnqueueHandoff& handoff) {
  std::vector<EnqueueResult> results(batches.size(), std::vector<StoredEvent>{});
  const Flat all = Flatten(batches);
  where.operation = enqueue::kLockKeys.name;
  txn.exec_prepared(enqueue::kLockKeys.name, LockKeys(all.events));
  const std::vector<absl::Status> owners = CheckOwners(txn, all, batches.size(), where);
  const Flat live = Flatten(batches, &owners);
  EnqueueTxn run(txn, where, live, &handoff);
  if (!live.events.empty()) {
    if (absl::Status s = run.Run(); !s.ok()) return s;
  }
  where = Where{};
  // The claimers (this process's and the other replicas') are woken for
  // deliveries they may claim: not for those handed off, which are leased
  // to this process (a claim would skip them until the lease runs out).
  if (run.new_deliveries() > run.leased_deliveries()) {
    where.operation = "notify";
    txn.exec0(absl::StrCat("NOTIFY ", kDeliveriesChannel));
  }
  for (std::size_t b = 0; b < batches.size(); ++b) {
    if (!owners[b].ok()) results[b] = owners[b];
  }
  for (std::size_t n = 0; n < live.events.size(); ++n) {
    results[live.batch_of[n]]->push_back(std::move(run.result(n)));
  }
  return results;
}

}  // namespace

PgEventStore::PgEventStore(PgPool* pool, int max_attempts)
    : pool_(pool),
      max_attempts_(max_attempts),
      registered_(pool->RegisterStatements(enqueue::kStatements)) {}

EnqueueResult PgEventStore::Enqueue(const std::vector<EventToStore>& events) {
  return std::move(EnqueueGroup({&events})[0]);
}

std::vector<EnqueueResult> PgEventStore::EnqueueGroup(
    const std::vector<const std::vector<EventToStore>*>& batches) {
  absl::StatusOr<std::vector<EnqueueResult>> group = RunGroup(batches);
  if (group.ok()) return *std::move(group);
  std::vector<EnqueueResult> results;
  results.reserve(batches.size());
  // The database is unreachable or the commit in doubt (UNKNOWN: rerunning
  // the batches here could store them twice): every caller's answer, and
  // safe for each to publish again with the same keys. Anything else may be
  // one batch's doing: each runs again alone, so it only fails its own caller.
  if (batches.size() == 1 || absl::IsUnavailable(group.status()) ||
      IsCommitInDoubt(group.status())) {
    results.assign(batches.size(), group.status());
    return results;
  }
  log::Info("enqueue group failed; storing its batches one by one",
            {{"batches", std::to_string(batches.size())},
             {"error", std::string(group.status().message())}});
  for (const auto* batch : batches) {
    absl::StatusOr<std::vector<EnqueueResult>> alone = RunGroup({batch});
    results.push_back(alone.ok() ? std::move((*alone)[0]) : EnqueueResult(alone.status()));
  }
  return results;
}

absl::StatusOr<std::vector<EnqueueResult>> PgEventStore::RunGroup(
    const std::vector<const std::vector<EventToStore>*>& batches) {
  if (!registered_.ok()) return registered_;
  if (AllEmpty(batches)) {
    return std::vector<EnqueueResult>(batches.size(), std::vector<StoredEvent>{});
  }
  Where failed;  // the statement that threw, for EnqueueStatus
  enqueue::EnqueueHandoff handoff(handoff_.load(std::memory_order_acquire));
  absl::StatusOr<std::vector<EnqueueResult>> group = RunInTransaction(
      *pool_, {.operation = "enqueue", .max_attempts = max_attempts_},
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<EnqueueResult>> {
        Where where;
        handoff.Begin();
        try {
          return RunStatements(txn, batches, where, handoff);
        } catch (const pqxx::sql_error& e) {
          // A key inserted despite the key locks (see kInsertEvents): an
          // ABORTED status reruns the transaction, which then answers it as
          // a duplicate.
          if (e.sqlstate() == "23505" && txn.conn().is_open() &&
              std::string_view(where.operation) == enqueue::kInsertEvents.name) {
            log::Warn("enqueue: an idempotency key appeared meanwhile; rerunning",
                      {{"operation", where.operation}});
            return absl::AbortedError(
                absl::StrCat(Prefix(where), ": an idempotency key appeared meanwhile, retry"));
          }
          failed = where;
          throw;  // the one table maps it (and a lost connection) in RunInTransaction
        }
      });
  // Committed: the leased deliveries go to the dispatcher. Not committed,
  // or in doubt: the slots come back (leased rows that may exist are the
  // lease's, as after a claim whose process stopped).
  handoff.Finish(group.ok());
  if (group.ok()) return group;
  return EnqueueStatus(group.status(), failed);
}

}  // namespace octo::delivery
