#include "gateway/list_cache.h"

#include <utility>

namespace octo::gateway {

std::shared_ptr<const std::string> ListCache::Find(const std::string& connection_id,
                                                   Clock::time_point now) {
  if (!enabled()) return nullptr;
  std::lock_guard lock(mu_);
  auto it = entries_.find(connection_id);
  if (it == entries_.end() || it->second.body == nullptr || it->second.expires <= now)
    return nullptr;
  return it->second.body;
}

void ListCache::Store(const std::string& connection_id, Clock::time_point fill_started,
                      std::string body) {
  if (!enabled() || body.size() > options_.max_body_bytes) return;
  auto shared = std::make_shared<const std::string>(std::move(body));
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mu_);
  if (fill_started <= cleared_) return;
  auto it = entries_.find(connection_id);
  if (it != entries_.end()) {
    // A change answered after this fill began: the fill may predate it.
    if (fill_started <= it->second.changed) return;
    it->second.body = std::move(shared);
    it->second.expires = fill_started + options_.ttl;
    return;
  }
  MakeRoom(now);
  if (fill_started <= cleared_) return;
  entries_.emplace(connection_id, Entry{std::move(shared), fill_started + options_.ttl, {}});
}

void ListCache::Invalidate(const std::string& connection_id) {
  if (!enabled()) return;
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mu_);
  auto it = entries_.find(connection_id);
  if (it == entries_.end()) {
    MakeRoom(now);
    it = entries_.emplace(connection_id, Entry{}).first;
  }
  it->second.body = nullptr;
  it->second.changed = now;
}

void ListCache::MakeRoom(Clock::time_point now) {
  if (entries_.size() < options_.max_entries) return;
  // Evicting an entry forgets when its connection last changed, so every
  // fill begun before an eviction is refused (cleared_).
  std::erase_if(entries_, [now](const auto& item) { return item.second.expires <= now; });
  if (entries_.size() >= options_.max_entries) entries_.clear();
  cleared_ = now;
}

}  // namespace octo::gateway
