#include "services/common/pg_health_reporter.h"

#include <utility>

#include "absl/time/time.h"
#include "services/common/log.h"

namespace octo {

PgHealthReporter::PgHealthReporter(std::unique_ptr<PgPool> ping_pool,
                                   grpc::HealthCheckServiceInterface* health,
                                   std::vector<PgPool*> request_pools)
    : ping_pool_(std::move(ping_pool)),
      health_(health),
      request_pools_(std::move(request_pools)),
      thread_([this] { Run(); }) {}

PgHealthReporter::~PgHealthReporter() {
  stop_.Notify();
  thread_.join();
}

void PgHealthReporter::Run() {
  bool last = false;
  bool first = true;
  do {
    const bool up = ping_pool_->Ping().ok();
    if (!up) {
      for (PgPool* pool : request_pools_) pool->DiscardIdle();
    }
    if (up != last || first) {
      health_->SetServingStatus("", up);
      health_->SetServingStatus(kPostgresHealthService, up);
      if (up) {
        log::Info("postgres reachable", {{"health", "SERVING"}});
      } else {
        log::Warn("postgres unreachable", {{"health", "NOT_SERVING"}});
      }
      last = up;
      first = false;
    }
  } while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1)));
}

}  // namespace octo
