#pragma once
// What the benchmark reports about the machine and where CPU time went:
// /proc readings, Linux only.
//
// Example:
//   CpuTimes before = SampleCpu({{"octo-delivery", pid}});
//   ...
//   CpuTimes after = SampleCpu({{"octo-delivery", pid}});
//   for (auto& [name, s] : CpuDelta(before, after)) ...   // CPU seconds per process
#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace octo::perf {

struct MachineInfo {
  int cpus = 0;             // online CPUs (nproc)
  std::string cpu_model;    // /proc/cpuinfo "model name"
  double memory_gib = 0;    // /proc/meminfo MemTotal
  std::string kernel;       // uname -sr
  double load1 = 0;         // /proc/loadavg: 1-minute load average when read
  std::string loadavg;      // its first three fields
};
MachineInfo ReadMachineInfo();

// CPU seconds (user + system) consumed so far, by name. "postgres" sums the
// cluster whose postmaster is `postmaster`: it, the backends that ended
// (its reaped-children time) and its children alive at the time. With 0,
// every process named postgres on the machine and their ended children:
// other clusters too (another engineer's tests on a shared machine).
// "octo-bench" is this process.
using CpuTimes = std::map<std::string, double>;
CpuTimes SampleCpu(const std::vector<std::pair<std::string, pid_t>>& processes, pid_t postmaster = 0);
// The parent of `pid` (a backend's: its postmaster), 0 when unknown.
pid_t ParentPid(pid_t pid);
CpuTimes CpuDelta(const CpuTimes& before, const CpuTimes& after);

}  // namespace octo::perf
