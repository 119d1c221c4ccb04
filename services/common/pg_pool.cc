#include "services/common/pg_pool.h"

#include "absl/strings/str_cat.h"
#include "services/common/strings.h"

namespace octo {

absl::StatusOr<std::unique_ptr<PgPool>> PgPool::Create(std::string conninfo, int max_connections,
                                                       metrics::PgMetrics* metrics) {
  if (max_connections < 1) return absl::InvalidArgumentError("PgPool needs at least one connection");
  std::unique_ptr<PgPool> pool(new PgPool(std::move(conninfo), max_connections, metrics));
  if (metrics != nullptr) metrics->Declare("ping");  // every pool pings (readiness)
  auto lease = pool->Acquire(std::chrono::seconds(10));
  if (!lease.ok()) return lease.status();
  return pool;
}

PgPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), broken_(other.broken_) {
  other.pool_ = nullptr;
}

PgPool::Lease::~Lease() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_), broken_);
}

absl::StatusOr<PgPool::Lease> PgPool::Acquire(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const bool available = cv_.wait_for(lock, timeout, [&] { return !idle_.empty() || open_ < max_; });
  if (!available) return absl::UnavailableError("no PostgreSQL connection free within the timeout");
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    if (metrics_ != nullptr) metrics_->ConnectionsChanged(+1, -1);
    return Lease(this, std::move(conn));
  }
  ++open_;  // reserve the slot, then connect without holding the lock
  lock.unlock();
  try {
    auto conn = std::make_unique<pqxx::connection>(conninfo_);
    if (metrics_ != nullptr) metrics_->ConnectionsChanged(+1, 0);
    return Lease(this, std::move(conn));
  } catch (const std::exception& e) {
    lock.lock();
    --open_;
    cv_.notify_one();
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", e.what()));
  }
}

void PgPool::Release(std::unique_ptr<pqxx::connection> conn, bool broken) {
  std::lock_guard lock(mu_);
  if (broken || !conn->is_open()) {
    --open_;
    if (metrics_ != nullptr) metrics_->ConnectionsChanged(-1, 0);
  } else {
    idle_.push_back(std::move(conn));
    if (metrics_ != nullptr) metrics_->ConnectionsChanged(-1, +1);
  }
  cv_.notify_one();
}

PgPool::~PgPool() {
  // The idle connections close with the pool; leased ones cannot exist.
  if (metrics_ != nullptr) metrics_->ConnectionsChanged(0, -static_cast<int>(idle_.size()));
}

void PgPool::RecordOperation(std::string_view operation, absl::Duration elapsed, bool ok) {
  if (metrics_ != nullptr) metrics_->Query(operation, absl::ToDoubleSeconds(elapsed), ok);
}

absl::Status PgPool::Ping() {
  auto lease = Acquire(std::chrono::seconds(2));
  if (!lease.ok()) return lease.status();
  const absl::Time start = absl::Now();
  try {
    pqxx::nontransaction tx(lease->conn());
    tx.exec("SELECT 1");
    RecordOperation("ping", absl::Now() - start, true);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    lease->MarkBroken();
    RecordOperation("ping", absl::Now() - start, false);
    return StatusFromException("ping", e);
  }
}

absl::Status StatusFromException(std::string_view operation, const std::exception& e) {
  // Never include e.what(): PostgreSQL's DETAIL lines quote whole rows
  // ("Failing row contains (...)"), which may hold secrets, header values or
  // URL credentials. The SQLSTATE is enough to diagnose.
  std::string sqlstate;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) sqlstate = sql->sqlstate();
  const std::string where = absl::StrCat(AbslView(operation), sqlstate.empty() ? "" : " (SQLSTATE ", sqlstate,
                                         sqlstate.empty() ? "" : ")");
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat(where, ": database unavailable"));
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return absl::AbortedError(absl::StrCat(where, ": transaction aborted, retry"));
  }
  if (dynamic_cast<const pqxx::integrity_constraint_violation*>(&e) != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": constraint violated"));
  }
  if (!sqlstate.empty()) return absl::InternalError(absl::StrCat(where, ": database error"));
  return absl::InternalError(absl::StrCat(where, ": unexpected error"));
}

}  // namespace octo
