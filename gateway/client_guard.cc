#include "gateway/client_guard.h"

namespace octo::gateway {

bool ClientGuard::AdmitConnection(const std::string& address) {
  if (options_.max_connections_per_address <= 0) return true;
  {
    std::lock_guard lock(mu_);
    int& open = connections_[address];
    if (open < options_.max_connections_per_address) {
      ++open;
      return true;
    }
  }
  if (metrics_ != nullptr) metrics_->Rejected("address_connections");
  return false;
}

void ClientGuard::ReleaseConnection(const std::string& address) {
  if (options_.max_connections_per_address <= 0) return;
  std::lock_guard lock(mu_);
  auto it = connections_.find(address);
  if (it != connections_.end() && --it->second <= 0) connections_.erase(it);
}

int ClientGuard::AcquireRequest(const std::string& address) {
  const int wait = rate_.Acquire(address, RateLimiter::Clock::now());
  if (wait > 0 && metrics_ != nullptr) metrics_->Rejected("address_rate");
  return wait;
}

void ClientGuard::CountGlobalConnectionLimit() {
  if (metrics_ != nullptr) metrics_->Rejected("connections");
}

}  // namespace octo::gateway
