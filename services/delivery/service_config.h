#pragma once
// The configuration of the octo-delivery executable: its flags (each
// defaulting from an OCTO_* environment variable; the --pg_* ones are
// pg_flags.h's), read and validated into one Config. main.cc wires the
// process from it.
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/grpc_auth.h"
#include "services/common/pg_connection.h"
#include "services/delivery/dispatcher.h"
#include "services/delivery/group_commit.h"
#include "services/delivery/retention.h"

namespace octo::delivery {

// What the flags say, validated.
struct Config {
  std::string listen;
  std::string database_url;
  int db_pool_size = 8;
  std::string port_file;
  bool dispatch = true;
  // Deliveries this process enqueues go straight to its dispatcher, leased
  // at their insert (handoff.h); only with dispatch.
  bool handoff = true;
  DispatcherOptions dispatcher;
  std::string metrics_listen;
  std::string metrics_port_file;
  absl::Duration queue_stats_interval = absl::Seconds(5);
  PgConnectionOptions pg;
  GroupCommitOptions group_commit;
  RetentionOptions retention;  // --retention, --retention_interval
  std::optional<grpc_auth::CallerTokens> callers;  // who may call us
};

// The flags as a Config, or INVALID_ARGUMENT naming the flag that is wrong.
absl::StatusOr<Config> ConfigFromFlags();

}  // namespace octo::delivery
