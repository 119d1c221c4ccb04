#pragma once
// The one table from PostgreSQL errors to absl::Status, for every store.
//
// The code says how the caller should react, following absl/status/status.h:
//   UNAVAILABLE          transient: the connection is gone or the server is
//                        shutting down, starting, out of connections or
//                        memory; a statement or lock wait timed out (57014,
//                        55P03). Retry later; nothing was committed, except
//                        for a commit whose outcome is unknown (see
//                        IsCommitInDoubt).
//   ABORTED              transient: serialization failure or deadlock (class
//                        40); rerun the whole transaction.
//   ALREADY_EXISTS       unique violation (23505).
//   FAILED_PRECONDITION  foreign-key violation (23503): a referenced row is
//                        missing.
//   INVALID_ARGUMENT     other integrity (23) and data (22) errors: a value
//                        the schema refuses.
//   RESOURCE_EXHAUSTED   the project's own OW001 (a webhook cap reached).
//   INTERNAL             everything else (syntax, undefined objects, ...): a
//                        bug of ours; logged with the SQLSTATE.
// Transient vs permanent is decided here and nowhere else: IsTransient().
//
// Messages name the operation and the SQLSTATE, never PostgreSQL's text,
// whose DETAIL can quote whole rows (secrets, header values, credentials).
// The SQLSTATE is also attached as a payload (SqlstateOf) so a store can word
// its own message for one case (e.g. 23503 -> "connectionId: no such
// connection") without a second mapping.
#include <exception>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace octo {

// The status code of a SQLSTATE (five characters; anything else: INTERNAL).
absl::StatusCode StatusCodeForSqlstate(std::string_view sqlstate);

// True for the codes worth retrying later: UNAVAILABLE, ABORTED,
// DEADLINE_EXCEEDED (the last never comes from the table; a caller's own
// deadline may produce it).
bool IsTransient(const absl::Status& status);

// The status for an exception caught around libpqxx calls of `operation`
// (a constant of the caller, e.g. a statement name). Broken connections and
// lost commits are UNAVAILABLE; a lost commit is also marked (IsCommitInDoubt).
absl::Status PgErrorToStatus(std::string_view operation, const std::exception& e);

// The SQLSTATE that produced `status`, or "" when it did not come from
// PgErrorToStatus with a SQL error.
std::string SqlstateOf(const absl::Status& status);

// True when the connection was lost during COMMIT: the transaction may or may
// not have been committed. Rerun only what is idempotent.
bool IsCommitInDoubt(const absl::Status& status);

// True when, after `e`, the connection cannot be used again (lost socket,
// server shutdown, backend terminated, session timeout): the pool must drop it.
bool IsConnectionLost(const std::exception& e);

}  // namespace octo
