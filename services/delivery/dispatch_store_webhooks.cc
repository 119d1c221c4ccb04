#include "services/delivery/dispatch_store_webhooks.h"

#include <boost/json.hpp>

#include "services/delivery/dispatch_store_sql.h"

namespace octo::delivery::dispatch_sql {

WebhookWrites LockWebhooks(pqxx::work& txn, const std::string& health,
                           const std::vector<std::pair<std::string, std::string>>& gone,
                           absl::Duration disable_after) {
  WebhookWrites w;
  std::set<std::string> gone_ids;
  for (const auto& [id, reason] : gone) gone_ids.insert(id);
  if (health == "[]" && gone_ids.empty()) return w;
  for (const pqxx::row& row : txn.exec_prepared(kLockWebhooks.name, health, UuidArray(gone_ids),
                                                static_cast<long long>(absl::ToInt64Milliseconds(disable_after)))) {
    const std::string id = row[0].as<std::string>();
    if (row[1].as<bool>(false)) w.track.insert(id);
    if (row[2].as<bool>(false)) w.failing.insert(id);
    if (row[3].as<bool>(false)) w.gone.insert(id);
  }
  // As before the lock order: a 410 cancels its webhook's pending
  // deliveries even when the webhook was disabled already.
  w.cancel = gone_ids;
  w.cancel.insert(w.failing.begin(), w.failing.end());
  return w;
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
