#pragma once
// The parts every gRPC handler of the services shares around its body (the
// subscription service's HandleRpc, the delivery service's Enqueue and its
// operations): nothing escapes into gRPC's threads, and the one log line per
// call says how long it took and whether it was the server's fault.
#include <chrono>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace octo {

// Runs `body`. An exception escaping it is logged ("unhandled exception in
// handler", with `method`) and becomes INTERNAL "internal error".
absl::Status RunHandlerBody(std::string_view method, absl::FunctionRef<absl::Status()> body);

// INTERNAL and UNKNOWN: the server's fault, logged at error level.
bool IsServerFault(const absl::Status& status);

// The milliseconds since `start` with three decimals ("12.345"), for the
// log line's duration_ms.
std::string MillisecondsSince(std::chrono::steady_clock::time_point start);

}  // namespace octo
