#pragma once
// The system the benchmark drives, on 127.0.0.1: octo-delivery,
// octo-subscription (pointed at it) and the HTTP sink, each a child process
// with its log in the work directory; or, piece by piece, processes that
// already run (subscription_target / sink_port given).
//
// PostgreSQL is not started here: scripts/bench.sh starts a throwaway
// cluster and passes its conninfo.
//
// Example:
//   BenchStack stack(options);
//   if (absl::Status s = stack.Start(); !s.ok()) { ... s.message() has log tails ... }
//   auto channel = stack.SubscriptionChannel();
//   ...
//   stack.Stop();   // SIGTERM each child, then SIGKILL after a deadline
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "tests/support/process.h"
#include "tests/support/test_callers.h"

namespace octo::perf {

struct BenchStackOptions {
  std::string database_url;  // libpq conninfo; both services use it
  std::string subscription_bin;
  std::string delivery_bin;
  std::string sink_bin;
  // Extra flags, appended after the ones the stack sets.
  std::vector<std::string> subscription_flags;
  std::vector<std::string> delivery_flags;
  // Command prefix for octo-delivery, e.g. {"valgrind", "--tool=callgrind", ...}
  // (binary looked up in PATH when not absolute).
  std::vector<std::string> delivery_wrapper;
  // The same for octo-subscription.
  std::vector<std::string> subscription_wrapper;
  int sink_threads = 2;
  // Use a running subscription service (host:port): nothing but the sink is
  // started then (the delivery service is the caller's business).
  std::string subscription_target;
  // With subscription_target: the directory of the internal callers' tokens
  // the running services accept (scripts/run.sh: <data dir>/grpc-callers);
  // the admin and publisher tokens are read from it. A stack the benchmark
  // starts gets tokens of its own.
  std::string callers_dir;
  int sink_port = 0;  // use a running sink
  std::string work_dir;  // logs and port files
  std::chrono::milliseconds start_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(20)};
};

// Not thread-safe; start and stop from the main thread (see process.h on
// PDEATHSIG).
class BenchStack {
 public:
  explicit BenchStack(BenchStackOptions options) : options_(std::move(options)) {}
  ~BenchStack();  // kills what still runs

  // Starts what is not given, waits until each one serves. The message of a
  // failure ends with the log tails.
  absl::Status Start();
  // SIGTERM in reverse order; the result says which did not exit cleanly.
  absl::Status Stop();
  // Stops octo-delivery (SIGTERM) and starts it again on the same port with
  // `extra_flags` added (e.g. {"--dispatch=false"}). FAILED_PRECONDITION when
  // the stack did not start it.
  absl::Status RestartDelivery(const std::vector<std::string>& extra_flags);

  int sink_port() const { return sink_port_; }
  const std::string& subscription_target() const { return subscription_target_; }
  // Calls as octo-admin (provisioning) and as a publisher (EventService).
  std::shared_ptr<grpc::Channel> SubscriptionChannel() const { return channel_; }
  std::shared_ptr<grpc::Channel> PublisherChannel() const { return publisher_channel_; }
  bool owns_delivery() const { return delivery_ != nullptr; }
  // (name, pid) of the children started, for CPU accounting.
  std::vector<std::pair<std::string, pid_t>> Pids() const;
  std::string LogTails() const;

 private:
  absl::Status StartSink();
  absl::Status StartDelivery(const std::string& listen, const std::vector<std::string>& extra_flags);
  absl::Status StartSubscription();

  BenchStackOptions options_;
  std::unique_ptr<testing::ChildProcess> sink_;
  std::unique_ptr<testing::ChildProcess> delivery_;
  std::unique_ptr<testing::ChildProcess> subscription_;
  int sink_port_ = 0;
  std::string delivery_target_;
  int delivery_starts_ = 0;
  std::string subscription_target_;
  std::unique_ptr<testing::TestCallers> callers_;  // when the stack starts the services
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> publisher_channel_;
};

}  // namespace octo::perf
