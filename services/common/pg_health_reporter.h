#pragma once
// Mirrors PostgreSQL reachability into a gRPC health service, for both
// services: pings every second on its own connection (so a busy pool cannot
// make the service look down) and sets "" and kPostgresHealthService. A ping
// replaces a lost connection and retries once (PgPool::Ping), so it answers
// for the server. While the server is unreachable it also drops the idle
// connections of the request pools: they died with the server, and the first
// requests after it is back would each fail on one of them.
#include <memory>
#include <vector>
#include <thread>

#include <grpcpp/health_check_service_interface.h>

#include "absl/synchronization/notification.h"
#include "services/common/pg_pool.h"

namespace octo {

// Health service name that reports PostgreSQL reachability.
inline constexpr char kPostgresHealthService[] = "octo.webhooks.v1.postgres";

class PgHealthReporter {
 public:
  // Starts pinging at once; `health` and `request_pools` must outlive the
  // reporter.
  PgHealthReporter(std::unique_ptr<PgPool> ping_pool, grpc::HealthCheckServiceInterface* health,
                   std::vector<PgPool*> request_pools = {});
  ~PgHealthReporter();  // stops the pinging thread

  PgHealthReporter(const PgHealthReporter&) = delete;
  PgHealthReporter& operator=(const PgHealthReporter&) = delete;

 private:
  void Run();

  std::unique_ptr<PgPool> ping_pool_;
  grpc::HealthCheckServiceInterface* health_;
  const std::vector<PgPool*> request_pools_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace octo
