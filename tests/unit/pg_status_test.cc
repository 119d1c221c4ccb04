// The SQLSTATE -> absl::Status table and the exception mapping, without a
// server: libpqxx's exception types are constructed directly.
#include "services/common/pg_status.h"

#include <gtest/gtest.h>
#include <pqxx/except>

namespace octo {
namespace {

using absl::StatusCode;

TEST(PgStatusTable, MapsEachClassToTheCodeThatSaysHowToRetry) {
  const struct {
    const char* sqlstate;
    StatusCode code;
  } cases[] = {
      {"40001", StatusCode::kAborted},             // serialization_failure
      {"40P01", StatusCode::kAborted},             // deadlock_detected
      {"57014", StatusCode::kUnavailable},         // statement_timeout
      {"55P03", StatusCode::kUnavailable},         // lock_timeout
      {"25P03", StatusCode::kUnavailable},         // idle_in_transaction timeout
      {"57P01", StatusCode::kUnavailable},         // admin_shutdown (terminated)
      {"57P03", StatusCode::kUnavailable},         // cannot_connect_now
      {"08006", StatusCode::kUnavailable},         // connection_failure
      {"53300", StatusCode::kUnavailable},         // too_many_connections
      {"23505", StatusCode::kAlreadyExists},       // unique_violation
      {"23503", StatusCode::kFailedPrecondition},  // foreign_key_violation
      {"23514", StatusCode::kInvalidArgument},     // check_violation
      {"23502", StatusCode::kInvalidArgument},     // not_null_violation
      {"22P02", StatusCode::kInvalidArgument},     // invalid_text_representation
      {"OW001", StatusCode::kResourceExhausted},   // webhooks_enforce_cap
      {"42P01", StatusCode::kInternal},            // undefined_table: our bug
      {"42601", StatusCode::kInternal},            // syntax_error
      {"XX000", StatusCode::kInternal},            // internal_error
      {"", StatusCode::kInternal},
      {"4000", StatusCode::kInternal},  // not a SQLSTATE
  };
  for (const auto& c : cases) {
    EXPECT_EQ(StatusCodeForSqlstate(c.sqlstate), c.code) << c.sqlstate;
  }
}

TEST(PgStatusTable, TransientIsDecidedByTheCodeAlone) {
  EXPECT_TRUE(IsTransient(absl::UnavailableError("x")));
  EXPECT_TRUE(IsTransient(absl::AbortedError("x")));
  EXPECT_TRUE(IsTransient(absl::DeadlineExceededError("x")));
  EXPECT_FALSE(IsTransient(absl::OkStatus()));
  EXPECT_FALSE(IsTransient(absl::InternalError("x")));
  EXPECT_FALSE(IsTransient(absl::AlreadyExistsError("x")));
  EXPECT_FALSE(IsTransient(absl::InvalidArgumentError("x")));
  EXPECT_FALSE(IsTransient(absl::ResourceExhaustedError("x")));
  // Every timeout the connections carry is transient.
  for (const char* state : {"57014", "55P03", "25P03", "40001", "40P01"}) {
    EXPECT_TRUE(IsTransient(absl::Status(StatusCodeForSqlstate(state), "x"))) << state;
  }
}

TEST(PgErrorToStatus, NamesOperationAndSqlstateButNeverTheServersText) {
  const pqxx::sql_error e(
      "ERROR: new row violates check constraint\nDETAIL: Failing row contains (secret-value)",
      "INSERT ...", "23514");
  const absl::Status s = PgErrorToStatus("insert_webhook", e);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("insert_webhook"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("23514"), absl::string_view::npos) << s;
  EXPECT_EQ(s.message().find("secret-value"), absl::string_view::npos) << s;
  EXPECT_EQ(SqlstateOf(s), "23514");
  EXPECT_FALSE(IsCommitInDoubt(s));
}

TEST(PgErrorToStatus, LostConnectionsAndCommitsInDoubt) {
  const pqxx::broken_connection lost("server closed the connection unexpectedly");
  EXPECT_TRUE(IsConnectionLost(lost));
  const absl::Status s = PgErrorToStatus("select_webhook", lost);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(IsCommitInDoubt(s));
  EXPECT_EQ(SqlstateOf(s), "");

  const pqxx::in_doubt_error doubt("connection lost during commit");
  EXPECT_TRUE(IsConnectionLost(doubt));
  const absl::Status d = PgErrorToStatus("enqueue", doubt);
  EXPECT_EQ(d.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(IsCommitInDoubt(d));

  // A backend terminated by the server, or a session ended for idling in a
  // transaction, cannot be used again; a statement timeout leaves it usable.
  EXPECT_TRUE(IsConnectionLost(pqxx::sql_error("terminating connection", "", "57P01")));
  EXPECT_TRUE(IsConnectionLost(pqxx::sql_error("idle in transaction", "", "25P03")));
  EXPECT_FALSE(IsConnectionLost(pqxx::sql_error("canceling statement", "", "57014")));
  EXPECT_FALSE(IsConnectionLost(pqxx::sql_error("lock timeout", "", "55P03")));
}

TEST(PgErrorToStatus, OtherExceptionsAreInternal) {
  const absl::Status s = PgErrorToStatus("list", std::runtime_error("boom"));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message().find("boom"), absl::string_view::npos);
  EXPECT_EQ(PgErrorToStatus("x", pqxx::deadlock_detected("d")).code(), StatusCode::kAborted);
}

}  // namespace
}  // namespace octo
