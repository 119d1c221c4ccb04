// The octo-gateway executable itself: flags, environment defaults, the port
// file, the access log and clean exits on SIGTERM/SIGINT.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/gateway/http_test_client.h"

extern char** environ;

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
using testing::Get;
using testing::TestConnection;
using testing::TestRequest;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class GatewayProcess {
 public:
  GatewayProcess() {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("octo-gateway-test-", getpid(), "-", counter_++);
    std::filesystem::create_directories(dir_);
    port_file_ = dir_ / "port";
    log_file_ = dir_ / "stderr.log";
    // The gateway's caller token (services/common/grpc_auth.h): required.
    std::ofstream(dir_ / "token") << std::string(64, 't') << "\n";
    chmod((dir_ / "token").c_str(), 0600);  // a token file open to all is refused
  }

  // Runs the gateway with `args` and `env` (the test's own OCTO_* variables
  // are not inherited); stderr goes to log(). The metrics listener takes a
  // free port, so that gateways of parallel tests never collide.
  void Start(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {OCTO_GATEWAY_BINARY, "--metrics_listen=127.0.0.1:0",
                                     "--subscription_token_file=" + (dir_ / "token").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c_argv;
    for (std::string& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).rfind("OCTO_", 0) != 0) env.emplace_back(*e);
    }
    std::vector<char*> c_env;
    for (std::string& e : env) c_env.push_back(e.data());
    c_env.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    spawned_ = posix_spawn(&pid_, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data()) == 0;
    posix_spawn_file_actions_destroy(&actions);
  }

  ~GatewayProcess() {
    if (spawned_ && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A path for --port_file, in this process's own directory.
  std::string port_file() const { return port_file_.string(); }
  std::string log() const { return ReadFile(log_file_); }

  // The port from the port file, 0 if it does not appear within 10 s.
  int WaitForPort() {
    for (int i = 0; i < 1000; ++i) {
      int port = 0;
      if (absl::SimpleAtoi(ReadFile(port_file_), &port) && port > 0) return port;
      if (HasExited(std::chrono::milliseconds(10))) return 0;
    }
    return 0;
  }

  // True once the process has exited (within `timeout`); see exit_code().
  bool HasExited(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exited_) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exited_;
  }

  void Signal(int signal_number) { kill(pid_, signal_number); }
  int exit_code() const { return exit_code_; }
  bool spawned() const { return spawned_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_, port_file_, log_file_;
  pid_t pid_ = 0;
  bool spawned_ = false;
  bool exited_ = false;
  int exit_code_ = -1;
};

TEST(GatewayMain, PortFileHealthzAndCleanExit) {
  for (int signal_number : {SIGTERM, SIGINT}) {
    GatewayProcess gateway;
    gateway.Start({"--listen=127.0.0.1:0", "--subscription_target=127.0.0.1:1",
                   "--port_file=" + gateway.port_file(), "--threads=1"});
    ASSERT_TRUE(gateway.spawned());
    const int port = gateway.WaitForPort();
    ASSERT_GT(port, 0) << gateway.log();
    auto r = Get(port, "/healthz");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->result(), http::status::ok);
    gateway.Signal(signal_number);
    ASSERT_TRUE(gateway.HasExited(std::chrono::seconds(10)));
    EXPECT_EQ(gateway.exit_code(), 0) << gateway.log();
  }
}

TEST(GatewayMain, RefusesANonLoopbackListenAddress) {
  GatewayProcess gateway;
  gateway.Start({"--listen=0.0.0.0:0"});
  ASSERT_TRUE(gateway.HasExited(std::chrono::seconds(10)));
  EXPECT_EQ(gateway.exit_code(), 2);
  EXPECT_NE(gateway.log().find("allow_non_loopback"), std::string::npos) << gateway.log();
}

TEST(GatewayMain, TheLoopbackFlagsHelpNamesBothListeners) {
  FILE* pipe = popen((std::string(OCTO_GATEWAY_BINARY) + " --helpon=main 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  pclose(pipe);
  const auto flag = out.find("--allow_non_loopback (");
  ASSERT_NE(flag, std::string::npos) << out;
  const std::string help = out.substr(flag, out.find("default:", flag) - flag);
  EXPECT_NE(help.find("--listen"), std::string::npos) << help;
  EXPECT_NE(help.find("--metrics_listen"), std::string::npos) << help;
}

TEST(GatewayMain, BadFlagValueExitsNonZero) {
  GatewayProcess gateway;
  gateway.Start({"--listen=127.0.0.1:0", "--base_path=no-slash"});
  ASSERT_TRUE(gateway.HasExited(std::chrono::seconds(10)));
  EXPECT_EQ(gateway.exit_code(), 2);
}

// The gateway's caller token (services/common/grpc_auth.h) is required: a
// missing or too short one stops it at start, and the message names the flag,
// never a token.
TEST(GatewayMain, RefusesToStartWithoutItsCallerToken) {
  GatewayProcess missing;
  missing.Start({"--listen=127.0.0.1:0", "--subscription_token_file="});
  ASSERT_TRUE(missing.HasExited(std::chrono::seconds(10)));
  EXPECT_EQ(missing.exit_code(), 2);
  EXPECT_NE(missing.log().find("--subscription_token_file"), std::string::npos) << missing.log();

  GatewayProcess weak;
  const std::string short_token_file = weak.port_file() + ".token";
  std::ofstream(short_token_file) << "short-token\n";
  chmod(short_token_file.c_str(), 0600);
  weak.Start({"--listen=127.0.0.1:0", "--subscription_token_file=" + short_token_file});
  ASSERT_TRUE(weak.HasExited(std::chrono::seconds(10)));
  EXPECT_EQ(weak.exit_code(), 2);
  EXPECT_EQ(weak.log().find("short-token"), std::string::npos) << weak.log();
}

TEST(GatewayMain, EnvironmentSetsDefaultsAndTheAccessLogKeepsSecrets) {
  GatewayProcess gateway;
  gateway.Start(
      {}, {"OCTO_GATEWAY_LISTEN=127.0.0.1:0", "OCTO_SUBSCRIPTION_TARGET=127.0.0.1:1",
           "OCTO_GATEWAY_BASE_PATH=/api/v2", "OCTO_GATEWAY_PORT_FILE=" + gateway.port_file()});
  const int port = gateway.WaitForPort();
  ASSERT_GT(port, 0) << gateway.log();

  TestConnection c(port);
  TestRequest request(http::verb::get,
                      "/api/v2/webhooks/9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e?token=querysecret",
                      11);
  request.set(http::field::authorization, "Bearer octo_topsecretkey");
  auto r = c.RoundTrip(request);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::service_unavailable);  // routed; the service is down
  r = c.RoundTrip(TestRequest(http::verb::get, "/octo/webhooks", 11));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::not_found);

  gateway.Signal(SIGTERM);
  ASSERT_TRUE(gateway.HasExited(std::chrono::seconds(10)));
  const std::string log = gateway.log();
  EXPECT_NE(log.find(R"("component":"gateway")"), std::string::npos) << log;
  EXPECT_NE(
      log.find(R"("msg":"request","method":"GET","route":"/api/v2/webhooks/:id","status":"503")"),
      std::string::npos)
      << log;
  EXPECT_NE(log.find(R"("duration_ms")"), std::string::npos);
  EXPECT_EQ(log.find("topsecretkey"), std::string::npos) << log;
  EXPECT_EQ(log.find("querysecret"), std::string::npos) << log;
  EXPECT_EQ(log.find("9f4c9d0e"), std::string::npos) << log;
  EXPECT_EQ(log.find(std::string(64, 't')), std::string::npos) << log;  // its caller token
}

}  // namespace
}  // namespace octo::gateway
