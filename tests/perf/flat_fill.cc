#include "tests/perf/flat_fill.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <set>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace octo::perf {
namespace {

using Clock = std::chrono::steady_clock;

// Attempts per delivery on average: 1 (80 %), 2 (15 %), 3 (5 %).
constexpr double kAttemptsPerDelivery = 0.80 * 1 + 0.15 * 2 + 0.05 * 3;

// One chunk: events [$1, $2) of the tenants (event g to tenant g % $3), each
// to every webhook of its tenant, each delivery finished with 1-3 attempts.
// $4 run id, $5 booking JSON, $6 the id in it to replace, $7 the history's
// start, $8 the events expected in all (spreads created_at), $9 the span in
// seconds. Answers the rows stored and the chunk's time range.
std::string ChunkSql(const std::set<std::string>& attempt_columns) {
  // A partitioned schema may give attempts a creation time of their own or
  // carry the delivery's (its partition key) beside delivery_id.
  std::string extra_columns, extra_values;
  if (attempt_columns.count("created_at") != 0) {
    absl::StrAppend(&extra_columns, ", created_at");
    absl::StrAppend(&extra_values, ", x.started_at");
  }
  if (attempt_columns.count("delivery_created_at") != 0) {
    absl::StrAppend(&extra_columns, ", delivery_created_at");
    absl::StrAppend(&extra_values, ", x.delivery_created_at");
  }
  return absl::StrCat(
      "WITH ev AS ("
      " INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource,"
      "                     occurred_at, created_at, delivery_count)"
      " SELECT t.supplier_id, 'flat-' || $4 || '-' || g, 'booking_update', 'booking', k.key,"
      "        replace($5, $6, k.key)::json, k.ts, k.ts, t.hooks"
      " FROM generate_series($1::bigint, $2::bigint - 1) AS g"
      " JOIN flat_fill_tenants t ON t.tenant = g % $3::int"
      " CROSS JOIN LATERAL (SELECT $4 || '-0066-4000-8000-' || lpad(to_hex(g), 12, '0') AS key,"
      "   least($7::timestamptz + (g::float8 / $8::float8) * make_interval(secs => $9::float8),"
      "         now() - interval '1 hour') AS ts) AS k"
      " RETURNING id, supplier_id, created_at),"
      // random() once per delivery (a CTE with a volatile function is not inlined).
      " plan AS (SELECT ev.id AS event_id, h.webhook_id, ev.created_at, floor(random() * 100)::int AS p"
      "  FROM ev JOIN flat_fill_hooks h ON h.supplier_id = ev.supplier_id),"
      " shaped AS (SELECT event_id, webhook_id, created_at,"
      "  CASE WHEN p < 80 THEN 1 WHEN p < 95 THEN 2 ELSE 3 END AS n, p >= 98 AS failed FROM plan),"
      " dl AS ("
      "  INSERT INTO deliveries (event_id, webhook_id, state, attempt_count, next_attempt_at, created_at,"
      "                          completed_at, last_http_status)"
      "  SELECT event_id, webhook_id, CASE WHEN failed THEN 'failed' ELSE 'succeeded' END, n,"
      "         created_at + (n - 1) * interval '40 seconds', created_at,"
      "         created_at + (n - 1) * interval '40 seconds' + interval '1 second',"
      "         CASE WHEN failed THEN 500 ELSE 200 END"
      "  FROM shaped"
      "  RETURNING id, created_at, attempt_count, state),"
      " x AS (SELECT dl.id AS delivery_id, a AS attempt_number, dl.created_at AS delivery_created_at,"
      "  dl.created_at + (a - 1) * interval '40 seconds' + interval '120 milliseconds' AS started_at,"
      "  a = dl.attempt_count AS last, dl.state"
      "  FROM dl CROSS JOIN LATERAL generate_series(1, dl.attempt_count) AS a),"
      " at AS ("
      "  INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, http_status,"
      "                                 error_class, response_snippet",
      extra_columns,
      ")"
      "  SELECT x.delivery_id, x.attempt_number, x.started_at, 12 + (x.attempt_number * 37) % 90,"
      "   CASE WHEN x.last AND x.state = 'failed' THEN 500 WHEN x.last THEN 200"
      "        WHEN x.attempt_number = 1 THEN NULL ELSE 503 END,"
      "   CASE WHEN NOT x.last AND x.attempt_number = 1 THEN 'timeout' END,"
      "   CASE WHEN x.last AND x.state = 'succeeded' THEN '{\"received\":true}'"
      "        WHEN NOT x.last AND x.attempt_number = 1 THEN ''"
      "        ELSE '<html><body><h1>503 Service Unavailable</h1></body></html>' END",
      extra_values,
      "  FROM x RETURNING 1)"
      " SELECT (SELECT count(*) FROM ev), (SELECT count(*) FROM dl), (SELECT count(*) FROM at),"
      "  (SELECT min(created_at)::text FROM ev), (SELECT max(created_at)::text FROM ev)");
}

// A table with its indexes and TOAST; a partitioned one summed over its
// partitions (pg_partition_tree lists nothing for a plain table).
std::int64_t TableBytes(pqxx::nontransaction& tx, const char* table) {
  return tx
      .exec_params1("SELECT greatest(pg_total_relation_size($1::regclass),"
                    " (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)"
                    "  FROM pg_partition_tree($1::regclass)))::bigint",
                    table)[0]
      .as<std::int64_t>();
}

// The tenants and their webhooks as temporary tables the chunks join.
void LoadTenants(pqxx::nontransaction& tx, const std::vector<FillTenant>& tenants) {
  tx.exec0("CREATE TEMP TABLE flat_fill_tenants (tenant int PRIMARY KEY, supplier_id uuid, hooks int)");
  tx.exec0("CREATE TEMP TABLE flat_fill_hooks (supplier_id uuid, webhook_id uuid)");
  for (std::size_t i = 0; i < tenants.size(); ++i) {
    tx.exec_params0("INSERT INTO flat_fill_tenants VALUES ($1, $2::uuid, $3)", static_cast<int>(i),
                    tenants[i].supplier_id, static_cast<int>(tenants[i].webhook_ids.size()));
    tx.exec_params0("INSERT INTO flat_fill_hooks SELECT $1::uuid, unnest($2::uuid[])", tenants[i].supplier_id,
                    absl::StrCat("{", absl::StrJoin(tenants[i].webhook_ids, ","), "}"));
  }
  tx.exec0("ANALYZE flat_fill_tenants");
  tx.exec0("ANALYZE flat_fill_hooks");
}

// VACUUM ANALYZE: the visibility map and statistics a database this old
// would have (autovacuum would get there, later and at its own pace). Then a
// checkpoint, so that the next measurement does not pay for writing out the
// fill's dirty pages (superuser or pg_checkpoint: skipped without).
void VacuumAndCheckpoint(pqxx::nontransaction& tx, std::int64_t timeout_seconds) {
  tx.exec0(absl::StrCat("SET statement_timeout = '", timeout_seconds, "s'"));
  for (const char* table : {"events", "deliveries", "delivery_attempts"}) {
    std::printf("   VACUUM ANALYZE %s ...\n", table);
    std::fflush(stdout);
    tx.exec0(absl::StrCat("VACUUM ANALYZE ", table));
  }
  try {
    tx.exec0("CHECKPOINT");
  } catch (const pqxx::sql_error& e) {
    std::printf("   (no CHECKPOINT after the fill: %s)\n", e.what());
  }
}

// The columns of delivery_attempts (a partitioned schema may add some).
std::set<std::string> AttemptColumns(pqxx::nontransaction& tx) {
  std::set<std::string> columns;
  for (const auto& row : tx.exec("SELECT column_name FROM information_schema.columns"
                                 " WHERE table_schema = current_schema() AND table_name = 'delivery_attempts'")) {
    columns.insert(row[0].c_str());
  }
  return columns;
}

}  // namespace

absl::StatusOr<FillResult> FillHistory(const std::string& conninfo, const std::vector<FillTenant>& tenants,
                                       const FillOptions& options) {
  std::size_t hooks = 0;
  for (const FillTenant& t : tenants) {
    if (t.webhook_ids.empty()) return absl::InvalidArgumentError("a fill tenant has no webhooks");
    hooks += t.webhook_ids.size();
  }
  if (tenants.empty()) return absl::InvalidArgumentError("no fill tenants");
  const double attempts_per_event =
      static_cast<double>(hooks) / static_cast<double>(tenants.size()) * kAttemptsPerDelivery;
  const auto events_for = [&](std::int64_t attempts) {
    return std::max<std::int64_t>(1, std::llround(std::ceil(static_cast<double>(attempts) / attempts_per_event)));
  };
  const std::int64_t events_expected = events_for(options.attempt_rows);
  const std::int64_t events_per_chunk = events_for(options.chunk_rows);
  const auto t0 = Clock::now();
  const auto deadline = t0 + options.time_limit;
  FillResult r;
  try {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction tx(conn);
    tx.exec0(absl::StrCat("SET statement_timeout = '", options.statement_timeout.count(), "s'"));
    r.database_bytes_before = tx.exec1("SELECT pg_database_size(current_database())")[0].as<std::int64_t>();
    LoadTenants(tx, tenants);
    const std::string start =
        tx.exec_params1("SELECT (now() - make_interval(secs => $1::float8) - interval '1 hour')::text",
                        static_cast<double>(std::chrono::seconds(options.span).count()))[0]
            .c_str();
    // A schema partitioned by creation week has partitions only from its
    // migration on and ahead of now: make the past weeks the history lands in.
    if (!tx.exec1("SELECT to_regproc('octo_retention_create_partitions') IS NULL")[0].as<bool>()) {
      tx.exec_params("SELECT octo_retention_create_partitions($1::timestamptz, now())", start);
    }
    conn.prepare("flat_fill_chunk", ChunkSql(AttemptColumns(tx)));
    std::printf("   fill: %lld attempt rows for %zu tenants (%zu webhooks), ~%lld events in chunks of ~%lld "
                "events, created_at from %s on\n",
                static_cast<long long>(options.attempt_rows), tenants.size(), hooks,
                static_cast<long long>(events_expected), static_cast<long long>(events_per_chunk), start.c_str());
    std::fflush(stdout);
    std::int64_t next_event = 0;
    while (r.attempts < options.attempt_rows) {
      if (Clock::now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat("the fill stored ", r.attempts, " of ", options.attempt_rows,
                                                        " attempt rows in its time limit of ",
                                                        options.time_limit.count(), " s"));
      }
      const std::int64_t count =
          std::min(events_per_chunk, events_for(options.attempt_rows - r.attempts));
      pqxx::row row = tx.exec_prepared1("flat_fill_chunk", next_event, next_event + count,
                                        static_cast<int>(tenants.size()), options.run_id, options.booking_json,
                                        options.booking_id, start, static_cast<double>(events_expected),
                                        static_cast<double>(std::chrono::seconds(options.span).count()));
      next_event += count;
      r.events += row[0].as<std::int64_t>();
      r.deliveries += row[1].as<std::int64_t>();
      const std::int64_t added = row[2].as<std::int64_t>();
      if (added <= 0) return absl::InternalError("a fill chunk stored no attempt rows");
      r.attempts += added;
      if (r.first_created_at.empty()) r.first_created_at = row[3].c_str();
      r.last_created_at = row[4].c_str();
      const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
      const double rate = static_cast<double>(r.attempts) / std::max(elapsed, 1e-3);
      std::printf("   fill: %lld / %lld attempt rows (%.0f %%), %lld deliveries, %lld events; %.0f s, %.0f rows/s, "
                  "~%.0f s left; up to %s\n",
                  static_cast<long long>(r.attempts), static_cast<long long>(options.attempt_rows),
                  100.0 * static_cast<double>(r.attempts) / static_cast<double>(options.attempt_rows),
                  static_cast<long long>(r.deliveries), static_cast<long long>(r.events), elapsed, rate,
                  static_cast<double>(std::max<std::int64_t>(0, options.attempt_rows - r.attempts)) / rate,
                  r.last_created_at.c_str());
      std::fflush(stdout);
    }
    r.fill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const auto remaining = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now());
    const auto v0 = Clock::now();
    VacuumAndCheckpoint(tx, std::max<std::int64_t>(600, remaining.count()));
    r.vacuum_seconds = std::chrono::duration<double>(Clock::now() - v0).count();
    r.database_bytes_after = tx.exec1("SELECT pg_database_size(current_database())")[0].as<std::int64_t>();
    r.events_bytes = TableBytes(tx, "events");
    r.deliveries_bytes = TableBytes(tx, "deliveries");
    r.attempts_bytes = TableBytes(tx, "delivery_attempts");
    return r;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("fill: ", e.what(), " (", r.attempts, " attempt rows stored)"));
  }
}

}  // namespace octo::perf
