#pragma once
// Named prepared statements, declared once by each store and registered with
// its pool, which defines them on every connection it opens. libpqxx then
// prepares each on the server at its first use on that connection, and after
// a reconnect prepares it again: callers only ever name it.
//
// Example:
//   constexpr PgStatement kSelectWebhook{"select_webhook", "SELECT ... WHERE id = $1"};
//   constexpr PgStatement kStatements[] = {kSelectWebhook, ...};
//   RETURN_IF_ERROR(pool->RegisterStatements(kStatements));
//   ... txn.exec_prepared(kSelectWebhook.name, id) ...
#include <cstddef>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "absl/status/status.h"

namespace octo {

struct PgStatement {
  const char* name;  // also the operation's label in logs and metrics
  const char* sql;
};

// The statements of every store sharing one pool. Thread-safe.
class PgStatementRegistry {
 public:
  // Adds `statements`. Adding a name again with the same SQL is a no-op (two
  // stores on one pool may share a statement); with different SQL it is
  // INTERNAL and nothing is added.
  absl::Status Add(std::span<const PgStatement> statements);

  // Defines on `conn` the statements added since it was last brought up to
  // date; `*defined` is how many it has (0 for a new connection) and is
  // updated. No round trip: libpqxx prepares lazily.
  void DefineNew(pqxx::connection_base& conn, std::size_t* defined) const;

  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::vector<PgStatement> statements_;  // append-only
};

}  // namespace octo
