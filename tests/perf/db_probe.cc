#include "tests/perf/db_probe.h"

#include <exception>
#include <utility>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace octo::perf {

struct DbProbe::Conn {
  explicit Conn(const std::string& conninfo) : c(conninfo) {}
  pqxx::connection c;
};

DbProbe::DbProbe(std::unique_ptr<Conn> c) : conn_(std::move(c)) {}
DbProbe::~DbProbe() = default;

absl::StatusOr<std::unique_ptr<DbProbe>> DbProbe::Connect(const std::string& conninfo) {
  try {
    return std::unique_ptr<DbProbe>(new DbProbe(std::make_unique<Conn>(conninfo)));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("PostgreSQL: ", e.what()));
  }
}

void DbProbe::ScopeTo(std::vector<std::string> webhook_ids) {
  scope_webhooks_ = webhook_ids.empty() ? "" : absl::StrCat("{", absl::StrJoin(webhook_ids, ","), "}");
  scope_since_ = "-infinity";
}

absl::Status DbProbe::StartPhase() {
  if (!scoped()) return absl::OkStatus();
  try {
    pqxx::nontransaction tx(conn_->c);
    scope_since_ = tx.exec1("SELECT now()::text")[0].c_str();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("phase start: ", e.what()));
  }
}

// The scope's deliveries (an index range scan of deliveries_webhook_created_idx)
// and each one's attempts counted through the attempts' primary key: the
// cost follows the phase's deliveries, never the size of the tables. The
// attempts are looked up with their partition key (the delivery's
// created_at, when the schema has it) so that each look-up reads the index
// of one weekly partition, not of every week stored: without it each
// delivery probed all of them and a poll took 5.5 s at 10 million attempt
// rows instead of 1.4 s on the empty database.
#define OCTO_BENCH_SCOPED_DELIVERIES(attempt_key)                                           \
  "WITH d AS MATERIALIZED (SELECT id, event_id, state, created_at FROM deliveries"          \
  " WHERE webhook_id = ANY($1::uuid[]) AND created_at >= $2::timestamptz),"                 \
  " da AS (SELECT d.*, a.n, a.ok FROM d CROSS JOIN LATERAL (SELECT count(*) AS n,"          \
  "  count(*) FILTER (WHERE http_status BETWEEN 200 AND 299) AS ok"                         \
  "  FROM delivery_attempts WHERE delivery_id = d.id", attempt_key, ") AS a)"

// " AND delivery_created_at = d.created_at" when delivery_attempts has the
// column (a schema partitioned by week, migration 0013), else "". Asked
// once per connection.
namespace {
const std::string& AttemptKey(pqxx::transaction_base& tx, std::optional<std::string>& cache) {
  if (!cache) {
    const bool has_key = tx.exec1("SELECT EXISTS (SELECT 1 FROM information_schema.columns"
                                  " WHERE table_schema = current_schema() AND table_name = 'delivery_attempts'"
                                  "   AND column_name = 'delivery_created_at')")[0]
                             .as<bool>();
    cache = has_key ? " AND delivery_created_at = d.created_at" : "";
  }
  return *cache;
}
}  // namespace

absl::StatusOr<std::int64_t> DbProbe::CountAttempts() {
  try {
    pqxx::nontransaction tx(conn_->c);
    if (scoped()) {
      return tx.exec_params1(absl::StrCat(OCTO_BENCH_SCOPED_DELIVERIES(AttemptKey(tx, attempt_key_)),
                                          " SELECT coalesce(sum(n), 0)::bigint FROM da"),
                             scope_webhooks_, scope_since_)[0]
          .as<std::int64_t>();
    }
    return tx.exec1("SELECT count(*) FROM delivery_attempts")[0].as<std::int64_t>();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("count attempts: ", e.what()));
  }
}

absl::StatusOr<DbCounts> DbProbe::Counts() {
  try {
    pqxx::nontransaction tx(conn_->c);
    pqxx::row r =
        scoped()
            ? tx.exec_params1(
                  absl::StrCat(
                      OCTO_BENCH_SCOPED_DELIVERIES(AttemptKey(tx, attempt_key_)),
                      " SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(ok), 0)::bigint,"
                      " count(*), count(*) FILTER (WHERE state = 'succeeded'),"
                      " count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed'),"
                      " count(DISTINCT event_id) FROM da"),
                  scope_webhooks_, scope_since_)
            : tx.exec1(
                  "SELECT (SELECT count(*) FROM delivery_attempts),"
                  " (SELECT count(*) FROM delivery_attempts WHERE http_status BETWEEN 200 AND 299),"
                  " count(*), count(*) FILTER (WHERE state = 'succeeded'),"
                  " count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed'),"
                  " (SELECT count(*) FROM events)"
                  " FROM deliveries");
    DbCounts c;
    c.attempts = r[0].as<std::int64_t>();
    c.ok_attempts = r[1].as<std::int64_t>();
    c.deliveries = r[2].as<std::int64_t>();
    c.succeeded = r[3].as<std::int64_t>();
    c.pending = r[4].as<std::int64_t>();
    c.failed = r[5].as<std::int64_t>();
    c.events = r[6].as<std::int64_t>();
    return c;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("counts: ", e.what()));
  }
}

absl::Status DbProbe::ResetStatements() {
  try {
    pqxx::nontransaction tx(conn_->c);
    if (tx.exec1("SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'")[0]
            .as<bool>() == false) {
      return absl::FailedPreconditionError("pg_stat_statements is not in shared_preload_libraries");
    }
    tx.exec0("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    tx.exec("SELECT pg_stat_statements_reset()");
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("pg_stat_statements: ", e.what()));
  }
}

absl::StatusOr<std::vector<StatementStat>> DbProbe::TopStatements(int n) {
  try {
    pqxx::nontransaction tx(conn_->c);
    pqxx::result r = tx.exec(absl::StrCat(
        "SELECT calls, total_exec_time, mean_exec_time, rows,"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 160),"
        " shared_blks_hit::float8 / greatest(calls, 1), shared_blks_read::float8 / greatest(calls, 1),"
        " wal_fpi::float8 / greatest(calls, 1), wal_bytes::float8 / 1024 / greatest(calls, 1)"
        " FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        "   AND query NOT LIKE '%pg_stat_statements%'"
        " ORDER BY total_exec_time DESC LIMIT ",
        n));
    std::vector<StatementStat> out;
    for (const auto& row : r) {
      StatementStat s;
      s.calls = row[0].as<std::int64_t>();
      s.total_ms = row[1].as<double>();
      s.mean_ms = row[2].as<double>();
      s.rows = row[3].as<std::int64_t>();
      s.query = row[4].c_str();
      s.blks_hit = row[5].as<double>();
      s.blks_read = row[6].as<double>();
      s.wal_fpi = row[7].as<double>();
      s.wal_kb = row[8].as<double>();
      out.push_back(std::move(s));
    }
    return out;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("pg_stat_statements: ", e.what()));
  }
}

absl::StatusOr<int> DbProbe::BackendPid() {
  try {
    pqxx::nontransaction tx(conn_->c);
    return tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("backend pid: ", e.what()));
  }
}

absl::StatusOr<std::string> DbProbe::Settings() {
  try {
    pqxx::nontransaction tx(conn_->c);
    pqxx::row r = tx.exec1(
        "SELECT current_setting('server_version'), current_setting('fsync'),"
        " current_setting('synchronous_commit'), current_setting('full_page_writes'),"
        " current_setting('shared_buffers'), current_setting('wal_level'),"
        " current_setting('max_connections')");
    return absl::StrCat("PostgreSQL ", r[0].c_str(), ", fsync=", r[1].c_str(),
                        " synchronous_commit=", r[2].c_str(), " full_page_writes=", r[3].c_str(),
                        " shared_buffers=", r[4].c_str(), " wal_level=", r[5].c_str(),
                        " max_connections=", r[6].c_str());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("settings: ", e.what()));
  }
}

}  // namespace octo::perf
