#pragma once
// The flat phase's history: millions of finished deliveries and their
// attempts stored with set-based SQL (INSERT ... SELECT generate_series, in
// chunks), as months of traffic would have left them:
//   - events of the given tenants (each its supplier and webhooks), one
//     booking_update of ~1.6 KB JSON each (the benchmark's own booking with
//     its id replaced), to every webhook of the tenant;
//   - deliveries finished long ago: 1 attempt (80 %), 2 (15 %) or 3 (5 %),
//     the last one 200 except for 2 % that failed after 3;
//   - created_at spread evenly over the last `span` (25 days), oldest first,
//     ending an hour ago, so that a schema partitioned by creation time
//     routes every chunk into its partition.
// The statements name only the columns they set and leave the rest to the
// defaults; an attempts column `created_at` or `delivery_created_at` (a
// partitioned schema's) is set when the table has one. Each chunk commits on
// its own; progress is printed per chunk.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace octo::perf {

struct FillTenant {
  std::string supplier_id;
  std::vector<std::string> webhook_ids;
};

struct FillOptions {
  std::int64_t attempt_rows = 10'000'000;  // at least this many attempt rows are added
  int chunk_rows = 250'000;                // attempt rows per statement, about
  std::chrono::hours span{24 * 25};
  std::chrono::seconds time_limit{5400};
  std::chrono::seconds statement_timeout{900};
  std::string booking_json;   // a booking resource whose id is `booking_id`
  std::string booking_id;     // replaced by each event's own
  std::string run_id;         // 8 hex digits: keeps the idempotency keys and ids of runs apart
};

struct FillResult {
  std::int64_t events = 0;
  std::int64_t deliveries = 0;
  std::int64_t attempts = 0;
  double fill_seconds = 0;
  double vacuum_seconds = 0;      // VACUUM ANALYZE of the three tables, then a CHECKPOINT
  std::int64_t database_bytes_before = 0;
  std::int64_t database_bytes_after = 0;
  std::int64_t events_bytes = 0;  // tables with their indexes and TOAST (partitions summed)
  std::int64_t deliveries_bytes = 0;
  std::int64_t attempts_bytes = 0;
  std::string first_created_at;   // the history's time range (database clock)
  std::string last_created_at;
};

// Stores the history for `tenants` (every one needs at least one webhook),
// then VACUUM ANALYZE and a CHECKPOINT. A status for a failed statement or the time limit
// (what was committed until then stays).
absl::StatusOr<FillResult> FillHistory(const std::string& conninfo, const std::vector<FillTenant>& tenants,
                                       const FillOptions& options);

}  // namespace octo::perf
