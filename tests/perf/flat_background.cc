#include "tests/perf/flat_background.h"

#include <exception>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace octo::perf {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kRunningVacuums[] =
    "SELECT COALESCE(string_agg(COALESCE(relid::regclass::text, '?'), ', ' ORDER BY pid), '')"
    " FROM pg_stat_progress_vacuum WHERE datname = current_database()";

std::string Thousands(std::int64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    const std::size_t left = digits.size() - i;
    if (i > 0 && left % 3 == 0 && digits[i - 1] != '-') out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

absl::StatusOr<BackgroundSnapshot> SnapshotBackground(const std::string& conninfo) {
  BackgroundSnapshot out;
  try {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction tx(conn);
    const pqxx::row bg = tx.exec1(
        "SELECT checkpoints_timed + checkpoints_req, buffers_checkpoint FROM pg_stat_bgwriter");
    out.checkpoints = bg[0].as<std::int64_t>();
    out.checkpoint_buffers = bg[1].as<std::int64_t>();
    for (const auto& r : tx.exec("SELECT relname, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables"
                                 " WHERE autovacuum_count + autoanalyze_count > 0")) {
      out.tables[r[0].as<std::string>()] = {r[1].as<std::int64_t>(), r[2].as<std::int64_t>()};
    }
    out.vacuuming = tx.exec1(kRunningVacuums)[0].as<std::string>();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("reading PostgreSQL's background statistics: ", e.what()));
  }
  return out;
}

std::string DescribeBackground(const BackgroundSnapshot& before, const BackgroundSnapshot& after) {
  std::vector<std::string> parts;
  const std::int64_t checkpoints = after.checkpoints - before.checkpoints;
  if (checkpoints > 0) {
    parts.push_back(absl::StrCat(checkpoints, checkpoints == 1 ? " checkpoint (" : " checkpoints (",
                                 Thousands(after.checkpoint_buffers - before.checkpoint_buffers), " buffers)"));
  }
  std::vector<std::string> vacuumed;
  std::vector<std::string> analyzed;
  for (const auto& [table, counts] : after.tables) {
    const auto it = before.tables.find(table);
    const std::pair<std::int64_t, std::int64_t> was =
        it == before.tables.end() ? std::pair<std::int64_t, std::int64_t>{0, 0} : it->second;
    if (counts.first > was.first) vacuumed.push_back(table);
    if (counts.second > was.second) analyzed.push_back(table);
  }
  if (!vacuumed.empty()) parts.push_back(absl::StrCat("autovacuum: ", absl::StrJoin(vacuumed, ", ")));
  if (!analyzed.empty()) parts.push_back(absl::StrCat("autoanalyze: ", absl::StrJoin(analyzed, ", ")));
  if (!before.vacuuming.empty()) parts.push_back(absl::StrCat("vacuuming at the start: ", before.vacuuming));
  if (!after.vacuuming.empty()) parts.push_back(absl::StrCat("vacuuming at the end: ", after.vacuuming));
  return parts.empty() ? "none" : absl::StrJoin(parts, "; ");
}

absl::StatusOr<std::chrono::milliseconds> WaitForQuietDatabase(const std::string& conninfo,
                                                               std::chrono::seconds limit) {
  const auto start = Clock::now();
  try {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction tx(conn);
    while (true) {
      const bool busy = tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                                 " AND datname = current_database()")[0]
                            .as<int>() > 0;
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      if (!busy || waited >= limit) return waited;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("waiting for autovacuum: ", e.what()));
  }
}

}  // namespace octo::perf
