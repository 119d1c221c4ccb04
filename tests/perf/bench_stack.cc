#include "tests/perf/bench_stack.h"

#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/grpc_auth.h"

namespace octo::perf {
namespace {

// The flag names the services take (services/*/main.cc).
constexpr char kListenFlag[] = "--grpc_listen=127.0.0.1:0";  // octo-subscription
// SSRF guard: the sink runs on loopback (both services take the flag).
constexpr char kAllowLoopbackFlag[] = "--allow_destination_cidrs=127.0.0.0/8,::1/128";
constexpr char kDeliveryTargetFlag[] = "--delivery_target=";
// A free port for each process's /metrics, so that the benchmark runs beside
// scripts/run.sh (which holds the default ports 9101 and 9102).
constexpr char kFreeMetricsPortFlag[] = "--metrics_listen=127.0.0.1:0";

// `name` when it has a slash, else the first executable in $PATH.
std::string FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

absl::Status WithLog(absl::Status s, const testing::ChildProcess* child) {
  if (s.ok() || child == nullptr) return s;
  return absl::Status(s.code(), absl::StrCat(s.message(), "\n--- ", child->log_path(), " ---\n",
                                             child->LogTail(3000)));
}

absl::Status WaitForChannel(const std::shared_ptr<grpc::Channel>& channel,
                            std::chrono::milliseconds timeout, const std::string& what) {
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": gRPC channel not ready"));
  }
  return absl::OkStatus();
}

}  // namespace

BenchStack::~BenchStack() {
  if (subscription_) subscription_->Kill9();
  if (delivery_) delivery_->Kill9();
  if (sink_) sink_->Kill9();
}

absl::Status BenchStack::StartSink() {
  if (options_.sink_port > 0) {
    sink_port_ = options_.sink_port;
    return absl::OkStatus();
  }
  const std::string port_file = options_.work_dir + "/sink.port";
  auto child = testing::ChildProcess::Start({
      .binary = options_.sink_bin,
      .args = {"--port=0", absl::StrCat("--threads=", options_.sink_threads),
               "--port_file=" + port_file},
      .env = {},
      .log_path = options_.work_dir + "/sink.log",
  });
  if (!child.ok()) return child.status();
  sink_ = std::move(*child);
  absl::StatusOr<int> port = sink_->WaitForPortFile(port_file, options_.start_timeout);
  if (!port.ok()) return port.status();
  sink_port_ = *port;
  return absl::OkStatus();
}

absl::Status BenchStack::StartDelivery(const std::string& listen,
                                       const std::vector<std::string>& extra_flags) {
  const int n = ++delivery_starts_;
  const std::string port_file = absl::StrCat(options_.work_dir, "/delivery-", n, ".port");
  std::vector<std::string> args;
  std::string binary = options_.delivery_bin;
  if (!options_.delivery_wrapper.empty()) {
    binary = FindExecutable(options_.delivery_wrapper.front());
    args.assign(options_.delivery_wrapper.begin() + 1, options_.delivery_wrapper.end());
    args.push_back(options_.delivery_bin);
  }
  args.insert(args.end(), {"--grpc_listen=" + listen, "--database_url=" + options_.database_url,
                           "--port_file=" + port_file, kAllowLoopbackFlag, kFreeMetricsPortFlag});
  for (std::string& flag : callers_->DeliveryFlags()) args.push_back(std::move(flag));
  args.insert(args.end(), options_.delivery_flags.begin(), options_.delivery_flags.end());
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  auto child = testing::ChildProcess::Start({
      .binary = binary,
      .args = std::move(args),
      .env = {},
      .log_path = n == 1 ? options_.work_dir + "/delivery.log"
                         : absl::StrCat(options_.work_dir, "/delivery-", n, ".log"),
  });
  if (!child.ok()) return child.status();
  delivery_ = std::move(*child);
  absl::StatusOr<int> port = delivery_->WaitForPortFile(port_file, options_.start_timeout);
  if (!port.ok()) return port.status();
  delivery_target_ = absl::StrCat("127.0.0.1:", *port);
  return WithLog(WaitForChannel(grpc::CreateChannel(delivery_target_, grpc::InsecureChannelCredentials()),
                                options_.start_timeout, "octo-delivery"),
                 delivery_.get());
}

absl::Status BenchStack::StartSubscription() {
  const std::string port_file = options_.work_dir + "/subscription.port";
  std::vector<std::string> args;
  std::string binary = options_.subscription_bin;
  if (!options_.subscription_wrapper.empty()) {
    binary = FindExecutable(options_.subscription_wrapper.front());
    args.assign(options_.subscription_wrapper.begin() + 1, options_.subscription_wrapper.end());
    args.push_back(options_.subscription_bin);
  }
  args.insert(args.end(), {kListenFlag, "--database_url=" + options_.database_url,
                           "--port_file=" + port_file, kDeliveryTargetFlag + delivery_target_,
                           kAllowLoopbackFlag, kFreeMetricsPortFlag});
  for (std::string& flag : callers_->SubscriptionFlags()) args.push_back(std::move(flag));
  args.insert(args.end(), options_.subscription_flags.begin(), options_.subscription_flags.end());
  auto child = testing::ChildProcess::Start({
      .binary = binary,
      .args = std::move(args),
      .env = {},
      .log_path = options_.work_dir + "/subscription.log",
  });
  if (!child.ok()) return child.status();
  subscription_ = std::move(*child);
  absl::StatusOr<int> port = subscription_->WaitForPortFile(port_file, options_.start_timeout);
  if (!port.ok()) return port.status();
  subscription_target_ = absl::StrCat("127.0.0.1:", *port);
  return absl::OkStatus();
}

absl::Status BenchStack::Start() {
  if (absl::Status s = StartSink(); !s.ok()) return s;
  std::string callers_dir = options_.callers_dir;
  if (options_.subscription_target.empty()) {
    callers_ = std::make_unique<testing::TestCallers>();
    callers_dir = callers_->dir();
    // The delivery service first: the subscription service needs its address.
    if (absl::Status s = StartDelivery("127.0.0.1:0", {}); !s.ok()) return s;
    if (absl::Status s = StartSubscription(); !s.ok()) return s;
  } else {
    subscription_target_ = options_.subscription_target;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  args.SetMaxSendMessageSize(64 * 1024 * 1024);
  absl::StatusOr<std::string> admin = grpc_auth::ReadTokenFile("admin token", callers_dir + "/admin");
  if (!admin.ok()) return admin.status();
  absl::StatusOr<std::string> publisher =
      grpc_auth::ReadTokenFile("publisher token", callers_dir + "/publisher");
  if (!publisher.ok()) return publisher.status();
  channel_ = testing::ChannelWithToken(subscription_target_, *admin, args);
  publisher_channel_ = testing::ChannelWithToken(subscription_target_, *publisher, args);
  return WithLog(WaitForChannel(channel_, options_.start_timeout, "octo-subscription"),
                 subscription_.get());
}

absl::Status BenchStack::Stop() {
  std::string problems;
  auto stop = [&](std::unique_ptr<testing::ChildProcess>& child, const char* name) {
    if (!child) return;
    testing::ExitInfo exit = child->Terminate(options_.stop_timeout);
    if (!exit.Clean()) absl::StrAppend(&problems, name, " ", exit.ToString(), "; ");
  };
  stop(subscription_, "octo-subscription");
  stop(delivery_, "octo-delivery");
  stop(sink_, "octo-bench-sink");
  if (problems.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("unclean exit: ", problems));
}

absl::Status BenchStack::RestartDelivery(const std::vector<std::string>& extra_flags) {
  if (delivery_ == nullptr) {
    return absl::FailedPreconditionError("octo-delivery was not started by the benchmark");
  }
  testing::ExitInfo exit = delivery_->Terminate(options_.stop_timeout);
  delivery_.reset();
  if (!exit.Clean()) {
    return absl::InternalError(absl::StrCat("octo-delivery did not stop cleanly: ", exit.ToString()));
  }
  // The same port: octo-subscription's --delivery_target points there.
  return StartDelivery(delivery_target_, extra_flags);
}

std::vector<std::pair<std::string, pid_t>> BenchStack::Pids() const {
  std::vector<std::pair<std::string, pid_t>> out;
  if (sink_) out.emplace_back("octo-bench-sink", sink_->pid());
  if (delivery_) out.emplace_back("octo-delivery", delivery_->pid());
  if (subscription_) out.emplace_back("octo-subscription", subscription_->pid());
  return out;
}

std::string BenchStack::LogTails() const {
  std::string out;
  for (const auto* child : {sink_.get(), delivery_.get(), subscription_.get()}) {
    if (child == nullptr) continue;
    absl::StrAppend(&out, "--- ", child->log_path(), " ---\n", child->LogTail(2000), "\n");
  }
  return out;
}

}  // namespace octo::perf
