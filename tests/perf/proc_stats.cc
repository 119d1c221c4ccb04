#include "tests/perf/proc_stats.h"

#include <dirent.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace octo::perf {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// (name in parentheses, user + system seconds) from /proc/<pid>/stat; with
// `reaped_children`, plus the time of its children that exited and were
// reaped (what PostgreSQL's postmaster collects from ended backends).
bool ReadStat(const std::string& pid, std::string& comm, double& seconds,
              bool reaped_children = false, pid_t* ppid = nullptr) {
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const std::size_t open = stat.find('(');
  const std::size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  comm = stat.substr(open + 1, close - open - 1);
  // Fields after the name: state(3) ppid(4) ... utime(14) stime(15).
  std::vector<absl::string_view> fields = absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
  if (fields.size() < 15) return false;
  long long utime = 0, stime = 0, cutime = 0, cstime = 0;
  if (!absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime) ||
      !absl::SimpleAtoi(fields[13], &cutime) || !absl::SimpleAtoi(fields[14], &cstime)) {
    return false;
  }
  long long parent = 0;
  if (ppid != nullptr) *ppid = absl::SimpleAtoi(fields[1], &parent) ? static_cast<pid_t>(parent) : 0;
  long long ticks = utime + stime;
  if (reaped_children) ticks += cutime + cstime;
  seconds = static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return true;
}

}  // namespace

MachineInfo ReadMachineInfo() {
  MachineInfo m;
  m.cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/cpuinfo"), '\n')) {
    if (absl::StartsWith(line, "model name")) {
      m.cpu_model = std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      break;
    }
  }
  for (absl::string_view line : absl::StrSplit(ReadFile("/proc/meminfo"), '\n')) {
    if (absl::ConsumePrefix(&line, "MemTotal:")) {
      double kib = 0;
      if (absl::SimpleAtod(absl::StripSuffix(absl::StripAsciiWhitespace(line), " kB"), &kib)) {
        m.memory_gib = kib / (1024.0 * 1024.0);
      }
      break;
    }
  }
  const std::string load = ReadFile("/proc/loadavg");
  std::vector<absl::string_view> fields = absl::StrSplit(load, ' ');
  if (fields.size() >= 3) {
    m.loadavg = absl::StrCat(fields[0], " ", fields[1], " ", fields[2]);
    (void)absl::SimpleAtod(fields[0], &m.load1);
  }
  utsname u{};
  if (::uname(&u) == 0) m.kernel = absl::StrCat(u.sysname, " ", u.release);
  return m;
}

pid_t ParentPid(pid_t pid) {
  std::string comm;
  double seconds = 0;
  pid_t parent = 0;
  return ReadStat(std::to_string(pid), comm, seconds, false, &parent) ? parent : 0;
}

CpuTimes SampleCpu(const std::vector<std::pair<std::string, pid_t>>& processes, pid_t postmaster) {
  CpuTimes out;
  std::string comm;
  double seconds = 0;
  pid_t parent = 0;
  for (const auto& [name, pid] : processes) {
    if (ReadStat(std::to_string(pid), comm, seconds)) out[name] += seconds;
  }
  if (ReadStat("self", comm, seconds)) out["octo-bench"] = seconds;
  if (DIR* dir = ::opendir("/proc")) {
    while (dirent* e = ::readdir(dir)) {
      std::string_view n = e->d_name;
      if (n.empty() || n.find_first_not_of("0123456789") != std::string_view::npos) continue;
      if (postmaster > 0) {
        // The postmaster with its reaped backends, then its live children.
        const bool self = n == std::to_string(postmaster);
        if (ReadStat(std::string(n), comm, seconds, /*reaped_children=*/self, &parent) &&
            (self || parent == postmaster)) {
          out["postgres"] += seconds;
        }
      } else if (ReadStat(std::string(n), comm, seconds, /*reaped_children=*/true) && comm == "postgres") {
        out["postgres"] += seconds;
      }
    }
    ::closedir(dir);
  }
  return out;
}

CpuTimes CpuDelta(const CpuTimes& before, const CpuTimes& after) {
  CpuTimes out;
  for (const auto& [name, seconds] : after) {
    auto it = before.find(name);
    out[name] = seconds - (it == before.end() ? 0.0 : it->second);
  }
  return out;
}

}  // namespace octo::perf
