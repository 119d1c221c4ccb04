#pragma once
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/common/pg_connection.h"

namespace octo {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// Applies every migration newer than the database's schema version, each in
// its own transaction, under a session advisory lock so replicas starting
// together apply them exactly once. Migrations must be sorted by version.
// The connection has the connect, keepalive and idle-in-transaction limits
// of `options` but no statement or lock timeout: a migration may rewrite a
// large table, and a replica waits its turn for the advisory lock while
// another applies them.
absl::Status ApplyMigrations(const std::string& conninfo, const std::vector<Migration>& migrations,
                             long long advisory_lock_key,
                             const PgConnectionOptions& options = PgConnectionOptions{});

}  // namespace octo
