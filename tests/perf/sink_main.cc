// octo-bench-sink: the benchmark's HTTP sink as a process (see sink_server.h).
//
//   octo-bench-sink --port=0 --threads=2 --port_file=/tmp/sink.port
//   curl -s http://127.0.0.1:$(cat /tmp/sink.port)/stats
//
// Listens on 127.0.0.1 only. Runs until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "services/common/net.h"
#include "tests/perf/sink_server.h"

ABSL_FLAG(int, port, 0, "TCP port on 127.0.0.1; 0 lets the kernel choose");
ABSL_FLAG(int, threads, 2, "event-loop threads (each with its own SO_REUSEPORT socket)");
ABSL_FLAG(std::string, port_file, "", "if set, the bound port is written here once listening");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "HTTP/1.1 sink for the octo-webhooks benchmark: answers 204 to POST, counts requests and "
      "publish->receive latency; GET /stats, GET /reset");
  absl::ParseCommandLine(argc, argv);
  const int port = absl::GetFlag(FLAGS_port);
  const int threads = absl::GetFlag(FLAGS_threads);
  if (port < 0 || port > 65535 || threads < 1 || threads > 64) {
    std::fprintf(stderr, "octo-bench-sink: --port must be 0..65535 and --threads 1..64\n");
    return 2;
  }

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto sink = octo::perf::SinkServer::Start({.listen_port = port, .threads = threads});
  if (!sink.ok()) {
    std::fprintf(stderr, "octo-bench-sink: %s\n", sink.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "octo-bench-sink: listening on 127.0.0.1:%d with %d threads\n",
               (*sink)->port(), threads);
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty() &&
      !octo::WriteFileAtomically(port_file, absl::StrCat((*sink)->port(), "\n"))) {
    std::fprintf(stderr, "octo-bench-sink: cannot write %s\n", port_file.c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  (*sink)->Stop();
  std::fprintf(stderr, "octo-bench-sink: stopped; final stats %s", (*sink)->StatsJson().c_str());
  return 0;
}
