#include "services/delivery/dispatch_store.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/log.h"
#include "services/common/pg_pool.h"
#include "services/common/strings.h"

namespace octo::delivery {
namespace {

struct Statement {
  const char* name;
  const char* sql;
};

// clang-format off
// Microseconds since the Unix epoch: exact (extract() returns numeric).
#define OCTO_MICROS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

// $1 = batch size, $2 = lease in milliseconds. The inner SELECT takes the due
// rows in next_attempt_at order from the partial index, skipping rows another
// claimer holds locked; the UPDATE leases them, found by primary key (an
// array, not a join: the planner then never scans the whole table); the
// outer SELECT joins what the request is rendered from (events are fetched
// apart, once each).
constexpr Statement kClaim{
    "dispatch_claim",
    "WITH claimed AS ("
    "  UPDATE deliveries d SET lease_expires_at = now() + $2::bigint * interval '1 millisecond'"
    "  WHERE d.id = ANY(ARRAY("
    "    SELECT id FROM deliveries"
    "    WHERE state = 'pending' AND next_attempt_at <= now()"
    "      AND (lease_expires_at IS NULL OR lease_expires_at < now())"
    "    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED))"
    "  RETURNING d.id, d.event_id, d.webhook_id, d.attempt_count, d.lease_expires_at)"
    " SELECT c.id::text, c.attempt_count, " OCTO_MICROS("c.lease_expires_at") ", c.event_id::text,"
    "  w.id::text, w.event, w.url, w.retry_on_error, w.use_contact_language,"
    "  w.headers::text, w.capabilities::text, w.secret, w.status = 'enabled',"
    "  s.id::text, s.name, s.endpoint, s.contact::text,"
    "  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret ELSE '' END,"
    "  COALESCE(w.rate_limit_per_second, 0), COALESCE(w.max_concurrency, 0), w.dialect"
    " FROM claimed c"
    " JOIN webhooks w ON w.id = c.webhook_id"
    " JOIN events e ON e.id = c.event_id"
    " JOIN suppliers s ON s.id = e.supplier_id"};

// $1 = '{uuid,...}'.
constexpr Statement kClaimEvents{
    "dispatch_claim_events",
    "SELECT id::text, event, resource_kind, resource::text, COALESCE(localized::text, '{}'),"
    "  COALESCE(diff::text, '[]'), COALESCE(product_id, ''), COALESCE(option_id, ''),"
    "  " OCTO_MICROS("created_at") ", " OCTO_MICROS("occurred_at") ","
    "  COALESCE(notification_date_start::text, ''), COALESCE(notification_date_end::text, '')"
    " FROM events WHERE id = ANY($1::uuid[])"};

// Whether this claim still holds the delivery: pending, and leased with the
// lease the claim set (not re-claimed after it expired, not cancelled).
#define OCTO_OWNED                                                              \
  "(d.state = 'pending' AND d.lease_expires_at IS NOT NULL AND "               \
  OCTO_MICROS("d.lease_expires_at") " = r.lease)"

// $1 = a JSON array of results (see ResultsJson). One UPDATE per batch: an
// attempt always counts (it happened) and is inserted with its number =
// the new attempt_count; the delivery's state, schedule and lease change only
// while OCTO_OWNED. Deliveries that no longer exist join nothing: dropped.
// The `= ANY(ARRAY(...))` lets the planner find the rows by primary key: with
// the join alone it estimated 100 input rows and hashed a sequential scan of
// the whole table for every batch (30 ms at 15,000 rows, growing with it).
constexpr Statement kWriteResults{
    "dispatch_write_results",
    "WITH r AS MATERIALIZED ("
    "  SELECT * FROM json_to_recordset($1::json) AS x("
    "    id uuid, lease bigint, act text, started bigint, duration double precision,"
    "    status integer, error text, snippet text, state text, delay bigint)),"
    " upd AS ("
    "  UPDATE deliveries d SET"
    "    attempt_count = d.attempt_count + (r.act = 'attempt')::int,"
    "    state = CASE WHEN " OCTO_OWNED " THEN r.state ELSE d.state END,"
    "    next_attempt_at = CASE WHEN " OCTO_OWNED " AND r.state = 'pending'"
    "      AND (r.act = 'attempt' OR r.delay > 0)"
    "      THEN now() + r.delay * interval '1 millisecond' ELSE d.next_attempt_at END,"
    "    lease_expires_at = CASE WHEN " OCTO_OWNED " THEN NULL ELSE d.lease_expires_at END,"
    "    completed_at = CASE WHEN " OCTO_OWNED " AND r.state <> 'pending' THEN now() ELSE d.completed_at END,"
    "    last_http_status = CASE WHEN r.act = 'attempt' THEN r.status ELSE d.last_http_status END,"
    "    last_error_class = CASE WHEN r.act = 'attempt' THEN r.error ELSE d.last_error_class END"
    "  FROM r WHERE d.id = r.id AND d.id = ANY(ARRAY(SELECT id FROM r))"
    "  RETURNING d.id, d.attempt_count, r.act, r.started, r.duration, r.status, r.error, r.snippet),"
    " ins AS ("
    "  INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms,"
    "    http_status, error_class, response_snippet)"
    "  SELECT id, attempt_count, 'epoch'::timestamptz + started * interval '1 microsecond',"
    "    duration, status, error, snippet"
    "  FROM upd WHERE act = 'attempt')"
    " SELECT count(*) FROM upd"};

// 410 Gone: $1 = webhook id, $2 = reason.
constexpr Statement kDisableWebhook{
    "dispatch_disable_webhook",
    "UPDATE webhooks SET status = 'disabled', disabled_reason = $2, disabled_at = now(),"
    "  updated_at = greatest(now(), created_at)"
    " WHERE id = $1::uuid AND status = 'enabled'"};
constexpr Statement kCancelPending{
    "dispatch_cancel_pending",
    "UPDATE deliveries SET state = 'cancelled', completed_at = now(), lease_expires_at = NULL"
    " WHERE webhook_id = $1::uuid AND state = 'pending'"};

// Endpoint health (issue 4, requirement 5). $1 = a JSON array, one object
// per webhook with attempts in the batch: first_failure = when the batch's
// last run of failed attempts began (µs; null when its last attempt
// succeeded), reset = a success came before that run. failing_since is set
// on the first failure of a run and cleared by a success; unchanged rows
// are not written.
#define OCTO_NEW_FAILING_SINCE                                                  \
  "(CASE WHEN a.first_failure IS NULL THEN NULL"                                \
  "  WHEN a.reset THEN 'epoch'::timestamptz + a.first_failure * interval '1 microsecond'" \
  "  ELSE COALESCE(w.failing_since,"                                           \
  "    'epoch'::timestamptz + a.first_failure * interval '1 microsecond') END)"
constexpr Statement kTrackFailing{
    "dispatch_track_failing",
    "WITH a AS MATERIALIZED ("
    "  SELECT * FROM json_to_recordset($1::json) AS x(id uuid, first_failure bigint, reset boolean))"
    " UPDATE webhooks w SET failing_since = " OCTO_NEW_FAILING_SINCE
    " FROM a WHERE w.id = a.id AND w.failing_since IS DISTINCT FROM " OCTO_NEW_FAILING_SINCE};
// $1 = the same array plus `error` (the last attempt's outcome), $2 = the
// limit in milliseconds: enabled webhooks whose run of failures (still
// going: the batch ended on a failure) is older than the limit are disabled.
constexpr Statement kDisableFailing{
    "dispatch_disable_failing",
    "WITH a AS MATERIALIZED ("
    "  SELECT * FROM json_to_recordset($1::json) AS x(id uuid, first_failure bigint, error text))"
    " UPDATE webhooks w SET status = 'disabled', disabled_at = now(),"
    "  updated_at = greatest(now(), w.created_at),"
    "  disabled_reason = left('failing since ' ||"
    "    to_char(w.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || ': ' || a.error, 1000)"
    " FROM a WHERE w.id = a.id AND a.first_failure IS NOT NULL AND w.status = 'enabled'"
    "  AND w.failing_since <= now() - $2::bigint * interval '1 millisecond'"
    " RETURNING w.id::text, w.disabled_reason"};
// clang-format on

constexpr Statement kStatements[] = {kClaim,          kClaimEvents,  kWriteResults,  kDisableWebhook,
                                     kCancelPending, kTrackFailing, kDisableFailing};

bool IsBroken(const std::exception& e) {
  return dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
         dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr;
}

std::string_view StateName(const DeliveryResult& r) {
  switch (r.action) {
    case DeliveryResult::Action::kCancel:
      return "cancelled";
    case DeliveryResult::Action::kRelease:
      return "pending";
    case DeliveryResult::Action::kAttempt:
      break;
  }
  switch (r.decision.kind) {
    case DecisionKind::kSucceeded:
      return "succeeded";
    case DecisionKind::kRetry:
      return "pending";
    case DecisionKind::kFailed:
    case DecisionKind::kGone:
      return "failed";
  }
  return "failed";
}

std::string_view ActionName(DeliveryResult::Action action) {
  switch (action) {
    case DeliveryResult::Action::kAttempt:
      return "attempt";
    case DeliveryResult::Action::kCancel:
      return "cancel";
    case DeliveryResult::Action::kRelease:
      return "release";
  }
  return "release";
}

// "HTTP 503", "timeout": what an attempt ended with, for disabled_reason.
std::string OutcomeText(const AttemptResult& a) {
  if (a.error_class == ErrorClass::kNone) return absl::StrCat("last attempt HTTP ", a.http_status);
  return absl::StrCat("last attempt failed (", AbslView(ErrorClassName(a.error_class)), ")");
}

// Per webhook with attempts among `results`, in the order the attempts
// ended: the health JSON of kTrackFailing / kDisableFailing.
std::string HealthJson(const std::vector<DeliveryResult>& results) {
  struct Health {
    std::optional<absl::Time> first_failure;  // of the current run
    bool reset = false;
    std::string error;
  };
  std::vector<const DeliveryResult*> attempts;
  for (const DeliveryResult& r : results) {
    if (r.action == DeliveryResult::Action::kAttempt) attempts.push_back(&r);
  }
  std::stable_sort(attempts.begin(), attempts.end(), [](const DeliveryResult* a, const DeliveryResult* b) {
    return a->started_at + a->duration < b->started_at + b->duration;
  });
  std::map<std::string, Health> by_webhook;
  for (const DeliveryResult* r : attempts) {
    Health& h = by_webhook[r->webhook_id];
    if (r->decision.kind == DecisionKind::kSucceeded) {
      h.first_failure.reset();
      h.reset = true;
    } else {
      h.first_failure = std::min(h.first_failure.value_or(absl::InfiniteFuture()), r->started_at);
      h.error = OutcomeText(r->attempt);
    }
  }
  boost::json::array rows;
  rows.reserve(by_webhook.size());
  for (const auto& [id, h] : by_webhook) {
    boost::json::object o;
    o.emplace("id", id);
    if (h.first_failure.has_value()) {
      o.emplace("first_failure", absl::ToUnixMicros(*h.first_failure));
    } else {
      o.emplace("first_failure", nullptr);
    }
    o.emplace("reset", h.reset);
    o.emplace("error", h.error);
    rows.emplace_back(std::move(o));
  }
  return boost::json::serialize(rows);
}

std::string ResultsJson(const std::vector<const DeliveryResult*>& results) {
  boost::json::array rows;
  rows.reserve(results.size());
  for (const DeliveryResult* result : results) {
    const DeliveryResult& r = *result;
    boost::json::object o;
    o.reserve(10);
    o.emplace("id", r.delivery_id);
    o.emplace("lease", r.lease_us);
    o.emplace("act", ActionName(r.action));
    o.emplace("started", absl::ToUnixMicros(r.started_at));
    o.emplace("duration", std::max(0.0, absl::ToDoubleMilliseconds(r.duration)));
    if (r.attempt.error_class == ErrorClass::kNone) {
      o.emplace("status", r.attempt.http_status);
      o.emplace("error", nullptr);
    } else {
      o.emplace("status", nullptr);
      o.emplace("error", ErrorClassName(r.attempt.error_class));
    }
    o.emplace("snippet", r.snippet);
    o.emplace("state", StateName(r));
    o.emplace("delay", absl::ToInt64Milliseconds(r.decision.retry_delay));
    rows.emplace_back(std::move(o));
  }
  return boost::json::serialize(rows);
}

}  // namespace

struct PgDispatchStore::Impl {
  std::string conninfo;
  absl::Duration disable_after = kDefaultDisableAfter;
  std::unique_ptr<pqxx::connection> conn;
  DisabledCounts disabled;  // since the last TakeDisabledCounts

  absl::Status EnsureConnected() {
    if (conn != nullptr && conn->is_open()) return absl::OkStatus();
    conn.reset();
    try {
      auto c = std::make_unique<pqxx::connection>(conninfo);
      {
        // A statement stuck this long (locks, a failing disk) is abandoned and
        // retried rather than holding the dispatcher, and its Stop(), forever.
        pqxx::nontransaction tx(*c);
        tx.exec("SET statement_timeout = '30s'");
      }
      for (const Statement& s : kStatements) c->prepare(s.name, s.sql);
      conn = std::move(c);
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", e.what()));
    }
  }

  absl::Status Failed(std::string_view operation, const std::exception& e) {
    if (IsBroken(e)) conn.reset();  // reconnect next time
    return StatusFromException(operation, e);
  }
};

PgDispatchStore::PgDispatchStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgDispatchStore::~PgDispatchStore() = default;

absl::StatusOr<std::unique_ptr<PgDispatchStore>> PgDispatchStore::Connect(std::string conninfo,
                                                                           absl::Duration disable_after) {
  auto impl = std::make_unique<Impl>();
  impl->conninfo = std::move(conninfo);
  impl->disable_after = disable_after;
  if (absl::Status s = impl->EnsureConnected(); !s.ok()) return s;
  return std::unique_ptr<PgDispatchStore>(new PgDispatchStore(std::move(impl)));
}

absl::StatusOr<ClaimBatch> PgDispatchStore::Claim(int limit, absl::Duration lease) {
  if (absl::Status s = impl_->EnsureConnected(); !s.ok()) return s;
  try {
    ClaimBatch batch;
    pqxx::work txn(*impl_->conn);
    const pqxx::result rows =
        txn.exec_prepared(kClaim.name, limit, static_cast<long long>(absl::ToInt64Milliseconds(lease)));
    batch.deliveries.reserve(rows.size());
    std::set<std::string> event_ids;
    for (const pqxx::row& row : rows) {
      ClaimedDelivery d;
      d.id = row[0].as<std::string>();
      d.attempt_count = row[1].as<int>();
      d.lease_us = row[2].as<long long>();
      d.event_id = row[3].as<std::string>();
      d.webhook_id = row[4].as<std::string>();
      d.webhook_event = row[5].as<std::string>();
      d.url = row[6].as<std::string>();
      d.retry_on_error = row[7].as<bool>();
      d.use_contact_language = row[8].as<bool>();
      d.headers_json = row[9].as<std::string>();
      d.capabilities_json = row[10].as<std::string>();
      d.secret = row[11].as<std::string>();
      d.webhook_enabled = row[12].as<bool>();
      d.supplier_id = row[13].as<std::string>();
      d.supplier_name = row[14].as<std::string>();
      d.supplier_endpoint = row[15].as<std::string>();
      d.supplier_contact_json = row[16].as<std::string>();
      d.previous_secret = row[17].as<std::string>();
      d.rate_limit_per_second = row[18].as<double>();
      d.max_concurrency = row[19].as<int>();
      d.dialect = row[20].as<std::string>();
      event_ids.insert(d.event_id);
      batch.deliveries.push_back(std::move(d));
    }
    if (!event_ids.empty()) {
      std::string array = "{";
      for (const std::string& id : event_ids) {
        if (array.size() > 1) array += ',';
        array += id;  // canonical uuid text: nothing to quote
      }
      array += '}';
      for (const pqxx::row& row : txn.exec_prepared(kClaimEvents.name, array)) {
        ClaimedEvent e;
        e.id = row[0].as<std::string>();
        e.event = row[1].as<std::string>();
        e.resource_kind = row[2].as<std::string>();
        e.resource_json = row[3].as<std::string>();
        e.localized_json = row[4].as<std::string>();
        e.diff_json = row[5].as<std::string>();
        e.product_id = row[6].as<std::string>();
        e.option_id = row[7].as<std::string>();
        e.created_at = absl::FromUnixMicros(row[8].as<long long>());
        e.occurred_at_us = row[9].as<long long>();
        e.notification_date_start = row[10].as<std::string>();
        e.notification_date_end = row[11].as<std::string>();
        std::string key = e.id;
        batch.events.emplace(std::move(key), std::move(e));
      }
    }
    txn.commit();
    return batch;
  } catch (const std::exception& e) {
    return impl_->Failed("claim deliveries", e);
  }
}

absl::Status PgDispatchStore::WriteResults(const std::vector<DeliveryResult>& results) {
  if (results.empty()) return absl::OkStatus();
  if (absl::Status s = impl_->EnsureConnected(); !s.ok()) return s;
  // One UPDATE touches a row once: a delivery appearing twice (claimed again
  // after its lease expired) is written in a second round.
  std::vector<std::vector<const DeliveryResult*>> rounds;
  {
    std::vector<std::set<std::string_view>> ids;
    for (const DeliveryResult& r : results) {
      std::size_t i = 0;
      while (i < ids.size() && ids[i].count(r.delivery_id) > 0) ++i;
      if (i == ids.size()) {
        ids.emplace_back();
        rounds.emplace_back();
      }
      ids[i].insert(r.delivery_id);
      rounds[i].push_back(&r);
    }
  }
  // 410 Gone, once per webhook.
  std::vector<std::pair<std::string, std::string>> gone;
  for (const DeliveryResult& r : results) {
    if (r.action != DeliveryResult::Action::kAttempt || r.decision.kind != DecisionKind::kGone) continue;
    if (std::any_of(gone.begin(), gone.end(), [&](const auto& g) { return g.first == r.webhook_id; })) continue;
    gone.emplace_back(r.webhook_id, absl::StrCat("the endpoint answered 410 Gone to delivery ", r.delivery_id, " at ",
                                                 absl::FormatTime(absl::RFC3339_sec, r.started_at + r.duration,
                                                                  absl::UTCTimeZone())));
  }
  const std::string health = HealthJson(results);
  DisabledCounts disabled_here;
  try {
    pqxx::work txn(*impl_->conn);
    for (const auto& round : rounds) txn.exec_prepared(kWriteResults.name, ResultsJson(round));
    if (health != "[]") {
      txn.exec_prepared(kTrackFailing.name, health);
      const pqxx::result disabled = txn.exec_prepared(
          kDisableFailing.name, health, static_cast<long long>(absl::ToInt64Milliseconds(impl_->disable_after)));
      disabled_here.failing += static_cast<int>(disabled.size());
      for (const pqxx::row& row : disabled) {
        const std::string webhook_id = row[0].as<std::string>();
        const pqxx::result cancelled = txn.exec_prepared(kCancelPending.name, webhook_id);
        log::Warn("webhook disabled: its endpoint has been failing for too long",
                  {{"webhook_id", webhook_id},
                   {"reason", row[1].as<std::string>()},
                   {"cancelled_deliveries", std::to_string(cancelled.affected_rows())}});
      }
    }
    for (const auto& [webhook_id, reason] : gone) {
      const pqxx::result disabled = txn.exec_prepared(kDisableWebhook.name, webhook_id, reason);
      const pqxx::result cancelled = txn.exec_prepared(kCancelPending.name, webhook_id);
      if (disabled.affected_rows() > 0) {
        ++disabled_here.gone;
        log::Warn("webhook disabled: its endpoint answered 410 Gone",
                  {{"webhook_id", webhook_id}, {"cancelled_deliveries", std::to_string(cancelled.affected_rows())}});
      }
    }
    txn.commit();
    impl_->disabled.gone += disabled_here.gone;
    impl_->disabled.failing += disabled_here.failing;
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return impl_->Failed("write delivery results", e);
  }
}

DispatchStore::DisabledCounts PgDispatchStore::TakeDisabledCounts() {
  return std::exchange(impl_->disabled, DisabledCounts{});
}

// ------------------------------------------------------------- listener --

namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel, const std::function<void()>& on_notify)
      : pqxx::notification_receiver(conn, channel), on_notify_(on_notify) {}
  void operator()(const std::string& /*payload*/, int /*backend_pid*/) override { on_notify_(); }

 private:
  const std::function<void()>& on_notify_;
};

}  // namespace

struct NotificationListener::Impl {
  std::string conninfo;
  std::string channel;
  std::function<void()> on_notify;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // guarded by mu
  std::thread thread;

  bool Stopping() {
    std::lock_guard lock(mu);
    return stop;
  }

  void Run() {
    absl::Duration backoff = absl::Milliseconds(100);
    while (!Stopping()) {
      try {
        pqxx::connection conn(conninfo);
        Receiver receiver(conn, channel, on_notify);
        on_notify();  // anything enqueued while we were not listening
        backoff = absl::Milliseconds(100);
        while (!Stopping()) {
          conn.await_notification(0, 200'000);
          if (!conn.is_open()) throw pqxx::broken_connection("LISTEN connection closed");
        }
      } catch (const std::exception& e) {
        const std::string error = StatusFromException("listen", e).ToString();
        log::Warn("LISTEN connection failed; polling meanwhile", {{"error", error}});
        std::unique_lock lock(mu);
        cv.wait_for(lock, absl::ToChronoMilliseconds(backoff), [&] { return stop; });
        backoff = std::min(backoff * 2, absl::Seconds(5));
      }
    }
  }
};

NotificationListener::NotificationListener(std::string conninfo, std::string channel,
                                           std::function<void()> on_notify)
    : impl_(std::make_unique<Impl>()) {
  impl_->conninfo = std::move(conninfo);
  impl_->channel = std::move(channel);
  impl_->on_notify = std::move(on_notify);
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

NotificationListener::~NotificationListener() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

}  // namespace octo::delivery
