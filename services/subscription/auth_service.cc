#include "services/subscription/auth_service.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/ascii.h"
#include "services/common/crypto.h"
#include "services/subscription/rpc_util.h"

namespace octo::subscription {
namespace {

namespace pb = ::octo::webhooks::v1;

// Keys are "octo_" + base64url; anything else cannot be one of ours.
bool LooksLikeApiKey(std::string_view key) {
  constexpr std::string_view kPrefix = "octo_";
  if (key.size() <= kPrefix.size() || key.size() > 256 || key.substr(0, kPrefix.size()) != kPrefix)
    return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

}  // namespace

grpc::Status AuthServiceImpl::Authenticate(grpc::ServerContext*,
                                           const pb::AuthenticateRequest* request,
                                           pb::AuthenticateResponse* response) {
  return HandleRpc("AuthService/Authenticate", [&](RpcLogFields& log) -> absl::Status {
    if (!LooksLikeApiKey(request->api_key())) return absl::UnauthenticatedError("invalid API key");
    absl::StatusOr<KeyOwner> owner =
        repository_->AuthenticateKeyHash(crypto::Sha256(request->api_key()));
    if (!owner.ok()) return owner.status();
    log.connection_id = owner->connection_id;
    response->set_api_key_id(owner->api_key_id);
    response->set_connection_id(owner->connection_id);
    response->set_supplier_id(owner->supplier_id);
    return absl::OkStatus();
  });
}

}  // namespace octo::subscription
