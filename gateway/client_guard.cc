#include "gateway/client_guard.h"

namespace octo::gateway {

std::string ClientAddressKey(const boost::asio::ip::address& address) {
  if (address.is_v4()) return address.to_v4().to_string();
  const boost::asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  boost::asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  for (std::size_t i = 8; i < bytes.size(); ++i) bytes[i] = 0;
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

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
