#include "services/delivery/operations_store.h"

#include <array>
#include <exception>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/pg_status.h"
#include "services/common/pg_transaction.h"
#include "services/common/strings.h"
#include "services/common/validation.h"
#include "services/delivery/dispatch_render.h"
#include "services/delivery/operations_sql.h"
#include "services/delivery/store.h"

namespace octo::delivery {
namespace {

namespace pb = ::octo::webhooks::v1;

using namespace operations_sql;  // the statements of this store, named as in its SQL

// 9999-12-31T23:59:59.999999Z in microseconds since the epoch.
constexpr int64_t kMaxCursorMicros = 253402300799999999;

// Makes the next delivery of the ordered resources in `ids` ('{...}') due.
void PromoteHeads(pqxx::work& txn, const std::string& ids) {
  if (ids.empty() || ids == "{}") return;
  txn.exec_prepared(kLockOrdered.name, ids);
  txn.exec_prepared(kPromoteHeads.name, ids);
}

absl::Status WebhookNotFound() { return absl::NotFoundError("webhookId: no such webhook"); }
absl::Status DeliveryNotFound() { return absl::NotFoundError("deliveryId: no such delivery"); }
absl::Status WebhookDisabled() {
  return absl::FailedPreconditionError(
      "webhookId: the webhook is disabled; enable it first (POST .../enable)");
}

void SetTime(const pqxx::field& micros, google::protobuf::Timestamp* out) {
  const long long us = micros.as<long long>();
  // Floor division: times before 1970 have negative micros.
  long long seconds = us / 1000000;
  long long rest = us % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int>(rest * 1000));
}

pb::DeliveryState StateFromName(std::string_view name) {
  if (name == "pending") return pb::DELIVERY_STATE_PENDING;
  if (name == "succeeded") return pb::DELIVERY_STATE_SUCCEEDED;
  if (name == "failed") return pb::DELIVERY_STATE_FAILED;
  if (name == "cancelled") return pb::DELIVERY_STATE_CANCELLED;
  return pb::DELIVERY_STATE_UNSPECIFIED;
}

void DeliveryFromRow(const pqxx::row& r, pb::Delivery* out) {
  out->set_id(r[0].as<std::string>());
  out->set_webhook_id(r[1].as<std::string>());
  out->set_event_id(r[2].as<std::string>());
  out->set_event(r[3].as<std::string>());
  out->set_state(StateFromName(r[4].as<std::string>()));
  out->set_attempt_count(r[5].as<int>());
  SetTime(r[6], out->mutable_create_time());
  // A delivery of an ordered webhook waiting behind an earlier one of its
  // resource has no time of its own (NULL).
  if (out->state() == pb::DELIVERY_STATE_PENDING && !r[7].is_null()) {
    SetTime(r[7], out->mutable_next_attempt_time());
  }
  if (!r[8].is_null()) SetTime(r[8], out->mutable_complete_time());
  if (!r[9].is_null()) out->set_last_http_status(r[9].as<int>());
  if (!r[10].is_null()) out->set_last_error_class(r[10].as<std::string>());
  out->set_webhook_message_id(WebhookMessageId(out->id()));
}

// Runs `body(txn)` in one transaction on a pooled connection
// (pg_transaction.h: committed when it returns OK, rerun after a lost
// connection when safe); libpqxx exceptions become a status there.
template <typename T, typename Body>
absl::StatusOr<T> InTransaction(PgPool* pool, std::string_view operation, bool read_only,
                                Body&& body) {
  absl::StatusOr<T> result = RunInTransaction(
      *pool, {.operation = operation, .read_only = read_only}, std::forward<Body>(body));
  // The statements take only validated ids and our own values: a data or
  // integrity error (class 22/23) is a bug of ours, never the client's
  // ALREADY_EXISTS / INVALID_ARGUMENT / FAILED_PRECONDITION (the last is
  // this store's answer for a disabled webhook).
  if (!result.ok()) return DataErrorsAsInternal(result.status());
  return result;
}

struct WebhookRow {
  bool enabled = false;
  std::string event;
  std::string supplier_id;
};

absl::StatusOr<WebhookRow> LockWebhook(pqxx::work& txn, std::string_view connection_id,
                                       std::string_view webhook_id) {
  const pqxx::result r =
      txn.exec_prepared(kWebhook.name, std::string(webhook_id), std::string(connection_id));
  if (r.empty()) return WebhookNotFound();
  WebhookRow w;
  w.enabled = r[0][0].as<std::string>() == "enabled";
  w.event = r[0][1].as<std::string>();
  w.supplier_id = r[0][2].as<std::string>();
  return w;
}

// The attempt log's scope check: the webhook is the connection's (no lock);
// the transaction's statements after it run with generic plans.
absl::Status WebhookInScope(pqxx::work& txn, std::string_view connection_id,
                            std::string_view webhook_id) {
  const pqxx::result r = txn.exec_prepared(kWebhookInScope.name, std::string(webhook_id),
                                           std::string(connection_id));
  return r.empty() ? WebhookNotFound() : absl::OkStatus();
}

absl::StatusOr<pb::Delivery> ReadDelivery(pqxx::work& txn, std::string_view webhook_id,
                                          std::string_view delivery_id, bool with_attempts) {
  const pqxx::result r =
      txn.exec_prepared(kGet.name, std::string(delivery_id), std::string(webhook_id));
  if (r.empty()) return DeliveryNotFound();
  pb::Delivery delivery;
  DeliveryFromRow(r[0], &delivery);
  if (with_attempts) {
    const std::string created_micros = r[0][6].as<std::string>();
    for (const pqxx::row& a : txn.exec_prepared(kAttempts.name, std::string(delivery_id), created_micros)) {
      pb::DeliveryAttempt* attempt = delivery.add_attempts();
      attempt->set_attempt_number(a[0].as<int>());
      SetTime(a[1], attempt->mutable_start_time());
      attempt->set_duration_ms(a[2].as<double>());
      attempt->set_http_status(a[3].as<int>());
      attempt->set_error_class(a[4].as<std::string>());
      attempt->set_response_snippet(a[5].as<std::string>());
    }
  }
  return delivery;
}

void Notify(pqxx::work& txn) { txn.exec0(absl::StrCat("NOTIFY ", kDeliveriesChannel)); }

}  // namespace

// ----------------------------------------------------------------- cursor --

// "v1:<micros>:<uuid>", base64url: opaque to clients, trivially checked here.
std::string EncodeDeliveryCursor(const DeliveryCursor& cursor) {
  return crypto::Base64UrlEncode(absl::StrCat("v1:", cursor.create_time_micros, ":", cursor.id));
}

absl::StatusOr<DeliveryCursor> DecodeDeliveryCursor(std::string_view token) {
  const auto invalid = [] {
    return absl::InvalidArgumentError("pageToken: not a token from a previous page");
  };
  if (token.empty() || token.size() > 100) return invalid();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(AbslView(token), &raw)) return invalid();
  std::vector<std::string> parts = absl::StrSplit(raw, ':');
  DeliveryCursor cursor;
  if (parts.size() != 3 || parts[0] != "v1" || !IsUuid(parts[2]) ||
      !absl::SimpleAtoi(parts[1], &cursor.create_time_micros)) {
    return invalid();
  }
  // A forged time outside what a delivery can have (1970 .. 9999) would
  // make the query's timestamp arithmetic fail.
  if (cursor.create_time_micros < 0 || cursor.create_time_micros > kMaxCursorMicros) {
    return invalid();
  }
  cursor.id = absl::AsciiStrToLower(parts[2]);
  return cursor;
}

// ----------------------------------------------------------------- store --

absl::StatusOr<std::unique_ptr<PgOperationsStore>> PgOperationsStore::Create(PgPool* pool) {
  // A clash with another store on the same pool: refuse to start rather than
  // fail every request that names the statement.
  if (absl::Status s = pool->RegisterStatements(kStatements); !s.ok()) return s;
  return std::unique_ptr<PgOperationsStore>(new PgOperationsStore(pool));
}

absl::StatusOr<pb::ListDeliveriesResponse> PgOperationsStore::List(
    std::string_view connection_id, std::string_view webhook_id, int page_size,
    const std::optional<DeliveryCursor>& after, const DeliveryFilter& filter) {
  return InTransaction<pb::ListDeliveriesResponse>(
      pool_, kList.name, /*read_only=*/true,
      [&](pqxx::work& txn) -> absl::StatusOr<pb::ListDeliveriesResponse> {
        if (absl::Status s = WebhookInScope(txn, connection_id, webhook_id); !s.ok()) return s;
        const std::string micros = after ? std::to_string(after->create_time_micros) : "";
        const bool unsent = filter.state == "failed" || filter.state == "cancelled";
        const pqxx::result rows = txn.exec_prepared(
            unsent ? kListUnsent.name : kList.name, std::string(webhook_id),
            filter.state.empty() ? nullptr : filter.state.c_str(),
            filter.event.empty() ? nullptr : filter.event.c_str(),
            after ? micros.c_str() : nullptr, after ? after->id.c_str() : nullptr,
            page_size + 1);  // one more: is there a next page?
        pb::ListDeliveriesResponse out;
        const int n = std::min<int>(page_size, static_cast<int>(rows.size()));
        long long last_micros = 0;
        for (int i = 0; i < n; ++i) {
          DeliveryFromRow(rows[i], out.add_deliveries());
          last_micros = rows[i][6].as<long long>();
        }
        if (static_cast<int>(rows.size()) > page_size && n > 0) {
          out.set_next_page_token(
              EncodeDeliveryCursor({last_micros, out.deliveries(n - 1).id()}));
        }
        return out;
      });
}

absl::StatusOr<pb::Delivery> PgOperationsStore::Get(std::string_view connection_id,
                                                    std::string_view webhook_id,
                                                    std::string_view delivery_id) {
  return InTransaction<pb::Delivery>(
      pool_, kGet.name, /*read_only=*/true,
      [&](pqxx::work& txn) -> absl::StatusOr<pb::Delivery> {
        if (absl::Status s = WebhookInScope(txn, connection_id, webhook_id); !s.ok()) return s;
        return ReadDelivery(txn, webhook_id, delivery_id, /*with_attempts=*/true);
      });
}

absl::StatusOr<pb::Delivery> PgOperationsStore::Redeliver(std::string_view connection_id,
                                                          std::string_view webhook_id,
                                                          std::string_view delivery_id) {
  return InTransaction<pb::Delivery>(
      pool_, kRedeliver.name, /*read_only=*/false,
      [&](pqxx::work& txn) -> absl::StatusOr<pb::Delivery> {
        absl::StatusOr<WebhookRow> w = LockWebhook(txn, connection_id, webhook_id);
        if (!w.ok()) return w.status();
        txn.exec_prepared(kLockForRedeliver.name, std::string(delivery_id), std::string(webhook_id));
        // Ownership first: a delivery of another webhook is NOT_FOUND, even
        // when this webhook is disabled.
        const pqxx::result r =
            txn.exec_prepared(kRedeliver.name, std::string(delivery_id), std::string(webhook_id));
        if (r.empty()) return DeliveryNotFound();
        if (!w->enabled) return WebhookDisabled();  // rolls the update back
        const std::string ordered = r[0][1].as<std::string>();
        if (!ordered.empty()) PromoteHeads(txn, absl::StrCat("{", ordered, "}"));
        Notify(txn);
        return ReadDelivery(txn, webhook_id, delivery_id, /*with_attempts=*/false);
      });
}

absl::StatusOr<pb::ReplayDeliveriesResponse> PgOperationsStore::Replay(
    std::string_view connection_id, std::string_view webhook_id, absl::Time since,
    int max_count) {
  return InTransaction<pb::ReplayDeliveriesResponse>(
      pool_, kReplay.name, /*read_only=*/false,
      [&](pqxx::work& txn) -> absl::StatusOr<pb::ReplayDeliveriesResponse> {
        absl::StatusOr<WebhookRow> w = LockWebhook(txn, connection_id, webhook_id);
        if (!w.ok()) return w.status();
        if (!w->enabled) return WebhookDisabled();
        const long long since_us = absl::ToUnixMicros(since);
        pb::ReplayDeliveriesResponse out;
        txn.exec_prepared(kLockForReplay.name, std::string(webhook_id), since_us, max_count);
        const pqxx::row queued =
            txn.exec_prepared1(kReplay.name, std::string(webhook_id), since_us, max_count);
        out.set_queued_count(queued[0].as<int>());
        PromoteHeads(txn, queued[1].as<std::string>());
        out.set_more(
            txn.exec_prepared1(kReplayMore.name, std::string(webhook_id), since_us)[0].as<bool>());
        if (out.queued_count() > 0) Notify(txn);
        return out;
      });
}

absl::StatusOr<pb::Delivery> PgOperationsStore::SendTest(std::string_view connection_id,
                                                         std::string_view webhook_id) {
  return InTransaction<pb::Delivery>(
      pool_, kInsertTest.name, /*read_only=*/false,
      [&](pqxx::work& txn) -> absl::StatusOr<pb::Delivery> {
        absl::StatusOr<WebhookRow> w = LockWebhook(txn, connection_id, webhook_id);
        if (!w.ok()) return w.status();
        if (!w->enabled) return WebhookDisabled();
        // booking_update -> booking, ..., availability_update -> availability.
        const std::string kind = w->event.substr(0, w->event.find('_'));
        boost::json::object resource;
        resource["test"] = true;
        resource["message"] =
            "A test delivery of octo-webhooks, sent on request; no resource changed.";
        resource["requestedAt"] =
            absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
        const pqxx::row r =
            txn.exec_prepared1(kInsertTest.name, w->supplier_id, std::string(connection_id), kind,
                               boost::json::serialize(resource), std::string(webhook_id));
        const std::string delivery_id = r[0].as<std::string>();
        Notify(txn);
        return ReadDelivery(txn, webhook_id, delivery_id, /*with_attempts=*/false);
      });
}

}  // namespace octo::delivery
