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
  if (now >= next_sweep_) {
    SweepExpired(now);
    next_sweep_ = now + options_.ttl;
  }
  if (fill_started <= cleared_) return;
  auto it = entries_.find(connection_id);
  const std::size_t replaced =
      it != entries_.end() && it->second.body != nullptr ? it->second.body->size() : 0;
  if (body_bytes_ - replaced + shared->size() > options_.max_total_bytes) return;
  if (it != entries_.end()) {
    // A change answered after this fill began: the fill may predate it.
    if (fill_started <= it->second.changed) return;
    body_bytes_ = body_bytes_ - replaced + shared->size();
    it->second.body = std::move(shared);
    it->second.expires = fill_started + options_.ttl;
    return;
  }
  MakeRoom(now);
  if (fill_started <= cleared_) return;
  body_bytes_ += shared->size();
  entries_.emplace(connection_id, Entry{std::move(shared), fill_started + options_.ttl, {}});
}

std::size_t ListCache::body_bytes() {
  std::lock_guard lock(mu_);
  return body_bytes_;
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
  if (it->second.body != nullptr) body_bytes_ -= it->second.body->size();
  it->second.body = nullptr;
  it->second.changed = now;
  // Kept a `ttl` at least, so that the sweep rarely has to forget a change.
  it->second.expires = now + options_.ttl;
}

void ListCache::MakeRoom(Clock::time_point now) {
  if (entries_.size() < options_.max_entries) return;
  // Evicting an entry forgets when its connection last changed, so every
  // fill begun before an eviction is refused (cleared_).
  std::erase_if(entries_, [now](const auto& item) { return item.second.expires <= now; });
  if (entries_.size() >= options_.max_entries) entries_.clear();
  body_bytes_ = 0;
  for (const auto& [connection, entry] : entries_)
    if (entry.body != nullptr) body_bytes_ += entry.body->size();
  cleared_ = now;
}

void ListCache::SweepExpired(Clock::time_point now) {
  std::erase_if(entries_, [this, now](const auto& item) {
    if (item.second.expires > now) return false;
    Forget(item.second);
    return true;
  });
}

void ListCache::Forget(const Entry& entry) {
  if (entry.body != nullptr) body_bytes_ -= entry.body->size();
  // A fill begun before this entry's change could otherwise be stored.
  if (entry.changed > cleared_) cleared_ = entry.changed;
}

}  // namespace octo::gateway
