#include "services/common/rpc_handler.h"

#include <exception>

#include "absl/strings/str_format.h"
#include "services/common/log.h"

namespace octo {

absl::Status RunHandlerBody(std::string_view method, absl::FunctionRef<absl::Status()> body) {
  try {
    return body();
  } catch (const std::exception& e) {
    log::Error("unhandled exception in handler", {{"method", method}, {"exception", e.what()}});
  } catch (...) {
    log::Error("unhandled exception in handler", {{"method", method}});
  }
  return absl::InternalError("internal error");
}

bool IsServerFault(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInternal || status.code() == absl::StatusCode::kUnknown;
}

std::string MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return absl::StrFormat(
      "%.3f",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace octo
