#include "services/subscription/operator_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/crypto.h"
#include "services/common/pg_status.h"
#include "services/common/pg_transaction.h"
#include "services/common/validation.h"

namespace octo::subscription {
namespace {

constexpr const char* kOperatorColumns =
    "o.id::text, o.supplier_id::text, s.name, o.name, "
    "(extract(epoch FROM o.created_at) * 1000000)::bigint";
constexpr const char* kOperatorFrom = " FROM operators o JOIN suppliers s ON s.id = o.supplier_id ";

OperatorRecord OperatorFromRow(const pqxx::row& r) {
  return {r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(), r[3].as<std::string>(),
          absl::FromUnixMicros(r[4].as<long long>())};
}

std::string Hex(std::string_view bytes) { return crypto::HexEncode(bytes); }

// Runs `body` in one transaction (RunInTransaction: the one SQLSTATE table,
// reruns after a deadlock or a connection lost before the commit; a commit
// in doubt is UNKNOWN). A taken unique name reads ALREADY_EXISTS, a missing
// referenced row NOT_FOUND.
template <typename T, typename Body>
absl::StatusOr<T> Run(PgPool* pool, std::string_view operation, Body&& body) {
  absl::StatusOr<T> result =
      RunInTransaction(*pool, {.operation = operation}, std::forward<Body>(body));
  if (result.ok()) return result;
  const std::string state = SqlstateOf(result.status());
  if (state == "23505") return absl::AlreadyExistsError("name: an operator with this name already exists");
  if (state == "23503") return absl::NotFoundError("supplierId: no such supplier");
  return result;
}

}  // namespace

absl::StatusOr<OperatorRecord> OperatorStore::CreateOperator(std::string_view supplier_id, std::string_view name,
                                                             std::string_view password_hash) {
  if (!IsUuid(supplier_id)) return absl::NotFoundError("supplierId: no such supplier");
  return Run<OperatorRecord>(pool_, "create_operator", [&](pqxx::work& txn) -> absl::StatusOr<OperatorRecord> {
    const pqxx::result r = txn.exec_params(
        absl::StrCat("WITH o AS (INSERT INTO operators (supplier_id, name, password_hash) "
                     "VALUES ($1, $2, decode($3, 'hex')) RETURNING *) SELECT ",
                     kOperatorColumns, " FROM o JOIN suppliers s ON s.id = o.supplier_id"),
        std::string(supplier_id), std::string(name), Hex(password_hash));
    if (r.empty()) return absl::NotFoundError("supplierId: no such supplier");
    return OperatorFromRow(r[0]);
  });
}

absl::StatusOr<std::vector<OperatorRecord>> OperatorStore::ListOperators(std::string_view supplier_id) {
  if (!IsUuid(supplier_id)) return absl::NotFoundError("supplierId: no such supplier");
  using Out = std::vector<OperatorRecord>;
  return Run<Out>(pool_, "list_operators", [&](pqxx::work& txn) -> absl::StatusOr<Out> {
    const pqxx::result r = txn.exec_params(
        absl::StrCat("SELECT ", kOperatorColumns, kOperatorFrom, "WHERE o.supplier_id = $1 ORDER BY o.created_at, o.id"),
        std::string(supplier_id));
    Out out;
    for (const auto& row : r) out.push_back(OperatorFromRow(row));
    return out;
  });
}

absl::StatusOr<OperatorRecord> OperatorStore::DeleteOperator(std::string_view operator_id) {
  if (!IsUuid(operator_id)) return absl::NotFoundError("no such operator");
  return Run<OperatorRecord>(pool_, "delete_operator", [&](pqxx::work& txn) -> absl::StatusOr<OperatorRecord> {
    const pqxx::result r = txn.exec_params(
        absl::StrCat("WITH o AS (DELETE FROM operators WHERE id = $1 RETURNING *) SELECT ", kOperatorColumns,
                     " FROM o JOIN suppliers s ON s.id = o.supplier_id"),
        std::string(operator_id));
    if (r.empty()) return absl::NotFoundError("no such operator");
    return OperatorFromRow(r[0]);
  });
}

absl::StatusOr<OperatorRecord> OperatorStore::CheckLogin(std::string_view name, std::string_view password_hash) {
  return Run<OperatorRecord>(pool_, "check_operator_login", [&](pqxx::work& txn) -> absl::StatusOr<OperatorRecord> {
    const pqxx::result r = txn.exec_params(
        absl::StrCat("SELECT ", kOperatorColumns, ", encode(o.password_hash, 'hex')", kOperatorFrom,
                     "WHERE o.name = $1"),
        std::string(name));
    const std::string given = Hex(password_hash);
    // Compared in constant time; an unknown name compares against itself so
    // both mistakes take the same path.
    const std::string stored = r.empty() ? std::string(given.size(), '-') : r[0][5].as<std::string>();
    if (!crypto::ConstantTimeEquals(stored, given) || r.empty()) {
      return absl::UnauthenticatedError("wrong name or password");
    }
    return OperatorFromRow(r[0]);
  });
}

absl::Status OperatorStore::CreateSession(std::string_view operator_id, std::string_view token_hash,
                                          std::string_view csrf_token, absl::Time expire_time) {
  return Run<bool>(pool_, "create_operator_session", [&](pqxx::work& txn) -> absl::StatusOr<bool> {
           txn.exec("DELETE FROM operator_sessions WHERE expires_at < now()");
           txn.exec_params(
               "INSERT INTO operator_sessions (token_hash, operator_id, csrf_token, expires_at) "
               "VALUES (decode($1, 'hex'), $2, $3, to_timestamp($4::double precision / 1000000))",
               Hex(token_hash), std::string(operator_id), std::string(csrf_token),
               static_cast<long long>(absl::ToUnixMicros(expire_time)));
           return true;
         })
      .status();
}

absl::StatusOr<SessionRecord> OperatorStore::GetSession(std::string_view token_hash) {
  return Run<SessionRecord>(pool_, "get_operator_session", [&](pqxx::work& txn) -> absl::StatusOr<SessionRecord> {
    const pqxx::result r = txn.exec_params(
        absl::StrCat("SELECT ", kOperatorColumns,
                     ", x.csrf_token, (extract(epoch FROM x.expires_at) * 1000000)::bigint "
                     "FROM operator_sessions x JOIN operators o ON o.id = x.operator_id "
                     "JOIN suppliers s ON s.id = o.supplier_id "
                     "WHERE x.token_hash = decode($1, 'hex') AND x.expires_at > now()"),
        Hex(token_hash));
    if (r.empty()) return absl::UnauthenticatedError("no session, or it has expired");
    return SessionRecord{OperatorFromRow(r[0]), r[0][5].as<std::string>(),
                         absl::FromUnixMicros(r[0][6].as<long long>())};
  });
}

absl::Status OperatorStore::DeleteSession(std::string_view token_hash) {
  return Run<bool>(pool_, "delete_operator_session", [&](pqxx::work& txn) -> absl::StatusOr<bool> {
           txn.exec_params("DELETE FROM operator_sessions WHERE token_hash = decode($1, 'hex')", Hex(token_hash));
           return true;
         })
      .status();
}

absl::StatusOr<std::vector<ConnectionSummary>> OperatorStore::ListConnections(std::string_view supplier_id) {
  using Out = std::vector<ConnectionSummary>;
  if (!IsUuid(supplier_id)) return Out{};
  return Run<Out>(pool_, "list_supplier_connections", [&](pqxx::work& txn) -> absl::StatusOr<Out> {
    const pqxx::result r = txn.exec_params(
        "SELECT c.id::text, c.name, coalesce(c.max_webhooks, 0), "
        "(extract(epoch FROM c.created_at) * 1000000)::bigint, "
        "(SELECT count(*) FROM webhooks w WHERE w.connection_id = c.id) "
        "FROM connections c WHERE c.supplier_id = $1 ORDER BY c.created_at, c.id",
        std::string(supplier_id));
    Out out;
    for (const auto& row : r) {
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<int>(),
                     absl::FromUnixMicros(row[3].as<long long>()), row[4].as<int>()});
    }
    return out;
  });
}

absl::StatusOr<std::vector<WebhookRef>> OperatorStore::ListWebhooks(std::string_view supplier_id,
                                                                    const WebhookFilter& filter) {
  using Out = std::vector<WebhookRef>;
  if (!IsUuid(supplier_id) || (!filter.connection_id.empty() && !IsUuid(filter.connection_id))) return Out{};
  return Run<Out>(pool_, "list_supplier_webhooks", [&](pqxx::work& txn) -> absl::StatusOr<Out> {
    const pqxx::result r = txn.exec_params(
        "SELECT w.id::text, c.id::text, c.name FROM webhooks w JOIN connections c ON c.id = w.connection_id "
        "WHERE c.supplier_id = $1 AND ($2 = '' OR c.id::text = $2) AND ($3 = '' OR w.event = $3) "
        "AND ($4 = '' OR w.status = $4) ORDER BY w.created_at, w.id LIMIT 1000",
        std::string(supplier_id), filter.connection_id, filter.event, filter.status);
    Out out;
    for (const auto& row : r) out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()});
    return out;
  });
}

absl::StatusOr<WebhookRef> OperatorStore::ResolveWebhook(std::string_view supplier_id, std::string_view webhook_id) {
  if (!IsUuid(supplier_id) || !IsUuid(webhook_id)) return absl::NotFoundError("no such webhook");
  return Run<WebhookRef>(pool_, "resolve_supplier_webhook", [&](pqxx::work& txn) -> absl::StatusOr<WebhookRef> {
    const pqxx::result r = txn.exec_params(
        "SELECT w.id::text, c.id::text, c.name FROM webhooks w JOIN connections c ON c.id = w.connection_id "
        "WHERE w.id = $1 AND c.supplier_id = $2",
        std::string(webhook_id), std::string(supplier_id));
    if (r.empty()) return absl::NotFoundError("no such webhook");
    return WebhookRef{r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::string>()};
  });
}

absl::StatusOr<std::map<std::string, HealthCounts>> OperatorStore::Health(const std::vector<std::string>& ids) {
  using Out = std::map<std::string, HealthCounts>;
  Out out;
  for (const std::string& id : ids) {
    if (!IsUuid(id)) return absl::InvalidArgumentError("not a webhook id");
    out[id];
  }
  if (ids.empty()) return out;
  const std::string array = absl::StrCat("{", absl::StrJoin(ids, ","), "}");
  return Run<Out>(pool_, "webhook_health", [&](pqxx::work& txn) -> absl::StatusOr<Out> {
    // Success as the dispatcher counts it: a 2xx answer. The attempts are
    // found through their deliveries (no index on the attempts' start
    // time: it would cost every delivery a write): those created or
    // requeued within the lookback, which covers every attempt that can
    // start in the window (octo-delivery refuses a retry configuration
    // that could outlast it). The pending count comes from the same rows.
    // Each delivery's attempts are looked up with their partition key (its
    // created_at), so a look-up reads one week's index, not every week's.
    const pqxx::result r = txn.exec_params(
        "WITH recent AS ("
        "  SELECT id, webhook_id, state, created_at FROM deliveries WHERE webhook_id = ANY($1::uuid[])"
        "    AND created_at > now() - make_interval(hours => $2)"
        "  UNION SELECT id, webhook_id, state, created_at FROM deliveries WHERE webhook_id = ANY($1::uuid[])"
        "    AND requeued_at > now() - make_interval(hours => $2))"
        " SELECT webhook_id::text, -1, count(*), 0 FROM recent WHERE state = 'pending' GROUP BY 1"
        " UNION ALL"
        " SELECT r.webhook_id::text, floor(extract(epoch FROM now() - a.started_at) / 3600)::int, "
        "count(*) FILTER (WHERE a.http_status BETWEEN 200 AND 299), "
        "count(*) FILTER (WHERE a.http_status IS NULL OR a.http_status NOT BETWEEN 200 AND 299) "
        "FROM recent r JOIN delivery_attempts a ON a.delivery_id = r.id"
        " AND a.delivery_created_at = r.created_at "
        "WHERE a.started_at > now() - make_interval(hours => $3) "
        "GROUP BY 1, 2",
        array, kHealthLookbackHours, kHealthWindowHours);
    for (const auto& row : r) {
      HealthCounts& h = out[row[0].as<std::string>()];
      const int ago = row[1].as<int>();
      if (ago == -1) {
        h.pending = row[2].as<int>();
      } else if (ago >= 0 && ago < kHealthWindowHours) {
        h.succeeded[ago] += row[2].as<int>();
        h.failed[ago] += row[3].as<int>();
      }
    }
    return out;
  });
}

}  // namespace octo::subscription
