#pragma once
// The parameters of the dispatch store's result statements (dispatch_store_sql.h):
// the JSON arrays kWriteResults, kTrackFailing and kDisableFailing read, the
// webhooks a 410 Gone disables, and the rounds one batch is written in.
// Internal to PgDispatchStore (dispatch_store.cc); pure functions.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "services/delivery/dispatch_store.h"

namespace octo::delivery::dispatch_sql {

// The state a result leaves its delivery in ("succeeded", "pending", ...).
std::string_view StateName(const DeliveryResult& r);
// "attempt", "cancel", "release".
std::string_view ActionName(DeliveryResult::Action action);
// "HTTP 503", "timeout": what an attempt ended with, for disabled_reason.
std::string OutcomeText(const AttemptResult& a);
// Per webhook with attempts among `results`, in the order the attempts
// ended: the health JSON of kTrackFailing / kDisableFailing. `failing`:
// some webhook's last attempt among them failed.
std::string HealthJson(const std::vector<DeliveryResult>& results, bool* failing);
// The JSON array of kWriteResults.
std::string ResultsJson(const std::vector<const DeliveryResult*>& results);
// 410 Gone among `results`, once per webhook: (webhook id, reason).
std::vector<std::pair<std::string, std::string>> GoneWebhooks(const std::vector<DeliveryResult>& results);
// The first and last DeliveryResult::created_us of `results` (the span
// OCTO_CREATED_FROM / OCTO_CREATED_TO read), or {0, 0} when one lacks it.
std::pair<long long, long long> CreatedSpan(const std::vector<DeliveryResult>& results);
// One UPDATE touches a row once: a delivery appearing twice (claimed again
// after its lease expired) is written in a second round.
std::vector<std::vector<const DeliveryResult*>> Rounds(const std::vector<DeliveryResult>& results);

}  // namespace octo::delivery::dispatch_sql
