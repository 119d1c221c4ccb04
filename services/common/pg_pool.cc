#include "services/common/pg_pool.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/log.h"
#include "services/common/pg_transaction.h"

namespace octo {

absl::StatusOr<std::unique_ptr<PgPool>> PgPool::Create(std::string conninfo, int max_connections,
                                                       const PgConnectionOptions& options,
                                                       metrics::PgMetrics* metrics) {
  if (max_connections < 1) return absl::InvalidArgumentError("PgPool needs at least one connection");
  absl::StatusOr<std::string> full = PgConninfo(conninfo, options);
  if (!full.ok()) return full.status();
  std::unique_ptr<PgPool> pool(new PgPool(*std::move(full), max_connections, metrics));
  if (metrics != nullptr) metrics->Declare("ping");  // every pool pings (readiness)
  auto lease = pool->Acquire(std::chrono::seconds(10));
  if (!lease.ok()) return lease.status();
  return pool;
}

absl::StatusOr<std::unique_ptr<PgPool>> PgPool::Create(std::string conninfo, int max_connections,
                                                       metrics::PgMetrics* metrics) {
  return Create(std::move(conninfo), max_connections, PgConnectionOptions{}, metrics);
}

PgPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), defined_(other.defined_),
      broken_(other.broken_) {
  other.pool_ = nullptr;
}

PgPool::Lease::~Lease() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_), defined_, broken_);
}

absl::Status PgPool::RegisterStatements(std::span<const PgStatement> statements) {
  return statements_.Add(statements);
}

absl::StatusOr<PgPool::Lease> PgPool::Acquire(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const bool available = cv_.wait_for(lock, timeout, [&] { return !idle_.empty() || open_ < max_; });
  if (!available) return absl::UnavailableError("no PostgreSQL connection free within the timeout");
  if (!idle_.empty()) {
    Idle idle = std::move(idle_.back());
    idle_.pop_back();
    lock.unlock();
    if (metrics_ != nullptr) metrics_->ConnectionsChanged(+1, -1);
    statements_.DefineNew(*idle.conn, &idle.defined);
    return Lease(this, std::move(idle.conn), idle.defined);
  }
  ++open_;  // reserve the slot, then connect without holding the lock
  lock.unlock();
  absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = OpenPgConnection(conninfo_);
  if (!conn.ok()) {
    lock.lock();
    --open_;
    cv_.notify_one();
    return conn.status();
  }
  if (metrics_ != nullptr) metrics_->ConnectionsChanged(+1, 0);
  std::size_t defined = 0;
  statements_.DefineNew(**conn, &defined);
  return Lease(this, *std::move(conn), defined);
}

std::vector<PgPool::Idle> PgPool::TakeIdleLocked() {
  std::vector<Idle> taken = std::move(idle_);
  idle_.clear();
  open_ -= static_cast<int>(taken.size());
  if (metrics_ != nullptr && !taken.empty()) {
    metrics_->ConnectionsChanged(0, -static_cast<int>(taken.size()));
  }
  cv_.notify_all();
  return taken;
}

void PgPool::Release(std::unique_ptr<pqxx::connection> conn, std::size_t defined, bool broken) {
  std::vector<Idle> discarded;  // closed after the lock is released
  {
    std::lock_guard lock(mu_);
    if (broken || !conn->is_open()) {
      --open_;
      if (metrics_ != nullptr) metrics_->ConnectionsChanged(-1, 0);
      discarded = TakeIdleLocked();
    } else {
      idle_.push_back({std::move(conn), defined});
      if (metrics_ != nullptr) metrics_->ConnectionsChanged(-1, +1);
    }
    cv_.notify_one();
  }
  if (!discarded.empty()) {
    log::Info("PostgreSQL connection lost; idle connections dropped with it",
              {{"dropped", std::to_string(discarded.size())}});
  }
}

void PgPool::DiscardIdle() {
  std::vector<Idle> discarded;
  {
    std::lock_guard lock(mu_);
    discarded = TakeIdleLocked();
  }
}

PgPool::~PgPool() {
  // The idle connections close with the pool; leased ones cannot exist.
  if (metrics_ != nullptr) metrics_->ConnectionsChanged(0, -static_cast<int>(idle_.size()));
}

void PgPool::RecordOperation(std::string_view operation, absl::Duration elapsed, bool ok) {
  if (metrics_ != nullptr) metrics_->Query(operation, absl::ToDoubleSeconds(elapsed), ok);
}

absl::Status PgPool::Ping() {
  PgTxOptions options;
  options.operation = "ping";
  options.read_only = true;
  options.acquire_timeout = std::chrono::seconds(2);
  return RunInTransaction(*this, options, [](pqxx::work& txn) {
    txn.exec("SELECT 1");
    return absl::OkStatus();
  });
}

}  // namespace octo
