#include "services/delivery/dispatch_store_params.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/common/strings.h"

namespace octo::delivery::dispatch_sql {

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
// ended: the health JSON of kTrackFailing / kDisableFailing. `failing`:
// some webhook's last attempt among them failed.
std::string HealthJson(const std::vector<DeliveryResult>& results, bool* failing) {
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
      *failing = true;
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
    o.reserve(11);
    o.emplace("id", r.delivery_id);
    o.emplace("lease", r.lease_us);
    o.emplace("created", r.created_us);
    o.emplace("num", r.attempt_number);
    // A release into a backlog slot is written as 'park' (kWriteResults
    // marks it): no extra field per result.
    const bool park = r.action == DeliveryResult::Action::kRelease && r.parked;
    o.emplace("act", park ? std::string_view("park") : ActionName(r.action));
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

// 410 Gone among `results`, once per webhook: (webhook id, reason).
std::vector<std::pair<std::string, std::string>> GoneWebhooks(const std::vector<DeliveryResult>& results) {
  std::vector<std::pair<std::string, std::string>> gone;
  for (const DeliveryResult& r : results) {
    if (r.action != DeliveryResult::Action::kAttempt || r.decision.kind != DecisionKind::kGone) continue;
    if (std::any_of(gone.begin(), gone.end(), [&](const auto& g) { return g.first == r.webhook_id; })) continue;
    gone.emplace_back(r.webhook_id, absl::StrCat("the endpoint answered 410 Gone to delivery ", r.delivery_id, " at ",
                                                 absl::FormatTime(absl::RFC3339_sec, r.started_at + r.duration,
                                                                  absl::UTCTimeZone())));
  }
  return gone;
}

std::pair<long long, long long> CreatedSpan(const std::vector<DeliveryResult>& results) {
  if (results.empty()) return {0, 0};
  long long from = results.front().created_us;
  long long to = from;
  for (const DeliveryResult& r : results) {
    if (r.created_us <= 0) return {0, 0};
    from = std::min<long long>(from, r.created_us);
    to = std::max<long long>(to, r.created_us);
  }
  return {from, to};
}

// One UPDATE touches a row once: a delivery appearing twice (claimed again
// after its lease expired) is written in a second round.
std::vector<std::vector<const DeliveryResult*>> Rounds(const std::vector<DeliveryResult>& results) {
  std::vector<std::vector<const DeliveryResult*>> rounds;
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
  return rounds;
}

}  // namespace octo::delivery::dispatch_sql
