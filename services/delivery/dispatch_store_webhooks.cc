#include "services/delivery/dispatch_store_webhooks.h"

#include <boost/json.hpp>

#include "services/delivery/dispatch_store_params.h"
#include "services/delivery/dispatch_store_sql.h"

namespace octo::delivery::dispatch_sql {

WebhookWrites LockWebhooks(pqxx::work& txn, const std::string& health,
                           const std::vector<std::pair<std::string, std::string>>& gone,
                           absl::Duration disable_after) {
  WebhookWrites w;
  std::set<std::string> gone_ids;
  for (const auto& [id, reason] : gone) gone_ids.insert(id);
  if (health == "[]" && gone_ids.empty()) return w;
  std::set<std::string> disabled_before;  // answered 410, disabled already
  for (const pqxx::row& row : txn.exec_prepared(kLockWebhooks.name, health, UuidArray(gone_ids),
                                                static_cast<long long>(absl::ToInt64Milliseconds(disable_after)))) {
    const std::string id = row[0].as<std::string>();
    if (row[1].as<bool>(false)) w.track.insert(id);
    if (row[2].as<bool>(false)) w.failing.insert(id);
    if (row[3].as<bool>(false)) {
      w.gone.insert(id);
    } else if (gone_ids.count(id) > 0) {
      disabled_before.insert(id);
    }
  }
  w.cancel = w.gone;
  w.cancel.insert(w.failing.begin(), w.failing.end());
  // A 410 cancels its webhook's pending deliveries even when the webhook
  // was disabled already (by its owner: they stay pending until claimed),
  // the whole way only while one is pending.
  if (!disabled_before.empty()) {
    for (const pqxx::row& row : txn.exec_prepared(kGonePending.name, UuidArray(disabled_before))) {
      w.cancel.insert(row[0].as<std::string>());
    }
    for (const std::string& id : disabled_before) {
      if (w.cancel.count(id) == 0) w.cancel_own.insert(id);
    }
  }
  return w;
}

void CancelOwnPending(pqxx::work& txn, const std::vector<DeliveryResult>& results,
                      const std::set<std::string>& webhooks) {
  if (webhooks.empty()) return;
  std::set<std::string> ids;
  std::vector<DeliveryResult> own;
  for (const DeliveryResult& r : results) {
    if (webhooks.count(r.webhook_id) > 0 && ids.insert(r.delivery_id).second) own.push_back(r);
  }
  if (ids.empty()) return;
  const auto [from, to] = CreatedSpan(own);
  txn.exec_prepared(kCancelOwnPending.name, UuidArray(ids), from, to);
}

std::string HealthOf(const std::string& health, const std::set<std::string>& ids) {
  const boost::json::value all = boost::json::parse(health);
  boost::json::array kept;
  for (const boost::json::value& v : all.as_array()) {
    if (ids.count(std::string(v.at("id").as_string())) > 0) kept.push_back(v);
  }
  return boost::json::serialize(kept);
}

std::string UuidArray(const std::set<std::string>& ids) {
  std::string array = "{";
  for (const std::string& id : ids) {
    if (array.size() > 1) array += ',';
    array += id;
  }
  array += '}';
  return array;
}

}  // namespace octo::delivery::dispatch_sql
