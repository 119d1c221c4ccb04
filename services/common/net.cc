#include "services/common/net.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/strings.h"

namespace octo {

absl::StatusOr<HostPort> ParseHostPort(std::string_view s) {
  HostPort out;
  std::string_view port_text;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("expected [ipv6]:port, got '", AbslView(s), "'"));
    }
    out.host = std::string(s.substr(1, close - 1));
    port_text = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || s.find(':') != colon) {
      return absl::InvalidArgumentError(absl::StrCat("expected host:port, got '", AbslView(s), "'"));
    }
    out.host = std::string(s.substr(0, colon));
    port_text = s.substr(colon + 1);
  }
  if (!absl::SimpleAtoi(AbslView(port_text), &out.port) || out.port < 0 || out.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("invalid port in '", AbslView(s), "'"));
  }
  return out;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  const std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

absl::Status CheckListenAddress(std::string_view flag, std::string_view address, bool allow_non_loopback) {
  absl::StatusOr<HostPort> host_port = ParseHostPort(address);
  if (!host_port.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(AbslView(flag), ": ", host_port.status().message()));
  }
  if (!allow_non_loopback && !IsLoopbackHost(host_port->host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        AbslView(flag), ": ", host_port->host,
        " is not a loopback address; pass --allow_non_loopback to serve beyond this machine"));
  }
  return absl::OkStatus();
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : std::move(fallback);
}

int EnvOrInt(const char* name, int fallback) {
  int value = 0;
  const char* text = std::getenv(name);
  return text != nullptr && absl::SimpleAtoi(text, &value) ? value : fallback;
}

absl::Duration EnvOrDuration(const char* name, absl::Duration fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  absl::Duration value;
  if (!absl::ParseDuration(text, &value)) {
    std::fprintf(stderr, "%s: not a duration (e.g. 5s, 250ms): %s\n", name, text);
    std::exit(2);
  }
  return value;
}

bool WriteFileAtomically(const std::string& path, std::string_view content) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    if (!out) return false;
    out << content;
    if (!out.flush()) return false;
  }
  return std::rename(temp.c_str(), path.c_str()) == 0;
}

}  // namespace octo
