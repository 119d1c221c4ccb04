#include "services/common/pg_status.h"

#include <optional>

#include <pqxx/except>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/log.h"
#include "services/common/strings.h"

namespace octo {
namespace {

constexpr char kSqlstatePayload[] = "type.octo.dev/pg.sqlstate";
constexpr char kInDoubtPayload[] = "type.octo.dev/pg.commit_in_doubt";

struct Row {
  std::string_view prefix;  // a whole SQLSTATE or its class (two characters)
  absl::StatusCode code;
};

// Most specific first: the first row whose prefix matches wins.
constexpr Row kTable[] = {
    {"OW001", absl::StatusCode::kResourceExhausted},  // webhooks_enforce_cap
    {"23505", absl::StatusCode::kAlreadyExists},      // unique_violation
    {"23503", absl::StatusCode::kFailedPrecondition},  // foreign_key_violation
    {"23", absl::StatusCode::kInvalidArgument},        // integrity constraint violation
    {"22", absl::StatusCode::kInvalidArgument},        // data exception
    {"40", absl::StatusCode::kAborted},                // serialization failure, deadlock
    {"57014", absl::StatusCode::kUnavailable},         // query_canceled: statement_timeout
    {"55P03", absl::StatusCode::kUnavailable},         // lock_not_available: lock_timeout
    {"25P03", absl::StatusCode::kUnavailable},         // idle_in_transaction_session_timeout
    {"57P", absl::StatusCode::kUnavailable},           // admin/crash shutdown, starting up
    {"08", absl::StatusCode::kUnavailable},            // connection exception
    {"53", absl::StatusCode::kUnavailable},            // insufficient resources
    {"58", absl::StatusCode::kUnavailable},            // system error (I/O)
};

// After these the server has closed the session (FATAL) or never had one.
constexpr std::string_view kLostPrefixes[] = {"08", "57P", "25P03"};

std::string SqlstateOfException(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) return sql->sqlstate();
  return "";
}

}  // namespace

absl::StatusCode StatusCodeForSqlstate(std::string_view sqlstate) {
  if (sqlstate.size() != 5) return absl::StatusCode::kInternal;
  for (const Row& row : kTable) {
    if (absl::StartsWith(AbslView(sqlstate), AbslView(row.prefix))) return row.code;
  }
  return absl::StatusCode::kInternal;
}

bool IsTransient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsAborted(status) ||
         absl::IsDeadlineExceeded(status);
}

bool IsConnectionLost(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return true;
  }
  const std::string state = SqlstateOfException(e);
  for (std::string_view prefix : kLostPrefixes) {
    if (absl::StartsWith(state, AbslView(prefix))) return true;
  }
  return false;
}

absl::Status PgErrorToStatus(std::string_view operation, const std::exception& e) {
  const absl::string_view op = AbslView(operation);
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat(op, ": the connection was lost during the commit; its outcome is unknown"));
    s.SetPayload(kInDoubtPayload, absl::Cord("1"));
    return s;
  }
  const std::string state = SqlstateOfException(e);
  if (state.empty()) {
    if (IsConnectionLost(e)) {
      return absl::UnavailableError(absl::StrCat(op, ": database connection lost"));
    }
    if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
      return absl::AbortedError(absl::StrCat(op, ": transaction aborted, retry"));
    }
    log::Error("unexpected error around a database call", {{"operation", operation}});
    return absl::InternalError(absl::StrCat(op, ": unexpected error"));
  }
  const absl::StatusCode code = StatusCodeForSqlstate(state);
  std::string what;
  switch (code) {
    case absl::StatusCode::kUnavailable: what = "database unavailable or timed out"; break;
    case absl::StatusCode::kAborted: what = "transaction aborted, retry"; break;
    case absl::StatusCode::kAlreadyExists: what = "already exists"; break;
    case absl::StatusCode::kFailedPrecondition: what = "a referenced row does not exist"; break;
    case absl::StatusCode::kInvalidArgument: what = "rejected by a database constraint"; break;
    case absl::StatusCode::kResourceExhausted: what = "limit reached"; break;
    default:
      what = "database error";
      // Class 42 (syntax, undefined objects) names SQL, not data: worth
      // logging whole for whoever fixes the statement. Other messages may
      // quote row values, so only the SQLSTATE is logged.
      if (absl::StartsWith(state, "42")) {
        log::Error("database statement error",
                   {{"operation", operation}, {"sqlstate", state}, {"error", e.what()}});
      } else {
        log::Error("database error", {{"operation", operation}, {"sqlstate", state}});
      }
  }
  absl::Status s(code, absl::StrCat(op, ": ", what, " (SQLSTATE ", state, ")"));
  s.SetPayload(kSqlstatePayload, absl::Cord(state));
  return s;
}

std::string SqlstateOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kSqlstatePayload);
  return payload ? std::string(*payload) : std::string();
}

bool IsCommitInDoubt(const absl::Status& status) {
  return status.GetPayload(kInDoubtPayload).has_value();
}

}  // namespace octo
