#include "services/common/pg_transaction.h"

#include <algorithm>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/log.h"
#include "services/common/pg_pool.h"
#include "services/common/pg_status.h"

namespace octo::pg_internal {
namespace {

struct Attempt {
  absl::Status status;
  bool database_error = false;  // thrown by libpqxx (not a status of the body)
  bool connection_lost = false;
};

// One transaction: BEGIN, body, COMMIT (or ROLLBACK when body fails).
Attempt RunOnce(pqxx::connection_base& conn, const PgTxOptions& options, Body body) {
  try {
    pqxx::work txn(conn, std::string(options.operation));
    absl::Status status = body(txn);
    if (status.ok()) txn.commit();
    return {status, false, false};
  } catch (const std::exception& e) {
    return {PgErrorToStatus(options.operation, e), true, IsConnectionLost(e) || !conn.is_open()};
  }
}

// 5 ms, 10 ms, 20 ms, ... with jitter, so that two transactions that
// aborted each other do not collide again.
void PauseBeforeRerun(int attempt) {
  thread_local absl::BitGen bitgen;
  const absl::Duration base = absl::Milliseconds(5) * (1 << std::min(attempt - 1, 6));
  absl::SleepFor(base * (1.0 + absl::Uniform(bitgen, 0.0, 1.0)));
}

bool ShouldRerunAborted(const PgTxOptions& options, const absl::Status& status, int attempt) {
  if (!absl::IsAborted(status) || attempt >= options.max_attempts) return false;
  log::Info("transaction aborted by a conflict; rerunning",
            {{"operation", options.operation}, {"attempt", std::to_string(attempt)}});
  PauseBeforeRerun(attempt);
  return true;
}

}  // namespace

absl::Status Run(PgPool& pool, const PgTxOptions& options, Body body) {
  bool replaced = false;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<PgPool::Lease> lease = pool.Acquire(options.acquire_timeout);
    if (!lease.ok()) return lease.status();
    const absl::Time start = absl::Now();
    Attempt a = RunOnce(lease->conn(), options, body);
    pool.RecordOperation(options.operation, absl::Now() - start, !a.database_error);
    if (a.status.ok()) return a.status;
    if (a.connection_lost) {
      lease->MarkBroken();
      const bool safe = options.read_only || !IsCommitInDoubt(a.status);
      if (safe && !replaced) {
        replaced = true;
        log::Info("PostgreSQL connection lost; rerunning on a new connection",
                  {{"operation", options.operation}});
        continue;
      }
      return a.status;
    }
    if (!ShouldRerunAborted(options, a.status, attempt)) return a.status;
  }
}

absl::Status Run(pqxx::connection_base& conn, const PgTxOptions& options, Body body) {
  for (int attempt = 1;; ++attempt) {
    Attempt a = RunOnce(conn, options, body);
    if (a.status.ok() || a.connection_lost) return a.status;
    if (!ShouldRerunAborted(options, a.status, attempt)) return a.status;
  }
}

}  // namespace octo::pg_internal
