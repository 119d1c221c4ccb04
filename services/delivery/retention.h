#pragma once
// Retention by time partitions (docs/delivery.md, "Retention"; migration
// 0013): events, deliveries and delivery_attempts are partitioned by UTC
// week of creation, the three partitions of a week forming one slice.
// octo-delivery keeps slices created ahead of time and drops whole slices
// older than --retention that hold no pending delivery; it also deletes the
// ordered_resources rows idle for longer than --retention whose deliveries
// are all gone. Every replica runs the loop; a session advisory lock lets
// one of them do the work at a time.
//
// Example:
//   RETURN_IF_ERROR(CreatePartitionsAhead(conninfo, options));  // at start-up
//   RetentionMaintainer maintainer(conninfo, options, &retention_metrics);
//   ...  // stops (and joins its thread) on destruction
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace octo::delivery {

inline constexpr absl::Duration kDefaultRetention = absl::Hours(24 * 30);
inline constexpr absl::Duration kMinRetention = absl::Hours(24);
inline constexpr absl::Duration kMaxRetention = absl::Hours(24 * 3650);
// The advisory lock of a maintenance pass (and of the start-up creation).
inline constexpr long long kRetentionLockKey = 0x6f63746f00726574LL;

struct RetentionOptions {
  absl::Duration retention = kDefaultRetention;
  // How often a pass runs.
  absl::Duration interval = absl::Hours(1);
  // Partitions exist from this week to the week of now + ahead.
  absl::Duration ahead = absl::Hours(24 * 7);
  // lock_timeout of a slice's drop (it locks the three parent tables).
  absl::Duration drop_lock_timeout = absl::Milliseconds(500);
};

// "30d" (whole days) or an absl duration ("720h"); between kMinRetention
// and kMaxRetention. INVALID_ARGUMENT naming --retention otherwise.
absl::StatusOr<absl::Duration> ParseRetention(std::string_view text);

// What one pass did.
struct RetentionPass {
  bool ran = false;  // false: another replica holds the lock
  int partitions_created = 0;
  int slices_dropped = 0;
  int slices_held = 0;  // expired, kept for a pending delivery (or busy)
  long long resources_pruned = 0;
  double oldest_slice_age_seconds = 0;  // now - start of the oldest slice's week
};

// One pass on `conn` (a session of its own: it takes and releases the
// session advisory lock). libpqxx errors are returned as a status.
absl::StatusOr<RetentionPass> RunRetentionPass(pqxx::connection& conn, const RetentionOptions& options);

// At start-up, before anything is stored: the partitions up to now +
// options.ahead, waiting for another replica's pass if one runs.
absl::Status CreatePartitionsAhead(const std::string& conninfo, const RetentionOptions& options);

// octo_retention_partitions_created_total, octo_retention_slices_dropped_total,
// octo_retention_slices_held (expired slices kept by a pending delivery at
// the last pass), octo_retention_ordered_resources_pruned_total,
// octo_retention_oldest_partition_age_seconds.
class RetentionMetrics {
 public:
  explicit RetentionMetrics(prometheus::Registry& registry);
  void Record(const RetentionPass& pass);

 private:
  prometheus::Counter& created_;
  prometheus::Counter& dropped_;
  prometheus::Gauge& held_;
  prometheus::Counter& pruned_;
  prometheus::Gauge& oldest_age_;
};

class RetentionMaintainer {
 public:
  // Runs a pass at once, then every options.interval, on a connection of
  // its own (opened again after an error). `metrics` must outlive it.
  RetentionMaintainer(std::string conninfo, RetentionOptions options, RetentionMetrics* metrics);
  ~RetentionMaintainer();
  RetentionMaintainer(const RetentionMaintainer&) = delete;
  RetentionMaintainer& operator=(const RetentionMaintainer&) = delete;

 private:
  void Run();

  const std::string conninfo_;
  const RetentionOptions options_;
  RetentionMetrics* const metrics_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace octo::delivery
