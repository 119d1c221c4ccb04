#pragma once
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace octo {

struct HostPort {
  std::string host;  // without brackets for IPv6
  int port = 0;
};

// "127.0.0.1:8080", "[::1]:8080", "localhost:0". Port 0..65535.
absl::StatusOr<HostPort> ParseHostPort(std::string_view s);

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(std::string_view host);

// Checks a service's listen flag (`flag` names it in the message, e.g.
// "--grpc_listen"): a host:port, and loopback unless `allow_non_loopback`.
absl::Status CheckListenAddress(std::string_view flag, std::string_view address, bool allow_non_loopback);

// Default from the environment variable if set, else `fallback`: lets every
// flag be overridden by OCTO_* environment variables.
std::string EnvOr(const char* name, std::string fallback);
int EnvOrInt(const char* name, int fallback);
// A duration in absl syntax ("250ms", "1h30m"); an unparsable value is a
// configuration error: printed to stderr, and the process exits with 2.
absl::Duration EnvOrDuration(const char* name, absl::Duration fallback);

// Writes `content` to `path` atomically (temp file + rename), so a test
// harness polling for the file never reads it half-written.
bool WriteFileAtomically(const std::string& path, std::string_view content);

}  // namespace octo
