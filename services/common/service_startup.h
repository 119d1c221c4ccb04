#pragma once
// What the two service executables (octo-subscription, octo-delivery) do the
// same way around their own wiring: take SIGINT/SIGTERM synchronously, and
// bring up the database (migrations, the request pool, the health check's
// pool). Part of octo_service_main with pg_flags.h.
//
// Example (a service's Run):
//   const sigset_t signals = BlockShutdownSignals();
//   absl::StatusOr<ServiceDatabase> db = OpenServiceDatabase(url, 8, pg, &pg_metrics);
//   if (!db.ok()) return 1;  // logged
//   ...
//   log::Info("shutting down", {{"signal", WaitForShutdownSignal(signals)}});
#include <signal.h>

#include <memory>
#include <string>

#include <grpcpp/server_builder.h>

#include "absl/status/statusor.h"
#include "services/common/metrics.h"
#include "services/common/pg_connection.h"
#include "services/common/pg_pool.h"

namespace octo {

// Blocks SIGINT and SIGTERM in the calling thread, before any other thread
// (gRPC's, the dispatcher's) starts, so that every thread inherits the mask
// and WaitForShutdownSignal receives them. Returns the set.
sigset_t BlockShutdownSignals();

// Waits for one of `signals`; its name ("SIGINT", "SIGTERM").
std::string WaitForShutdownSignal(const sigset_t& signals);

struct ServiceDatabase {
  std::unique_ptr<PgPool> pool;       // the request handlers'
  std::unique_ptr<PgPool> ping_pool;  // one connection for the health check
};

// Applies the schema's migrations, then opens the two pools with the
// process's connection limits, recording into `metrics`. A failure is
// logged ("cannot apply migrations", "cannot connect to PostgreSQL") and
// returned.
absl::StatusOr<ServiceDatabase> OpenServiceDatabase(const std::string& database_url, int pool_size,
                                                    const PgConnectionOptions& pg,
                                                    metrics::PgMetrics* metrics);

// gRPC's synchronous server runs each call on a thread of its pool and by
// default keeps at most two threads waiting for the next call: with many
// calls in flight (64 publishers, each blocked until its commit) a thread
// was started for nearly every call and ended after it. This keeps up to
// kIdleHandlerThreads threads waiting instead (each an idle stack).
inline constexpr int kIdleHandlerThreads = 128;
void KeepHandlerThreads(grpc::ServerBuilder& builder);

// Turns off absl::Mutex's lock-order (deadlock) check for the process. absl
// runs it on every Lock when absl itself was built without NDEBUG, as
// Debian's libabsl is: a look-up under one process-wide spin lock, ~170
// instructions per Lock, and gRPC's own mutexes are absl's (~45 locks per
// published event in octo-subscription). A debugging aid, not a production
// check: the sanitized build keeps it (returns false there). Call early in
// main. True when the check is now off.
bool SkipMutexDeadlockChecks();

}  // namespace octo
