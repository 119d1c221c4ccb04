#include "services/common/log.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include <grpc/support/log.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace octo::log {
namespace {

std::mutex g_mu;
// Never destroyed: a line may be written while the process exits (a static
// object's destructor, gRPC's own shutdown), after static destructors ran.
std::string& g_component = *new std::string("octo");  // guarded by g_mu
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

bool NeedsEscape(unsigned char c) { return c == '"' || c == '\\' || c < 0x20; }

// Runs of plain characters are appended at once; only the others one by one.
void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t plain = i;
    while (plain < s.size() && !NeedsEscape(static_cast<unsigned char>(s[plain]))) ++plain;
    out.append(s.data() + i, plain - i);
    if (plain == s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[plain]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      }
    }
    i = plain + 1;
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

namespace {

// What a thread reuses for every line it writes. A line written after the
// thread's own thread_local objects were destroyed (at exit, from a
// destructor that logs) gets buffers of its own instead: `t_buffers_gone`,
// trivially destructible, stays readable until the thread ends.
struct ThreadBuffers {
  std::string head;
  std::string tail;
  std::int64_t cached_second = std::numeric_limits<std::int64_t>::min();
  std::string cached_prefix;  // "2026-12-03T13:30:50"
};
thread_local bool t_buffers_gone = false;
// The thread's own buffers; only their end marks them gone (not the end of
// the stand-ins Write and LogTime make once they are).
struct ThisThreadsOwn {
  ThreadBuffers buffers;
  ~ThisThreadsOwn() { t_buffers_gone = true; }
};

ThreadBuffers* ThisThreadsBuffers() {
  if (t_buffers_gone) return nullptr;
  thread_local ThisThreadsOwn own;
  return &own.buffers;
}

std::string LogTimeWith(ThreadBuffers& b, absl::Time t) {
  const std::int64_t millis = absl::ToUnixMillis(t);  // rounds toward -inf, as %E3S truncates
  std::int64_t second = millis / 1000;
  std::int64_t milli = millis % 1000;
  if (milli < 0) {
    milli += 1000;
    second -= 1;
  }
  // The seconds' text changes once a second: each thread keeps its last.
  if (second != b.cached_second) {
    b.cached_prefix = absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    b.cached_second = second;
  }
  std::string out = b.cached_prefix;
  const char digits[] = {'.', static_cast<char>('0' + milli / 100), static_cast<char>('0' + milli / 10 % 10),
                         static_cast<char>('0' + milli % 10), 'Z'};
  out.append(digits, sizeof digits);
  return out;
}

}  // namespace

std::string LogTime(absl::Time t) {
  if (ThreadBuffers* b = ThisThreadsBuffers()) return LogTimeWith(*b, t);
  ThreadBuffers own;
  return LogTimeWith(own, t);
}

void Write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  // Everything but the component is formatted before taking the lock, into
  // buffers each thread reuses; the lock covers the component and the write.
  std::optional<ThreadBuffers> own;
  ThreadBuffers* b = ThisThreadsBuffers();
  if (b == nullptr) b = &own.emplace();
  std::string& head = b->head;
  std::string& tail = b->tail;
  head.clear();
  head += "{\"time\":";
  AppendJsonString(head, LogTimeWith(*b, absl::Now()));
  head += ",\"level\":";
  AppendJsonString(head, LevelName(level));
  head += ",\"component\":";
  tail.clear();
  tail += ",\"msg\":";
  AppendJsonString(tail, message);
  for (const auto& [key, value] : fields) {
    tail.push_back(',');
    AppendJsonString(tail, key);
    tail.push_back(':');
    AppendJsonString(tail, value);
  }
  tail += "}\n";
  std::lock_guard lock(g_mu);
  AppendJsonString(head, g_component);
  head += tail;
  std::fwrite(head.data(), 1, head.size(), stderr);
  std::fflush(stderr);
}

}  // namespace octo::log
