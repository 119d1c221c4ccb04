#pragma once
// What PostgreSQL did in the background while the flat phase measured:
// checkpoints (timed or requested, and the buffers they wrote) and the
// autovacuum and autoanalyze runs of each table, from the cumulative
// statistics (pg_stat_bgwriter, pg_stat_user_tables) before and after a
// measurement, and the vacuums running at a moment (pg_stat_progress_vacuum).
// The flat goals compare halves of one run: a vacuum of a large partition or
// a checkpoint inside one half and not the other moves a ratio, and the
// report says so instead of leaving it to be guessed.
//
// Example:
//   absl::StatusOr<BackgroundSnapshot> before = SnapshotBackground(url);
//   ... measure ...
//   absl::StatusOr<BackgroundSnapshot> after = SnapshotBackground(url);
//   std::puts(DescribeBackground(*before, *after).c_str());
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace octo::perf {

struct BackgroundSnapshot {
  std::int64_t checkpoints = 0;         // timed + requested, completed
  std::int64_t checkpoint_buffers = 0;  // written by checkpoints
  // relname -> autovacuum_count, autoanalyze_count (tables with any).
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> tables;
  std::string vacuuming;  // the tables being vacuumed at the snapshot ("" for none)
};

absl::StatusOr<BackgroundSnapshot> SnapshotBackground(const std::string& conninfo);

// "1 checkpoint (12,345 buffers); autovacuum: deliveries_w20261130; autoanalyze:
// events_w20261130; vacuuming at the end: deliveries_w20261130" or "none".
std::string DescribeBackground(const BackgroundSnapshot& before, const BackgroundSnapshot& after);

// Waits until no autovacuum worker runs, at most `limit`; answers how long
// it waited (the limit when it gave up). The flat phase calls it
// before each half's measurements, the same way in both halves, so that a
// vacuum of the previous step (the fill's, or a phase's) is not measured as
// the next half's cost; vacuums the measured work itself starts stay in.
absl::StatusOr<std::chrono::milliseconds> WaitForQuietDatabase(const std::string& conninfo,
                                                               std::chrono::seconds limit);

}  // namespace octo::perf
