#include "services/common/service_startup.h"

#include <pthread.h>

#include <utility>

#include "absl/base/config.h"
#include "absl/synchronization/mutex.h"
#include "services/common/log.h"
#include "services/common/migrations.h"
#include "services/schema/migrations.h"

namespace octo {

sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

void KeepHandlerThreads(grpc::ServerBuilder& builder) {
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              kIdleHandlerThreads);
}

bool SkipMutexDeadlockChecks() {
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER)
  return false;  // a sanitized build (GCC or clang) is the one to find lock-order faults
#else
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
#endif
}

std::string WaitForShutdownSignal(const sigset_t& signals) {
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  return signal_number == SIGINT ? "SIGINT" : "SIGTERM";
}

absl::StatusOr<ServiceDatabase> OpenServiceDatabase(const std::string& database_url, int pool_size,
                                                    const PgConnectionOptions& pg,
                                                    metrics::PgMetrics* metrics) {
  if (absl::Status s =
          ApplyMigrations(database_url, schema::Migrations(), schema::kMigrationLockKey, pg);
      !s.ok()) {
    log::Error("cannot apply migrations", {{"error", s.ToString()}});
    return s;
  }
  ServiceDatabase db;
  for (auto [pool, size] : {std::pair{&db.pool, pool_size}, std::pair{&db.ping_pool, 1}}) {
    absl::StatusOr<std::unique_ptr<PgPool>> created = PgPool::Create(database_url, size, pg, metrics);
    if (!created.ok()) {
      log::Error("cannot connect to PostgreSQL", {{"error", created.status().ToString()}});
      return created.status();
    }
    *pool = *std::move(created);
  }
  return db;
}

}  // namespace octo
