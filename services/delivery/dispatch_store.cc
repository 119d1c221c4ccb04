#include "services/delivery/dispatch_store.h"

#include <algorithm>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/common/log.h"
#include "services/common/pg_pool.h"
#include "services/common/pg_status.h"
#include "services/common/strings.h"
#include "services/delivery/dispatch_store_params.h"
#include "services/delivery/dispatch_store_sql.h"
#include "services/delivery/dispatch_store_webhooks.h"

namespace octo::delivery {
namespace {

using dispatch_sql::kClaim;
using dispatch_sql::kClaimEvents;
using dispatch_sql::kWriteResults;
using dispatch_sql::kLockFree;
using dispatch_sql::kLockFreeResources;
using dispatch_sql::kDisableWebhook;
using dispatch_sql::kCancelPending;
using dispatch_sql::kTrackFailing;
using dispatch_sql::kDisableFailing;
using dispatch_sql::kLockOrdered;
using dispatch_sql::kPromoteHeads;
using dispatch_sql::kReleaseOrdered;
using dispatch_sql::kReleaseOrderedQuiet;
using dispatch_sql::kPullForward;
using dispatch_sql::kLockOrderedAndCancelled;
using dispatch_sql::HealthOf;
using dispatch_sql::LockWebhooks;
using dispatch_sql::CancelOwnPending;
using dispatch_sql::UuidArray;
using dispatch_sql::WebhookWrites;
using dispatch_sql::kStatements;
using dispatch_sql::GoneWebhooks;
using dispatch_sql::HealthJson;
using dispatch_sql::ResultsJson;
using dispatch_sql::CreatedSpan;
using dispatch_sql::Rounds;

bool IsBroken(const std::exception& e) {
  return dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
         dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr;
}

// SQLSTATEs a result write or claim may meet and should simply retry:
// query_canceled (statement_timeout) and lock_not_available (lock_timeout).
bool IsTimeout(const std::exception& e) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  return sql != nullptr && (sql->sqlstate() == "57014" || sql->sqlstate() == "55P03");
}

bool IsLockTimeout(const std::exception& e) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  return sql != nullptr && sql->sqlstate() == "55P03";
}

ClaimedDelivery DeliveryFromRow(const pqxx::row& row) {
  ClaimedDelivery d;
  d.id = row[0].as<std::string>();
  d.attempt_count = row[1].as<int>();
  d.lease_us = row[2].as<long long>();
  d.event_id = row[3].as<std::string>();
  d.webhook_id = row[4].as<std::string>();
  d.webhook_event = row[5].as<std::string>();
  d.url = row[6].as<std::string>();
  d.retry_on_error = row[7].as<bool>();
  d.use_contact_language = row[8].as<bool>();
  d.headers_json = row[9].as<std::string>();
  d.capabilities_json = row[10].as<std::string>();
  d.secret = row[11].as<std::string>();
  d.webhook_enabled = row[12].as<bool>();
  d.supplier_id = row[13].as<std::string>();
  d.supplier_name = row[14].as<std::string>();
  d.supplier_endpoint = row[15].as<std::string>();
  d.supplier_contact_json = row[16].as<std::string>();
  d.previous_secret = row[17].as<std::string>();
  d.rate_limit_per_second = row[18].as<double>();
  d.max_concurrency = row[19].as<int>();
  d.dialect = row[21].as<std::string>();  // row[20]: quarantined by this claim
  d.ordered_resource_id = row[22].as<int64_t>();
  d.sequence = row[23].as<int64_t>();
  d.created_us = row[24].as<int64_t>();
  d.parked = row[25].as<bool>();
  d.suspect = row[26].as<bool>();
  return d;
}

ClaimedEvent EventFromRow(const pqxx::row& row) {
  ClaimedEvent e;
  e.id = row[0].as<std::string>();
  e.event = row[1].as<std::string>();
  e.resource_kind = row[2].as<std::string>();
  e.resource_json = row[3].as<std::string>();
  e.localized_json = row[4].as<std::string>();
  e.diff_json = row[5].as<std::string>();
  e.product_id = row[6].as<std::string>();
  e.option_id = row[7].as<std::string>();
  e.created_at = absl::FromUnixMicros(row[8].as<long long>());
  e.occurred_at_us = row[9].as<long long>();
  e.notification_date_start = row[10].as<std::string>();
  e.notification_date_end = row[11].as<std::string>();
  return e;
}

}  // namespace

struct PgDispatchStore::Impl {
  std::string conninfo;
  DispatchStoreOptions options;
  std::unique_ptr<pqxx::connection> conn;
  DisabledCounts disabled;  // since the last TakeDisabledCounts

  absl::Status EnsureConnected() {
    if (conn != nullptr && conn->is_open()) return absl::OkStatus();
    conn.reset();
    try {
      auto c = std::make_unique<pqxx::connection>(conninfo);
      // The statement and lock timeouts come with the conninfo (the layer's
      // --pg_statement_timeout, --pg_lock_timeout); a shorter lock wait may
      // be asked for, so a row lock held by another session holds back only
      // the results that need it.
      if (options.lock_timeout > absl::ZeroDuration()) {
        pqxx::nontransaction tx(*c);
        tx.exec(absl::StrCat("SET lock_timeout = ", absl::ToInt64Milliseconds(options.lock_timeout)));
      }
      for (const dispatch_sql::Statement& s : kStatements) c->prepare(s.name, s.sql);
      conn = std::move(c);
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", e.what()));
    }
  }

  // The layer's table (pg_status.h), except that a statement or lock
  // timeout is ABORTED, not UNAVAILABLE: the work is retried, but the
  // connection is fine, so the result recorder does not take it for an
  // outage and claims go on (a row lock holds back only its own result).
  absl::Status Failed(std::string_view operation, const std::exception& e) {
    if (conn != nullptr && (IsBroken(e) || IsConnectionLost(e) || !conn->is_open())) conn.reset();  // reconnect
    absl::Status status = PgErrorToStatus(operation, e);
    if (IsTimeout(e)) return absl::AbortedError(status.message());
    return status;
  }

  // The results' statements in `txn`; counts the webhooks disabled.
  // `locked_webhooks`: what the caller locked already (LockWebhooks); else
  // they are locked here, before any other row.
  void Write(pqxx::work& txn, const std::vector<DeliveryResult>& results, DisabledCounts& disabled_here,
             const WebhookWrites* locked_webhooks = nullptr) {
    bool failing = false;
    const std::string health = HealthJson(results, &failing);
    const auto gone = GoneWebhooks(results);
    const WebhookWrites writes =
        locked_webhooks != nullptr ? *locked_webhooks : LockWebhooks(txn, health, gone, options.disable_after);
    // Ordered results: their resources' rows are locked before any delivery
    // row, in kLockOrdered's order, as a redeliver, replay or enqueue takes
    // them (a claim never waits for either): locking the delivery first and
    // the resource after deadlocked with a redeliver of that delivery. So
    // are the resources of the webhooks whose pending deliveries this write
    // cancels, in the same statement. No statement for unordered results.
    std::set<int64_t> locked;
    for (const DeliveryResult& r : results) {
      if (r.ordered_resource_id > 0) locked.insert(r.ordered_resource_id);
    }
    if (!writes.cancel.empty()) {
      txn.exec_prepared(kLockOrderedAndCancelled.name, IdArray(locked), UuidArray(writes.cancel));
    } else if (!locked.empty()) {
      txn.exec_prepared(kLockOrdered.name, IdArray(locked));
    }
    std::set<int64_t> ordered;  // ordered resources among the results
    std::vector<std::string> leases;  // their (resource, lease token), a JSON array per round
    for (const auto& round : Rounds(results)) {
      const pqxx::row row = txn.exec_prepared1(kWriteResults.name, ResultsJson(round));
      AddIds(row[1].as<std::string>(), ordered);
      if (row[2].as<std::string>() != "[]") leases.push_back(row[2].as<std::string>());
    }
    // A result that did not say its resource (a caller that left it 0) has
    // it locked only now, out of the lock order (docs/delivery.md, "Lock
    // order": the dispatcher always says it).
    const bool all_locked = std::includes(locked.begin(), locked.end(), ordered.begin(), ordered.end());
    PromoteHeads(txn, ordered, leases, all_locked);
    // Only the webhooks rows kLockWebhooks locked are written.
    std::set<std::string> disabled_failing;
    if (!writes.track.empty()) txn.exec_prepared(kTrackFailing.name, HealthOf(health, writes.track));
    if (failing && !writes.failing.empty()) {
      const pqxx::result disabled =
          txn.exec_prepared(kDisableFailing.name, HealthOf(health, writes.failing),
                            static_cast<long long>(absl::ToInt64Milliseconds(options.disable_after)));
      disabled_here.failing += static_cast<int>(disabled.size());
      for (const pqxx::row& row : disabled) {
        const std::string webhook_id = row[0].as<std::string>();
        disabled_failing.insert(webhook_id);
        const pqxx::result cancelled = txn.exec_prepared(kCancelPending.name, webhook_id);
        log::Warn("webhook disabled: its endpoint has been failing for too long",
                  {{"webhook_id", webhook_id},
                   {"reason", row[1].as<std::string>()},
                   {"cancelled_deliveries", std::to_string(cancelled.affected_rows())}});
      }
    }
    std::set<std::string> cancel_own;  // 410 of a webhook with nothing pending
    for (const auto& [webhook_id, reason] : gone) {
      if (writes.cancel_own.count(webhook_id) > 0) cancel_own.insert(webhook_id);
      if (writes.cancel.count(webhook_id) == 0) continue;  // deleted, or in cancel_own
      const bool disables = writes.gone.count(webhook_id) > 0 && disabled_failing.count(webhook_id) == 0;
      if (disables) txn.exec_prepared(kDisableWebhook.name, webhook_id, reason);
      const pqxx::result cancelled = txn.exec_prepared(kCancelPending.name, webhook_id);
      if (disables) {
        ++disabled_here.gone;
        log::Warn("webhook disabled: its endpoint answered 410 Gone",
                  {{"webhook_id", webhook_id}, {"cancelled_deliveries", std::to_string(cancelled.affected_rows())}});
      }
    }
    CancelOwnPending(txn, results, cancel_own);
  }

  // `ids` as a bigint[] literal: '{1,2}'.
  static std::string IdArray(const std::set<int64_t>& ids) {
    std::string array = "{";
    for (int64_t id : ids) absl::StrAppend(&array, array.size() > 1 ? "," : "", id);
    array += '}';
    return array;
  }

  // '{1,2}' (a bigint[] as text) into `ids`.
  static void AddIds(absl::string_view array, std::set<int64_t>& ids) {
    if (array.size() < 2) return;
    for (absl::string_view id : absl::StrSplit(array.substr(1, array.size() - 2), ',', absl::SkipEmpty())) {
      int64_t value = 0;
      if (absl::SimpleAtoi(id, &value)) ids.insert(value);
    }
  }

  // Ordered delivery: the resources the results' claims took are freed
  // (`leases`, see kReleaseOrdered), and the next delivery of each resource
  // whose delivery finished (or may have) becomes due (docs/delivery.md,
  // "Ordered delivery"). Nothing to do, and no statement, for unordered
  // webhooks.
  static void PromoteHeads(pqxx::work& txn, const std::set<int64_t>& ordered,
                           const std::vector<std::string>& leases = {}, bool locked = false) {
    if (ordered.empty()) return;
    const std::string array = IdArray(ordered);
    if (!locked) txn.exec_prepared(kLockOrdered.name, array);
    // Promoted before the release: both run under the resources' row
    // locks, so their order is not seen by anyone else, and when something
    // became due the release need not look for due deliveries too.
    const bool promoted = txn.exec_prepared(kPromoteHeads.name, array).affected_rows() > 0;
    bool due = false;  // a freed resource's next delivery was due already
    for (const std::string& json : leases) {
      if (promoted) {
        txn.exec_prepared(kReleaseOrderedQuiet.name, json);
        continue;
      }
      for (const pqxx::row& row : txn.exec_prepared(kReleaseOrdered.name, json)) due = due || row[0].as<bool>();
    }
    // Due now: every replica's claimer is woken (on commit), as after an
    // enqueue, rather than finding them at its next poll. That includes a
    // delivery that was due already but held by its resource's send, which
    // this result freed: nothing else would wake a claimer for it.
    if (due || promoted) txn.exec0(absl::StrCat("NOTIFY ", kDeliveryChannel));
  }

  // After a lock timeout: commits the results whose delivery rows, and for
  // ordered deliveries whose resource rows, no other session holds locked.
  // How many were held back, or an error.
  absl::StatusOr<std::size_t> WriteUnlocked(const std::vector<DeliveryResult>& results, DisabledCounts& disabled_here) {
    std::set<std::string> ids;
    for (const DeliveryResult& r : results) ids.insert(r.delivery_id);
    try {
      pqxx::work txn(*conn);
      // The lock order holds here too: the webhooks rows first, then the
      // resources of the webhooks whose pending deliveries the write cancels
      // (both waiting: a cancel needs them all), then the delivery rows, and
      // the results' own resources, that no one holds (never waiting).
      // Taking those resources after the delivery rows deadlocked with a
      // redeliver holding one and waiting for a delivery of the batch.
      bool failing = false;
      const WebhookWrites webhooks =
          LockWebhooks(txn, HealthJson(results, &failing), GoneWebhooks(results), options.disable_after);
      if (!webhooks.cancel.empty()) {
        txn.exec_prepared(kLockOrderedAndCancelled.name, "{}", UuidArray(webhooks.cancel));
      }
      const auto [from, to] = CreatedSpan(results);  // the weeks to read
      std::set<std::string> free;
      for (const pqxx::row& row : txn.exec_prepared(kLockFree.name, UuidArray(ids), from, to)) {
        free.insert(row[0].as<std::string>());
      }
      // Deleted deliveries are neither free nor locked: not held back.
      std::size_t held = ids.size() - free.size();
      if (!free.empty()) {
        for (const pqxx::row& row : txn.exec_prepared(kLockFreeResources.name, UuidArray(free), from, to)) {
          held += free.erase(row[0].as<std::string>());
        }
      }
      std::vector<DeliveryResult> writable;
      for (const DeliveryResult& r : results) {
        // A result of a deleted delivery is dropped by the write either way.
        if (free.count(r.delivery_id) > 0) writable.push_back(r);
      }
      Write(txn, writable, disabled_here, &webhooks);
      txn.commit();
      return held;
    } catch (const std::exception& e) {
      return Failed("write delivery results", e);
    }
  }
};

PgDispatchStore::PgDispatchStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgDispatchStore::~PgDispatchStore() = default;

absl::StatusOr<std::unique_ptr<PgDispatchStore>> PgDispatchStore::Connect(std::string conninfo,
                                                                           DispatchStoreOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->conninfo = std::move(conninfo);
  impl->options = options;
  impl->options.max_unreported_claims = std::max(1, impl->options.max_unreported_claims);
  if (absl::Status s = impl->EnsureConnected(); !s.ok()) return s;
  return std::unique_ptr<PgDispatchStore>(new PgDispatchStore(std::move(impl)));
}

absl::StatusOr<ClaimBatch> PgDispatchStore::Claim(int limit, absl::Duration lease, Suspects suspects) {
  if (absl::Status s = impl_->EnsureConnected(); !s.ok()) return s;
  try {
    ClaimBatch batch;
    pqxx::work txn(*impl_->conn);
    const pqxx::result rows =
        txn.exec_prepared(kClaim.name, limit, static_cast<long long>(absl::ToInt64Milliseconds(lease)),
                          impl_->options.max_unreported_claims, suspects == Suspects::kOneAlone);
    batch.deliveries.reserve(rows.size());
    std::set<std::string> event_ids;
    std::set<int64_t> quarantined_ordered;
    for (const pqxx::row& row : rows) {
      ClaimedDelivery d = DeliveryFromRow(row);
      if (row[20].as<bool>()) {  // quarantined by this claim: not sent
        if (d.ordered_resource_id > 0) quarantined_ordered.insert(d.ordered_resource_id);
        log::Warn("delivery quarantined: its claims keep ending without a result (the process stops while "
                  "sending it); redeliver it to try again",
                  {{"delivery_id", d.id},
                   {"webhook_id", d.webhook_id},
                   {"unreported_claims", std::to_string(impl_->options.max_unreported_claims)}});
        continue;
      }
      event_ids.insert(d.event_id);
      batch.deliveries.push_back(std::move(d));
    }
    // A quarantined delivery is finished: its resource's next one may go.
    Impl::PromoteHeads(txn, quarantined_ordered);
    if (!event_ids.empty()) {
      for (const pqxx::row& row : txn.exec_prepared(kClaimEvents.name, UuidArray(event_ids))) {
        ClaimedEvent e = EventFromRow(row);
        std::string key = e.id;
        batch.events.emplace(std::move(key), std::move(e));
      }
    }
    txn.commit();
    return batch;
  } catch (const std::exception& e) {
    return impl_->Failed("claim deliveries", e);
  }
}

absl::Status PgDispatchStore::WriteResults(const std::vector<DeliveryResult>& results) {
  if (results.empty()) return absl::OkStatus();
  if (absl::Status s = impl_->EnsureConnected(); !s.ok()) return s;
  DisabledCounts disabled_here;
  absl::Status status;
  try {
    pqxx::work txn(*impl_->conn);
    impl_->Write(txn, results, disabled_here);
    txn.commit();
  } catch (const std::exception& e) {
    status = impl_->Failed("write delivery results", e);
    if (!IsLockTimeout(e) || impl_->conn == nullptr) return status;
  }
  if (!status.ok()) {
    disabled_here = {};
    absl::StatusOr<std::size_t> held = impl_->WriteUnlocked(results, disabled_here);
    if (!held.ok()) return held.status();
    if (*held > 0) {
      status = absl::AbortedError(absl::StrCat(
          "write delivery results: ", *held,
          " delivery rows are locked by another session; the other results were written, these wait"));
    } else {
      status = absl::OkStatus();
    }
  }
  impl_->disabled.gone += disabled_here.gone;
  impl_->disabled.failing += disabled_here.failing;
  return status;
}

absl::StatusOr<int> PgDispatchStore::PullForward(const std::vector<std::string>& webhook_ids, int limit) {
  if (webhook_ids.empty() || limit <= 0) return 0;
  if (absl::Status s = impl_->EnsureConnected(); !s.ok()) return s;
  try {
    // Webhook ids come from claimed rows: canonical uuid text.
    const std::set<std::string> ids(webhook_ids.begin(), webhook_ids.end());
    pqxx::work txn(*impl_->conn);
    const pqxx::result pulled = txn.exec_prepared(kPullForward.name, UuidArray(ids), limit);
    txn.commit();
    return static_cast<int>(pulled.affected_rows());
  } catch (const std::exception& e) {
    return impl_->Failed("pull a parked backlog forward", e);
  }
}

DispatchStore::DisabledCounts PgDispatchStore::TakeDisabledCounts() {
  return std::exchange(impl_->disabled, DisabledCounts{});
}

}  // namespace octo::delivery
