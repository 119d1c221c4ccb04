#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace octo::testing {
namespace {

// Only async-signal-safe calls between fork and exec: the test process has
// other threads (gRPC, GoogleTest), whose locks may be held at fork time.
void WriteAll(int fd, const char* s) {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

[[noreturn]] void ExecChild(pid_t parent, int devnull, int log_fd, const char* binary,
                            char* const* argv, char* const* envp) {
  // Die with the test process, even if it is SIGKILLed.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ::_exit(126);
  if (::getppid() != parent) ::_exit(126);  // the parent died before prctl

  // Fresh signal state: the parent may block or ignore signals (SIGPIPE,
  // SIGTERM) and both survive exec.
  sigset_t empty;
  ::sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT}) ::sigaction(sig, &dfl, nullptr);

  if (::dup2(devnull, STDIN_FILENO) < 0 || ::dup2(log_fd, STDOUT_FILENO) < 0 ||
      ::dup2(log_fd, STDERR_FILENO) < 0) {
    ::_exit(126);
  }
  // No descriptor of the test process leaks into the service.
  ::syscall(SYS_close_range, 3U, ~0U, 0U);

  ::execve(binary, argv, envp);
  int err = errno;
  WriteAll(STDERR_FILENO, "process.cc: execve ");
  WriteAll(STDERR_FILENO, binary);
  WriteAll(STDERR_FILENO, ": ");
  WriteAll(STDERR_FILENO, ::strerrordesc_np(err));
  WriteAll(STDERR_FILENO, "\n");
  ::_exit(127);
}

ExitInfo FromWaitStatus(int status) {
  ExitInfo info;
  if (WIFEXITED(status)) info.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) info.signal = WTERMSIG(status);
  return info;
}

}  // namespace

std::string ExitInfo::ToString() const {
  std::string s = signal != 0 ? absl::StrCat("killed by signal ", signal, " (", ::strsignal(signal), ")")
                              : absl::StrCat("exited with code ", exit_code);
  if (killed_after_timeout) absl::StrAppend(&s, " after SIGTERM timed out");
  return s;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(ProcessOptions options) {
  // Everything the child needs is allocated before fork.
  std::vector<std::string> argv_storage;
  argv_storage.push_back(options.binary);
  argv_storage.insert(argv_storage.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::map<std::string, std::string> env_map;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    std::size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env_map[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& [k, v] : options.env) env_map[k] = v;
  std::vector<std::string> env_storage;
  for (const auto& [k, v] : env_map) env_storage.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  int log_fd = ::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("open log ", options.log_path, ": ", ::strerrordesc_np(errno)));
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) {
    ::close(log_fd);
    return absl::InternalError(absl::StrCat("open /dev/null: ", ::strerrordesc_np(errno)));
  }

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) ExecChild(parent, devnull, log_fd, argv_storage[0].c_str(), argv.data(), envp.data());
  const int fork_errno = errno;
  ::close(log_fd);
  ::close(devnull);
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", ::strerrordesc_np(fork_errno)));
  return std::unique_ptr<ChildProcess>(new ChildProcess(std::move(options), pid));
}

ChildProcess::~ChildProcess() {
  if (!exit_.has_value()) Kill9();
}

bool ChildProcess::Reap(bool block) {
  if (exit_.has_value()) return true;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_) {
      exit_ = FromWaitStatus(status);
      return true;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    // ECHILD: reaped elsewhere (should not happen); treat as gone.
    exit_ = ExitInfo{};
    return true;
  }
}

bool ChildProcess::IsRunning() { return !Reap(/*block=*/false); }

ExitInfo ChildProcess::Terminate(std::chrono::milliseconds timeout) {
  if (Reap(false)) return *exit_;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Reap(false)) return *exit_;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid_, SIGKILL);
  Reap(/*block=*/true);
  exit_->killed_after_timeout = true;
  return *exit_;
}

ExitInfo ChildProcess::Kill9() {
  if (Reap(false)) return *exit_;
  ::kill(pid_, SIGKILL);
  Reap(/*block=*/true);
  return *exit_;
}

absl::StatusOr<int> ChildProcess::WaitForPortFile(const std::string& path,
                                                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::ifstream in(path);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      int port = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ss.str()), &port) && port > 0 && port < 65536) {
        return port;
      }
    }
    if (!IsRunning()) {
      return absl::FailedPreconditionError(
          absl::StrCat(options_.binary, " ", exit_->ToString(), " before writing ", path,
                       "; log tail (", options_.log_path, "):\n", LogTail()));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(options_.binary, " wrote no port to ", path, " within ", timeout.count(),
                       " ms; log tail (", options_.log_path, "):\n", LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string ChildProcess::LogTail(std::size_t max_bytes) const {
  std::ifstream in(options_.log_path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start =
      size > static_cast<std::streamoff>(max_bytes) ? size - static_cast<std::streamoff>(max_bytes) : 0;
  in.seekg(start);
  std::string tail(static_cast<std::size_t>(size - start), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  return tail;
}

}  // namespace octo::testing
