#include "gateway/auth_cache.h"

#include <utility>

namespace octo::gateway {

AuthCache::Result AuthCache::Find(const std::string& api_key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (auto it = known_.find(api_key); it != known_.end()) {
    if (it->second.expires > now) return {Outcome::kKnown, it->second.connection_id};
    known_.erase(it);
  }
  if (auto it = unknown_.find(api_key); it != unknown_.end()) {
    if (it->second.expires > now) return {Outcome::kUnknown, ""};
    unknown_.erase(it);
  }
  return {};
}

void AuthCache::StoreKnown(const std::string& api_key, std::string connection_id,
                           Clock::time_point lookup_started) {
  if (options_.ttl.count() <= 0) return;
  const Clock::time_point expires = lookup_started + options_.ttl;
  std::lock_guard lock(mu_);
  unknown_.erase(api_key);
  MakeRoom(known_, options_.max_keys, Clock::now());
  known_[api_key] = Entry{std::move(connection_id), expires};
}

void AuthCache::StoreUnknown(const std::string& api_key, Clock::time_point lookup_started) {
  if (options_.negative_ttl.count() <= 0) return;
  const Clock::time_point expires = lookup_started + options_.negative_ttl;
  std::lock_guard lock(mu_);
  known_.erase(api_key);
  MakeRoom(unknown_, options_.max_unknown_keys, Clock::now());
  unknown_[api_key] = Entry{"", expires};
}

void AuthCache::MakeRoom(std::unordered_map<std::string, Entry>& map, std::size_t max,
                         Clock::time_point now) {
  if (map.size() < max) return;
  std::erase_if(map, [now](const auto& item) { return item.second.expires <= now; });
  if (map.size() >= max) map.clear();
}

}  // namespace octo::gateway
