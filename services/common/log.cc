#include "services/common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include <grpc/support/log.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace octo::log {
namespace {

std::mutex g_mu;
std::string g_component = "octo";  // guarded by g_mu
std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace

void SetComponent(std::string_view component) {
  std::lock_guard lock(g_mu);
  g_component = std::string(component);
}

void SetMinLevel(Level level) { g_min_level = static_cast<int>(level); }

void CaptureGrpcLogs() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    const Level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? Level::kError
                        : args->severity == GPR_LOG_SEVERITY_INFO ? Level::kInfo
                                                                  : Level::kDebug;
    Write(level, "grpc",
          {{"detail", args->message != nullptr ? args->message : ""},
           {"source", absl::StrCat(args->file != nullptr ? args->file : "", ":", args->line)}});
  });
}

void Write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  std::string line;
  line.reserve(128);
  line += "{\"time\":";
  AppendJsonString(line, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()));
  line += ",\"level\":";
  AppendJsonString(line, LevelName(level));
  std::lock_guard lock(g_mu);
  line += ",\"component\":";
  AppendJsonString(line, g_component);
  line += ",\"msg\":";
  AppendJsonString(line, message);
  for (const auto& [key, value] : fields) {
    line.push_back(',');
    AppendJsonString(line, key);
    line.push_back(':');
    AppendJsonString(line, value);
  }
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace octo::log
