#pragma once
// Child processes for end-to-end tests: the real service binaries, started
// with their flags and environment, output captured to a log file.
//
// A child is bound to the thread that starts it through PR_SET_PDEATHSIG
// (SIGKILL): if the test process dies, crashes or is killed, its children die
// with it, so no service is left running. Start children from the test's main
// thread (PDEATHSIG fires when the *starting thread* exits).
//
// Example:
//   auto child = octo::testing::ChildProcess::Start({
//       .binary = OCTO_SUBSCRIPTION_BIN,
//       .args = {"--grpc_listen=127.0.0.1:0", "--port_file=" + port_file},
//       .log_path = dir + "/subscription.log"});
//   ASSERT_TRUE(child.ok()) << child.status();
//   auto port = (*child)->WaitForPortFile(port_file, std::chrono::seconds(10));
//   ASSERT_TRUE(port.ok()) << port.status();  // includes the child's log tail
//   ...
//   auto exit = (*child)->Terminate(std::chrono::seconds(5));  // SIGTERM
//   EXPECT_TRUE(exit.ok() && exit->Clean());
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace octo::testing {

struct ProcessOptions {
  std::string binary;              // absolute path, run as argv[0]
  std::vector<std::string> args;   // argv[1..]
  // Added to (or overriding) the test process's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // stdout and stderr are appended here; stdin is /dev/null.
  std::string log_path;
};

// How a child ended.
struct ExitInfo {
  int exit_code = -1;  // set when the child exited by itself
  int signal = 0;      // set when a signal ended it
  bool killed_after_timeout = false;  // Terminate had to fall back to SIGKILL

  // Exited by itself with status 0.
  bool Clean() const { return signal == 0 && exit_code == 0 && !killed_after_timeout; }
  std::string ToString() const;
};

// One started child. Not thread-safe; owned by one test.
// Destruction kills a still-running child (SIGKILL) and reaps it.
class ChildProcess {
 public:
  // fork + execv. INTERNAL when the log file cannot be opened or fork fails;
  // an exec failure (e.g. missing binary) shows up as exit code 127 with the
  // reason in the log.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(ProcessOptions options);

  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return options_.log_path; }

  // True until the child has exited (reaps it when it has).
  bool IsRunning();

  // SIGTERM, then waits up to `timeout` for the child to exit; after that
  // SIGKILL (recorded in ExitInfo::killed_after_timeout). For a child that
  // already exited, returns how it ended.
  ExitInfo Terminate(std::chrono::milliseconds timeout);

  // SIGKILL and reap: a crash, as far as the rest of the system can tell.
  ExitInfo Kill9();

  // Polls until `path` holds a port number (1..65535) and returns it. Fails
  // with DEADLINE_EXCEEDED after `timeout`, or FAILED_PRECONDITION as soon as
  // the child exits; either message ends with the tail of the child's log.
  absl::StatusOr<int> WaitForPortFile(const std::string& path, std::chrono::milliseconds timeout);

  // The last `max_bytes` of the log file ("" if unreadable).
  std::string LogTail(std::size_t max_bytes = 4096) const;

 private:
  ChildProcess(ProcessOptions options, pid_t pid) : options_(std::move(options)), pid_(pid) {}
  // waitpid; true when the child has been reaped (exit_ is set).
  bool Reap(bool block);

  ProcessOptions options_;
  pid_t pid_;
  std::optional<ExitInfo> exit_;
};

}  // namespace octo::testing
