#include "services/common/migrations.h"

#include <memory>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "services/common/log.h"
#include "services/common/pg_status.h"

namespace octo {

absl::Status ApplyMigrations(const std::string& conninfo, const std::vector<Migration>& migrations,
                             long long advisory_lock_key, const PgConnectionOptions& options) {
  for (std::size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version <= migrations[i - 1].version) {
      return absl::InternalError("migrations are not sorted by version");
    }
  }
  PgConnectionOptions unbounded = options;
  unbounded.statement_timeout = absl::ZeroDuration();
  unbounded.lock_timeout = absl::ZeroDuration();
  absl::StatusOr<std::string> full = PgConninfo(conninfo, unbounded);
  if (!full.ok()) return full.status();
  absl::StatusOr<std::unique_ptr<pqxx::connection>> opened = OpenPgConnection(*full);
  if (!opened.ok()) return opened.status();
  pqxx::connection& conn = **opened;
  try {
    {
      // A session-level lock: held across the per-migration transactions and
      // released when the connection closes, even if this process dies.
      pqxx::nontransaction lock_tx(conn);
      lock_tx.exec_params("SELECT pg_advisory_lock($1)", advisory_lock_key);
    }
    {
      pqxx::work tx(conn);
      tx.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version integer PRIMARY KEY,"
          " name text NOT NULL,"
          " applied_at timestamptz NOT NULL DEFAULT now())");
      tx.commit();
    }
    int current = 0;
    {
      pqxx::work tx(conn);
      current = tx.exec1("SELECT COALESCE(max(version), 0) FROM schema_migrations")[0].as<int>();
      tx.commit();
    }
    for (const auto& migration : migrations) {
      if (migration.version <= current) continue;
      pqxx::work tx(conn);
      tx.exec(migration.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", migration.version,
                     migration.name);
      tx.commit();
      log::Info("migration applied", {{"version", std::to_string(migration.version)}, {"name", migration.name}});
    }
    pqxx::nontransaction unlock_tx(conn);
    unlock_tx.exec_params("SELECT pg_advisory_unlock($1)", advisory_lock_key);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return PgErrorToStatus("apply migrations", e);
  }
}

}  // namespace octo
