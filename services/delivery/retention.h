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
//   metrics::RetentionMetrics retention_metrics(registry, retention_s, interval_s);
//   RetentionMaintainer maintainer(conninfo, options, &retention_metrics);
//   ...  // stops (and joins its thread) on destruction
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace octo::metrics {
class RetentionMetrics;
}  // namespace octo::metrics

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

// What one pass did (so far, when it failed part-way).
struct RetentionPass {
  bool ran = false;  // false: another replica holds the lock
  int partitions_created = 0;
  int slices_dropped = 0;
  int slices_held = 0;  // expired, kept for a pending delivery (or busy)
  long long resources_pruned = 0;
  // Read at the end of every pass that did not fail, whether it ran or not.
  bool figures_read = false;
  double oldest_slice_age_seconds = 0;  // now - start of the oldest slice's week
  // The start of the first week from this one that one of the three tables
  // has no partition for, minus now (0 when this week's is missing): inserts
  // fail once now passes it.
  double runway_seconds = 0;
};

// One pass on `conn` (a session of its own: it takes and releases the
// session advisory lock). libpqxx errors are returned as a status.
absl::StatusOr<RetentionPass> RunRetentionPass(pqxx::connection& conn, const RetentionOptions& options);
// The same, with what was done before an error left in *pass. After an
// error the caller closes `conn`: the session lock goes with it.
absl::Status RunRetentionPass(pqxx::connection& conn, const RetentionOptions& options, RetentionPass* pass);

// At start-up, before anything is stored: the partitions up to now +
// options.ahead, waiting for another replica's pass if one runs.
absl::Status CreatePartitionsAhead(const std::string& conninfo, const RetentionOptions& options);

// Runs passes as octo-delivery does and records each in `metrics` (which
// must outlive it): outcome, duration, counts and the figures. The
// connection is opened when needed and closed after an error. When the
// figures cannot be read (the pass failed), the runway gauge keeps falling
// from the last value read, as the partitions' end does not move without a
// pass. Not thread-safe: one caller at a time.
class RetentionRunner {
 public:
  RetentionRunner(std::string conninfo, RetentionOptions options, metrics::RetentionMetrics* metrics);
  // The pass's status: OK when it ran or was skipped.
  absl::Status RunOnce();

 private:
  void Record(const absl::Status& status, const RetentionPass& pass, absl::Duration took);

  const std::string conninfo_;
  const RetentionOptions options_;
  metrics::RetentionMetrics* const metrics_;
  std::unique_ptr<pqxx::connection> conn_;
  // The runway last read, and when (this process's clock).
  std::optional<std::pair<double, absl::Time>> runway_read_;
};

class RetentionMaintainer {
 public:
  // Runs a pass at once, then every options.interval (RetentionRunner).
  // `metrics` must outlive it.
  RetentionMaintainer(std::string conninfo, RetentionOptions options, metrics::RetentionMetrics* metrics);
  ~RetentionMaintainer();
  RetentionMaintainer(const RetentionMaintainer&) = delete;
  RetentionMaintainer& operator=(const RetentionMaintainer&) = delete;

 private:
  void Run();

  const absl::Duration interval_;
  RetentionRunner runner_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace octo::delivery
