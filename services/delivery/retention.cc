#include "services/delivery/retention.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/log.h"
#include "services/common/pg_connection.h"
#include "services/common/pg_status.h"
#include "services/common/retention_metrics.h"

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
// The runway: from this week on, the first week one of the three tables has
// no attached partition for (partitions are named <table>_wYYYYMMDD by
// octo_retention_create_partitions), minus now. The deliveries partitions
// end at the newest slice, so the weeks looked at end a week after it.
constexpr char kRunway[] =
    "SELECT GREATEST(0, extract(epoch FROM min(g.w) - now()))::float8"
    " FROM generate_series(octo_retention_week(now()),"
    "   GREATEST(octo_retention_week(now()),"
    "            (SELECT max(w) + interval '7 days' FROM octo_retention_slices() AS w)),"
    "   interval '7 days') AS g(w)"
    " WHERE (SELECT count(*) FROM pg_inherits i"
    "        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
    "        WHERE i.inhparent IN ('events'::regclass, 'deliveries'::regclass, 'delivery_attempts'::regclass)"
    "          AND c.relname = p.relname || '_w' || to_char(g.w AT TIME ZONE 'UTC', 'YYYYMMDD')) < 3";
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

// The figures every pass ends with, whether it ran or not.
void ReadFigures(pqxx::connection& conn, RetentionPass& pass) {
  pqxx::nontransaction read(conn);
  pass.oldest_slice_age_seconds = read.exec1(kOldestSliceAge)[0].as<double>();
  pass.runway_seconds = read.exec1(kRunway)[0].as<double>();
  pass.figures_read = true;
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

absl::Status RunRetentionPass(pqxx::connection& conn, const RetentionOptions& options, RetentionPass* pass) {
  try {
    {
      pqxx::nontransaction lock(conn);
      pass->ran = lock.exec_params1("SELECT pg_try_advisory_lock($1)", kRetentionLockKey)[0].as<bool>();
    }
    if (pass->ran) {
      {
        pqxx::work txn(conn);
        pass->partitions_created = txn.exec_params1(kCreateAhead, Millis(options.ahead))[0].as<int>();
        txn.commit();
      }
      DropExpiredSlices(conn, options, *pass);
      {
        pqxx::work txn(conn);
        pass->resources_pruned = txn.exec_params(kPruneOrderedResources, Millis(options.retention)).affected_rows();
        txn.commit();
      }
      pqxx::nontransaction unlock(conn);
      unlock.exec_params("SELECT pg_advisory_unlock($1)", kRetentionLockKey);
    }
    ReadFigures(conn, *pass);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    // The caller closes the connection: the session lock goes with it.
    return PgErrorToStatus("retention", e);
  }
}

absl::StatusOr<RetentionPass> RunRetentionPass(pqxx::connection& conn, const RetentionOptions& options) {
  RetentionPass pass;
  if (absl::Status s = RunRetentionPass(conn, options, &pass); !s.ok()) return s;
  return pass;
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

RetentionRunner::RetentionRunner(std::string conninfo, RetentionOptions options,
                                 metrics::RetentionMetrics* metrics)
    : conninfo_(std::move(conninfo)), options_(options), metrics_(metrics) {}

absl::Status RetentionRunner::RunOnce() {
  const absl::Time start = absl::Now();
  RetentionPass pass;
  absl::Status status = absl::OkStatus();
  if (conn_ == nullptr) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> opened = OpenPgConnection(conninfo_);
    if (opened.ok()) {
      conn_ = *std::move(opened);
    } else {
      status = opened.status();
    }
  }
  if (conn_ != nullptr) {
    status = RunRetentionPass(*conn_, options_, &pass);
    if (!status.ok()) {
      // A statement failed (CREATE refused, say) on a session that may
      // still read: the gauges then show the partitions as they are.
      try {
        if (!pass.figures_read) ReadFigures(*conn_, pass);
      } catch (const std::exception&) {
        pass.figures_read = false;  // the session is gone too
      }
      conn_.reset();  // releases the session lock if the pass held it
    }
  }
  Record(status, pass, absl::Now() - start);
  return status;
}

void RetentionRunner::Record(const absl::Status& status, const RetentionPass& pass, absl::Duration took) {
  // What a failed pass did before failing is counted too (each drop
  // committed on its own).
  metrics_->PartitionsCreated(pass.partitions_created);
  metrics_->SlicesDropped(pass.slices_dropped);
  metrics_->ResourcesPruned(pass.resources_pruned);
  if (status.ok() && pass.ran) metrics_->SetSlicesHeld(pass.slices_held);
  if (pass.figures_read) {
    metrics_->SetOldestPartitionAge(pass.oldest_slice_age_seconds);
    metrics_->SetRunway(pass.runway_seconds);
    runway_read_.emplace(pass.runway_seconds, absl::Now());
  } else if (runway_read_.has_value()) {
    // Nothing read: the partitions still end where they did (only a pass
    // moves their end, and a pass of another replica shows in its gauge).
    const double elapsed = absl::ToDoubleSeconds(absl::Now() - runway_read_->second);
    metrics_->SetRunway(std::max(0.0, runway_read_->first - elapsed));
  }
  using Outcome = metrics::RetentionMetrics::Outcome;
  const Outcome outcome = !status.ok() ? Outcome::kError : pass.ran ? Outcome::kOk : Outcome::kSkipped;
  metrics_->PassFinished(outcome, absl::ToDoubleSeconds(took));
}

RetentionMaintainer::RetentionMaintainer(std::string conninfo, RetentionOptions options,
                                         metrics::RetentionMetrics* metrics)
    : interval_(options.interval), runner_(std::move(conninfo), options, metrics), thread_([this] { Run(); }) {}

RetentionMaintainer::~RetentionMaintainer() {
  stop_.Notify();
  thread_.join();
}

void RetentionMaintainer::Run() {
  bool failing = false;
  do {
    const absl::Status status = runner_.RunOnce();
    if (status.ok()) {
      failing = false;
    } else if (!failing) {  // once per outage, not every interval
      log::Warn("retention: the maintenance pass failed; tried again at the next interval",
                {{"error", status.ToString()}});
      failing = true;
    }
  } while (!stop_.WaitForNotificationWithTimeout(interval_));
}

}  // namespace octo::delivery
