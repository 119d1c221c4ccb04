#pragma once
// Structured logs: one JSON object per line on stderr with time, level,
// component, message and caller-supplied fields. Callers must never pass
// secrets, URL credentials or header values as fields.
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/time/time.h"

namespace octo::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using Field = std::pair<std::string_view, std::string_view>;

// Set once at process start, e.g. "gateway" or "subscription".
void SetComponent(std::string_view component);
void SetMinLevel(Level level);
// Sends gRPC's own log lines (gpr_log, by default plain text on stderr)
// through Write() as JSON lines with msg "grpc" and the text in "detail",
// so every line a process writes is one JSON object. Call once, early.
void CaptureGrpcLogs();

void Write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

// The "time" field: UTC with milliseconds, exactly what
// absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, UTC) writes, with the text up
// to the seconds formatted once a second per thread.
std::string LogTime(absl::Time t);

inline void Debug(std::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kDebug, m, f); }
inline void Info(std::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kInfo, m, f); }
inline void Warn(std::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kWarn, m, f); }
inline void Error(std::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kError, m, f); }

}  // namespace octo::log
