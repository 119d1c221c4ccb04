#include "services/delivery/send_fault.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace octo::delivery {
namespace {

const std::string& CrashUrlSubstring() {
  static const std::string value = [] {
    const char* env = std::getenv("OCTO_FAULT_CRASH_ON_URL");
    return std::string(env == nullptr ? "" : env);
  }();
  return value;
}

}  // namespace

void MaybeCrashBeforeSend(std::string_view url) {
  const std::string& needle = CrashUrlSubstring();
  if (needle.empty() || url.find(needle) == std::string_view::npos) return;
  std::fputs("{\"level\":\"fatal\",\"msg\":\"fault injection: crashing before a send (OCTO_FAULT_CRASH_ON_URL)\"}\n",
             stderr);
  std::abort();
}

}  // namespace octo::delivery
