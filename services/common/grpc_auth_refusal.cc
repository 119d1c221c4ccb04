#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/grpc_auth.h"
#include "services/common/log.h"
#include "services/common/log_throttle.h"
#include "services/common/status.h"

namespace octo::grpc_auth {

bool IsCallerRefusal(const absl::Status& status) {
  return (absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status)) &&
         absl::StartsWith(status.message(), kRefusalPrefix);
}

bool IsCallerRefusal(const grpc::Status& status) {
  return IsCallerRefusal(FromGrpcStatus(status));
}

absl::Status FromInternalCall(const grpc::Status& status, std::string_view upstream) {
  absl::Status result = FromGrpcStatus(status);
  if (!IsCallerRefusal(result)) return result;
  static log::Throttle throttle;
  const std::string code = absl::StatusCodeToString(result.code());
  const std::string key = absl::StrCat(std::string(upstream), "/", code);
  if (std::optional<std::uint64_t> suppressed = throttle.Admit(key)) {
    log::Error("internal call refused: this process's caller token is wrong or not allowed",
               {{"upstream", upstream},
                {"code", code},
                {"message", std::string(result.message())},
                {"suppressed", std::to_string(*suppressed)}});
  }
  return absl::InternalError(absl::StrCat(std::string(upstream), " refused this process's caller token"));
}

}  // namespace octo::grpc_auth
