#pragma once
// A bounded pool of libpqxx connections. libpqxx throws; this layer and the
// repositories above it convert every exception into absl::Status.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/metrics.h"

namespace octo {

class PgPool {
 public:
  // Opens one connection eagerly so a wrong conninfo fails at start-up.
  // `metrics` (may be null; must outlive the pool) gets the pool's
  // connection counts and the operations reported through RecordOperation.
  static absl::StatusOr<std::unique_ptr<PgPool>> Create(std::string conninfo, int max_connections,
                                                        metrics::PgMetrics* metrics = nullptr);

  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    pqxx::connection& conn() { return *conn_; }
    // Call after a broken-connection error so the connection is not reused.
    void MarkBroken() { broken_ = true; }

   private:
    friend class PgPool;
    Lease(PgPool* pool, std::unique_ptr<pqxx::connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    PgPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
  };

  // UNAVAILABLE when no connection frees up within the timeout or a new one
  // cannot be opened.
  absl::StatusOr<Lease> Acquire(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // A cheap round trip ("SELECT 1"), for readiness.
  absl::Status Ping();

  const std::string& conninfo() const { return conninfo_; }

  // For metrics: one database operation (named by a constant of the caller,
  // e.g. its prepared statement's name) took `elapsed`; `ok` is false when
  // it failed with a database error. No-op without metrics. Thread-safe.
  void RecordOperation(std::string_view operation, absl::Duration elapsed, bool ok);

  ~PgPool();

 private:
  PgPool(std::string conninfo, int max_connections, metrics::PgMetrics* metrics)
      : conninfo_(std::move(conninfo)), max_(max_connections), metrics_(metrics) {}
  void Release(std::unique_ptr<pqxx::connection> conn, bool broken);

  const std::string conninfo_;
  const int max_;
  metrics::PgMetrics* const metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;
};

// Maps a libpqxx/std exception caught at the repository boundary to a Status:
// broken connections and serialization failures -> UNAVAILABLE/ABORTED,
// constraint violations -> FAILED_PRECONDITION, the rest -> INTERNAL.
// The message names the operation, never the parameters.
absl::Status StatusFromException(std::string_view operation, const std::exception& e);

}  // namespace octo
