#include "services/delivery/retention.h"

#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/log.h"
#include "services/common/pg_connection.h"
#include "services/common/pg_status.h"

namespace octo::delivery {
namespace {

long long Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// $1 = ahead in ms. The partitions of every week from this one to the week
// of now + ahead (migration 0013's function: each made apart, then attached).
constexpr char kCreateAhead[] =
    "SELECT octo_retention_create_partitions(now(), now() + $1::bigint * interval '1 millisecond')";
// $1 = retention in ms: the weeks whose slice ended before the cut-off.
constexpr char kExpiredSlices[] =
    "SELECT w::text FROM octo_retention_slices() AS w"
    " WHERE w + interval '7 days' <= now() - $1::bigint * interval '1 millisecond' ORDER BY w";
constexpr char kOldestSliceAge[] =
    "SELECT COALESCE(extract(epoch FROM now() - min(w)), 0)::float8 FROM octo_retention_slices() AS w";
// $1 = retention in ms. ordered_resources rows idle for longer than the
// retention period, not in flight, none of whose deliveries (in any state)
// is still stored: deleted, so that the resource's next event starts its
// numbering at 1. An enqueue that takes the row meanwhile holds its lock
// (skipped) or has moved last_enqueued_at (rechecked on the newest row
// version). At most 10,000 a pass.
constexpr char kPruneOrderedResources[] =
    "WITH idle AS ("
    "  SELECT o.id FROM ordered_resources o"
    "  WHERE o.last_enqueued_at < now() - $1::bigint * interval '1 millisecond'"
    "    AND (o.in_flight_until IS NULL OR o.in_flight_until < now())"
    "    AND NOT EXISTS (SELECT 1 FROM deliveries d"
    "      WHERE d.ordered_resource_id = o.id AND d.ordered_resource_id IS NOT NULL)"
    "  LIMIT 10000 FOR UPDATE SKIP LOCKED)"
    " DELETE FROM ordered_resources o USING idle WHERE o.id = idle.id";

// The slices past the cut-off, each dropped in a transaction of its own
// with a short lock_timeout: a slice that cannot be locked in time (busy)
// counts as held and is tried again at the next pass.
void DropExpiredSlices(pqxx::connection& conn, const RetentionOptions& options, RetentionPass& pass) {
  std::vector<std::string> weeks;
  {
    pqxx::work txn(conn);
    for (const auto& row : txn.exec_params(kExpiredSlices, Millis(options.retention))) {
      weeks.push_back(row[0].as<std::string>());
    }
    txn.commit();
  }
  for (const std::string& week : weeks) {
    try {
      pqxx::work txn(conn);
      txn.exec(absl::StrCat("SET LOCAL lock_timeout = '", Millis(options.drop_lock_timeout), "ms'"));
      const bool dropped = txn.exec_params1("SELECT octo_retention_drop_slice($1::timestamptz)", week)[0].as<bool>();
      txn.commit();
      if (dropped) {
        ++pass.slices_dropped;
        log::Info("retention: dropped a slice", {{"week", week}});
      } else {
        ++pass.slices_held;
      }
    } catch (const pqxx::sql_error& e) {
      if (e.sqlstate() != "55P03") throw;  // lock_not_available: busy now, next pass
      ++pass.slices_held;
      log::Info("retention: a slice was busy; tried again at the next pass", {{"week", week}});
    }
  }
}

}  // namespace

absl::StatusOr<absl::Duration> ParseRetention(std::string_view text_view) {
  const std::string text(text_view);
  const std::string trimmed(absl::StripAsciiWhitespace(text));
  absl::Duration d;
  long long days = 0;
  if (!trimmed.empty() && trimmed.back() == 'd' &&
      absl::SimpleAtoi(trimmed.substr(0, trimmed.size() - 1), &days) && days <= 100000 && days >= -100000) {
    d = absl::Hours(24) * days;
  } else if (!absl::ParseDuration(trimmed, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--retention: want a duration such as 30d or 720h, got \"", text, "\""));
  }
  if (d < kMinRetention || d > kMaxRetention) {
    return absl::InvalidArgumentError(absl::StrCat("--retention: must be between 1d and 3650d, got \"", text,
                                                   "\""));
  }
  return d;
}

absl::StatusOr<RetentionPass> RunRetentionPass(pqxx::connection& conn, const RetentionOptions& options) {
  RetentionPass pass;
  try {
    {
      pqxx::nontransaction lock(conn);
      pass.ran = lock.exec_params1("SELECT pg_try_advisory_lock($1)", kRetentionLockKey)[0].as<bool>();
    }
    if (pass.ran) {
      {
        pqxx::work txn(conn);
        pass.partitions_created = txn.exec_params1(kCreateAhead, Millis(options.ahead))[0].as<int>();
        txn.commit();
      }
      DropExpiredSlices(conn, options, pass);
      {
        pqxx::work txn(conn);
        pass.resources_pruned = txn.exec_params(kPruneOrderedResources, Millis(options.retention)).affected_rows();
        txn.commit();
      }
      pqxx::nontransaction unlock(conn);
      unlock.exec_params("SELECT pg_advisory_unlock($1)", kRetentionLockKey);
    }
    pqxx::nontransaction read(conn);
    pass.oldest_slice_age_seconds = read.exec1(kOldestSliceAge)[0].as<double>();
    return pass;
  } catch (const std::exception& e) {
    // The caller closes the connection: the session lock goes with it.
    return PgErrorToStatus("retention", e);
  }
}

absl::Status CreatePartitionsAhead(const std::string& conninfo, const RetentionOptions& options) {
  absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = OpenPgConnection(conninfo);
  if (!conn.ok()) return conn.status();
  try {
    pqxx::work txn(**conn);
    // Another replica's pass may hold the lock for a few seconds (its
    // drops wait up to drop_lock_timeout each): wait longer than the
    // session's lock and statement timeouts would.
    txn.exec("SET LOCAL lock_timeout = '60s'");
    txn.exec("SET LOCAL statement_timeout = '120s'");
    txn.exec_params("SELECT pg_advisory_xact_lock($1)", kRetentionLockKey);
    const int created = txn.exec_params1(kCreateAhead, Millis(options.ahead))[0].as<int>();
    txn.commit();
    if (created > 0) log::Info("retention: partitions created ahead", {{"created", std::to_string(created)}});
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return PgErrorToStatus("create partitions", e);
  }
}

RetentionMetrics::RetentionMetrics(prometheus::Registry& registry)
    : created_(prometheus::BuildCounter()
                   .Name("octo_retention_partitions_created_total")
                   .Help("Partitions of events, deliveries and delivery_attempts created ahead of time.")
                   .Register(registry)
                   .Add({})),
      dropped_(prometheus::BuildCounter()
                   .Name("octo_retention_slices_dropped_total")
                   .Help("Weekly slices (the three tables' partitions of a week) dropped after the retention "
                         "period.")
                   .Register(registry)
                   .Add({})),
      held_(prometheus::BuildGauge()
                .Name("octo_retention_slices_held")
                .Help("Slices past the retention period kept at the last pass: a delivery in them is pending "
                      "(or they were busy).")
                .Register(registry)
                .Add({})),
      pruned_(prometheus::BuildCounter()
                  .Name("octo_retention_ordered_resources_pruned_total")
                  .Help("ordered_resources rows deleted: idle beyond the retention period, no delivery left.")
                  .Register(registry)
                  .Add({})),
      oldest_age_(prometheus::BuildGauge()
                      .Name("octo_retention_oldest_partition_age_seconds")
                      .Help("Age of the oldest partition's week start: about the retention period plus a "
                            "week, more while a pending delivery holds an old slice.")
                      .Register(registry)
                      .Add({})) {}

void RetentionMetrics::Record(const RetentionPass& pass) {
  if (pass.ran) {
    created_.Increment(pass.partitions_created);
    dropped_.Increment(pass.slices_dropped);
    held_.Set(pass.slices_held);
    pruned_.Increment(static_cast<double>(pass.resources_pruned));
  }
  oldest_age_.Set(pass.oldest_slice_age_seconds);
}

RetentionMaintainer::RetentionMaintainer(std::string conninfo, RetentionOptions options, RetentionMetrics* metrics)
    : conninfo_(std::move(conninfo)), options_(options), metrics_(metrics), thread_([this] { Run(); }) {}

RetentionMaintainer::~RetentionMaintainer() {
  stop_.Notify();
  thread_.join();
}

void RetentionMaintainer::Run() {
  std::unique_ptr<pqxx::connection> conn;
  bool failing = false;
  do {
    absl::Status status = absl::OkStatus();
    if (conn == nullptr) {
      absl::StatusOr<std::unique_ptr<pqxx::connection>> opened = OpenPgConnection(conninfo_);
      if (opened.ok()) {
        conn = *std::move(opened);
      } else {
        status = opened.status();
      }
    }
    if (conn != nullptr) {
      absl::StatusOr<RetentionPass> pass = RunRetentionPass(*conn, options_);
      if (pass.ok()) {
        metrics_->Record(*pass);
        failing = false;
      } else {
        status = pass.status();
        conn.reset();  // releases the session lock if the pass held it
      }
    }
    if (!status.ok() && !failing) {  // once per outage, not every interval
      log::Warn("retention: the maintenance pass failed; tried again at the next interval",
                {{"error", status.ToString()}});
      failing = true;
    }
  } while (!stop_.WaitForNotificationWithTimeout(options_.interval));
}

}  // namespace octo::delivery
