#pragma once
// A bounded pool of libpqxx connections, every one opened with the timeouts
// of PgConnectionOptions and defined with the statements registered by the
// stores on it. libpqxx throws; this layer and the stores above it convert
// every exception into absl::Status (pg_status.h), usually through
// RunInTransaction (pg_transaction.h).
//
// A connection found lost is dropped, and so are the idle ones with it (a
// server restart or failover kills them all; they would each fail one request
// otherwise); the next Acquire opens a fresh one.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/metrics.h"
#include "services/common/pg_connection.h"
#include "services/common/pg_statements.h"
#include "services/common/pg_status.h"

namespace octo {

class PgPool {
 public:
  // Opens one connection eagerly so a wrong conninfo fails at start-up.
  // `metrics` (may be null; must outlive the pool) gets the pool's
  // connection counts and the operations reported through RecordOperation.
  // INVALID_ARGUMENT for a bad conninfo or options, UNAVAILABLE when the
  // server cannot be reached.
  static absl::StatusOr<std::unique_ptr<PgPool>> Create(std::string conninfo, int max_connections,
                                                        const PgConnectionOptions& options,
                                                        metrics::PgMetrics* metrics = nullptr);
  // The same with the default PgConnectionOptions.
  static absl::StatusOr<std::unique_ptr<PgPool>> Create(std::string conninfo, int max_connections,
                                                        metrics::PgMetrics* metrics = nullptr);

  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    pqxx::connection& conn() { return *conn_; }
    // Call after a lost-connection error (IsConnectionLost) so the connection
    // is not reused; the pool also drops its idle connections.
    void MarkBroken() { broken_ = true; }

   private:
    friend class PgPool;
    Lease(PgPool* pool, std::unique_ptr<pqxx::connection> conn, std::size_t defined)
        : pool_(pool), conn_(std::move(conn)), defined_(defined) {}
    PgPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    std::size_t defined_;  // statements of the registry defined on conn_
    bool broken_ = false;
  };

  // Statements that every connection of the pool, present and future, has
  // defined (see PgStatementRegistry::Add for the status). Thread-safe.
  absl::Status RegisterStatements(std::span<const PgStatement> statements);

  // A connection with every registered statement defined. UNAVAILABLE when
  // none frees up within the timeout or a new one cannot be opened.
  absl::StatusOr<Lease> Acquire(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // A round trip ("SELECT 1"), for readiness. A pooled connection found lost
  // is replaced and the ping retried once, so the answer is about the server,
  // not about a connection that died in an earlier outage.
  absl::Status Ping();

  // Closes every idle connection (a caller that saw the server go away, e.g.
  // the health check); the next Acquire opens fresh ones. Thread-safe.
  void DiscardIdle();

  // The conninfo connections are opened with: the operator's plus the options.
  const std::string& conninfo() const { return conninfo_; }

  // For metrics: one database operation (named by a constant of the caller,
  // e.g. its prepared statement's name) took `elapsed`; `ok` is false when
  // it failed with a database error. No-op without metrics. Thread-safe.
  void RecordOperation(std::string_view operation, absl::Duration elapsed, bool ok);

  ~PgPool();

 private:
  struct Idle {
    std::unique_ptr<pqxx::connection> conn;
    std::size_t defined;
  };

  PgPool(std::string conninfo, int max_connections, metrics::PgMetrics* metrics)
      : conninfo_(std::move(conninfo)), max_(max_connections), metrics_(metrics) {}
  void Release(std::unique_ptr<pqxx::connection> conn, std::size_t defined, bool broken);
  std::vector<Idle> TakeIdleLocked();

  const std::string conninfo_;
  const int max_;
  metrics::PgMetrics* const metrics_;
  PgStatementRegistry statements_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Idle> idle_;
  int open_ = 0;
};

// Maps a libpqxx/std exception caught at a store boundary to a Status: the
// table of pg_status.h (kept under this name for the stores that call it).
inline absl::Status StatusFromException(std::string_view operation, const std::exception& e) {
  return PgErrorToStatus(operation, e);
}

}  // namespace octo
