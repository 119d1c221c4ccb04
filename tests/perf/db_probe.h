#pragma once
// What the benchmark reads from PostgreSQL: counts of the delivery tables,
// the server's settings and pg_stat_statements.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace octo::perf {

struct DbCounts {
  std::int64_t attempts = 0;
  std::int64_t ok_attempts = 0;  // http_status 2xx
  std::int64_t deliveries = 0;
  std::int64_t succeeded = 0;
  std::int64_t pending = 0;
  std::int64_t failed = 0;
  std::int64_t events = 0;
};

// One line of pg_stat_statements: where PostgreSQL spent its time.
struct StatementStat {
  std::int64_t calls = 0;
  double total_ms = 0;  // execution time, all calls (COMMIT includes the WAL flush)
  double mean_ms = 0;
  std::int64_t rows = 0;
  // Per call: shared buffers found in / read into shared_buffers, and the
  // WAL written (full-page images and bytes): what makes a statement's cost
  // grow with the size of the tables (PostgreSQL 13 and later).
  double blks_hit = 0;
  double blks_read = 0;
  double wal_fpi = 0;
  double wal_kb = 0;
  std::string query;  // whitespace collapsed, cut to 160 characters
};

// Reads the delivery tables. Not thread-safe.
//
// Whole tables by default. ScopeTo(webhooks) narrows every count to the
// deliveries of those webhooks created since the last StartPhase() (and their
// attempts and events): a poll then costs the same on an empty database as on
// one holding millions of older rows, so that the benchmark's own probe does
// not slow down with the data it is there to measure.
class DbProbe {
 public:
  static absl::StatusOr<std::unique_ptr<DbProbe>> Connect(const std::string& conninfo);
  ~DbProbe();
  absl::StatusOr<std::int64_t> CountAttempts();
  absl::StatusOr<DbCounts> Counts();
  // Empty: whole tables again.
  void ScopeTo(std::vector<std::string> webhook_ids);
  bool scoped() const { return !scope_webhooks_.empty(); }
  // Scoped: from now on (the database's clock) counts start at zero. Whole
  // tables: nothing to do.
  absl::Status StartPhase();
  // This connection's server process (pg_backend_pid()).
  absl::StatusOr<int> BackendPid();
  // "fsync=on synchronous_commit=on shared_buffers=128MB ...", for the report.
  absl::StatusOr<std::string> Settings();
  // pg_stat_statements, when the server preloads it (scripts/bench.sh does):
  // FAILED_PRECONDITION otherwise. Reset zeroes it for this database.
  absl::Status ResetStatements();
  absl::StatusOr<std::vector<StatementStat>> TopStatements(int n);

 private:
  struct Conn;  // a pqxx::connection (a typedef in libpqxx 6: not declarable here)
  explicit DbProbe(std::unique_ptr<Conn> c);
  std::unique_ptr<Conn> conn_;
  std::optional<std::string> attempt_key_;  // see AttemptKey
  std::string scope_webhooks_;  // a uuid[] literal, "" when unscoped
  std::string scope_since_;     // timestamptz text
};


}  // namespace octo::perf
