// Self-tests of the end-to-end harness (tests/support/process.h,
// http_client.h): if these break, e2e failures mean nothing.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace octo::testing {
namespace {

using namespace std::chrono_literals;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "octo-process-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<ChildProcess> StartShell(const std::string& script,
                                           std::vector<std::pair<std::string, std::string>> env = {}) {
    auto child = ChildProcess::Start(
        {.binary = "/bin/sh", .args = {"-c", script}, .env = std::move(env), .log_path = dir_ + "/log"});
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? *std::move(child) : nullptr;
  }

  std::string dir_;
};

TEST_F(ProcessTest, CapturesOutputEnvironmentAndExitCode) {
  auto child = StartShell("echo out; echo err >&2; echo \"$OCTO_PROCESS_TEST\"; exit 3",
                          {{"OCTO_PROCESS_TEST", "from-env"}});
  ASSERT_NE(child, nullptr);
  while (child->IsRunning()) std::this_thread::sleep_for(1ms);
  const ExitInfo exit = child->Terminate(5s);  // already exited: reports how
  EXPECT_EQ(exit.exit_code, 3);
  EXPECT_EQ(exit.signal, 0);
  EXPECT_FALSE(exit.Clean());
  const std::string log = child->LogTail();
  EXPECT_NE(log.find("out\n"), std::string::npos) << log;
  EXPECT_NE(log.find("err\n"), std::string::npos) << log;
  EXPECT_NE(log.find("from-env\n"), std::string::npos) << log;
}

TEST_F(ProcessTest, TerminateSendsSigterm) {
  auto child = StartShell("exec sleep 30");
  ASSERT_NE(child, nullptr);
  EXPECT_TRUE(child->IsRunning());
  const auto start = std::chrono::steady_clock::now();
  ExitInfo exit = child->Terminate(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(exit.signal, SIGTERM);
  EXPECT_FALSE(exit.killed_after_timeout);
  EXPECT_FALSE(child->IsRunning());
}

TEST_F(ProcessTest, TerminateFallsBackToSigkill) {
  auto child = StartShell("trap '' TERM; echo ready; while :; do sleep 0.05; done");
  ASSERT_NE(child, nullptr);
  // Wait until the trap is installed.
  for (int i = 0; i < 200 && child->LogTail().find("ready") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ExitInfo exit = child->Terminate(300ms);
  EXPECT_TRUE(exit.killed_after_timeout);
  EXPECT_EQ(exit.signal, SIGKILL);
}

TEST_F(ProcessTest, WaitForPortFileReadsThePort) {
  const std::string port_file = dir_ + "/port";
  auto child = StartShell("sleep 0.1; echo 4242 > '" + port_file + ".tmp'; mv '" + port_file + ".tmp' '" +
                          port_file + "'; exec sleep 30");
  ASSERT_NE(child, nullptr);
  auto port = child->WaitForPortFile(port_file, 5s);
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(*port, 4242);
}

TEST_F(ProcessTest, WaitForPortFileFailsFastWithLogTailWhenTheChildExits) {
  auto child = StartShell("echo 'fatal: cannot bind' >&2; exit 2");
  ASSERT_NE(child, nullptr);
  const auto start = std::chrono::steady_clock::now();
  auto port = child->WaitForPortFile(dir_ + "/never", 10s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(port.status().message().find("fatal: cannot bind"), absl::string_view::npos) << port.status();
  EXPECT_NE(port.status().message().find("exited with code 2"), absl::string_view::npos) << port.status();
}

TEST_F(ProcessTest, WaitForPortFileTimesOut) {
  auto child = StartShell("exec sleep 30");
  ASSERT_NE(child, nullptr);
  auto port = child->WaitForPortFile(dir_ + "/never", 100ms);
  EXPECT_EQ(port.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ProcessTest, MissingBinaryExits127) {
  auto child = ChildProcess::Start({.binary = dir_ + "/no-such-binary", .args = {}, .env = {}, .log_path = dir_ + "/log"});
  ASSERT_TRUE(child.ok()) << child.status();
  while ((*child)->IsRunning()) std::this_thread::sleep_for(1ms);
  EXPECT_EQ((*child)->Terminate(1s).exit_code, 127);
  EXPECT_NE((*child)->LogTail().find("no-such-binary"), std::string::npos);
}

// The guarantee that no service outlives a crashed test run: an intermediate
// process starts a child and dies by SIGKILL; the child must die too.
TEST_F(ProcessTest, ChildDiesWithItsParent) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    ::close(fds[0]);
    auto child = ChildProcess::Start({.binary = "/bin/sleep", .args = {"30"}, .env = {}, .log_path = dir_ + "/log"});
    const pid_t pid = child.ok() ? (*child)->pid() : -1;
    if (::write(fds[1], &pid, sizeof pid) != sizeof pid) ::_exit(1);
    ::pause();  // until the test kills us
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_t grandchild = -1;
  ASSERT_EQ(::read(fds[0], &grandchild, sizeof grandchild), static_cast<ssize_t>(sizeof grandchild));
  ::close(fds[0]);
  ASSERT_GT(grandchild, 0);
  ASSERT_EQ(::kill(grandchild, 0), 0) << "the grandchild should be running";

  ::kill(middle, SIGKILL);
  ::waitpid(middle, nullptr, 0);
  // The grandchild was reparented (to init or a subreaper) and killed; once
  // reaped, kill(pid, 0) fails. A zombie still counts as dead: check /proc.
  bool dead = false;
  for (int i = 0; i < 500 && !dead; ++i) {
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string content;
    std::getline(stat, content);
    const auto close_paren = content.rfind(')');
    dead = !stat || content.empty() ||
           (close_paren != std::string::npos && content.size() > close_paren + 2 && content[close_paren + 2] == 'Z');
    if (!dead) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(dead) << "pid " << grandchild << " outlived its parent";
  if (!dead) ::kill(grandchild, SIGKILL);
}

// ------------------------------------------------------------- HttpClient --

// A one-connection scripted server: answers each request with `reply`.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::string reply, int max_requests = 1)
      : acceptor_(ioc_, {boost::asio::ip::make_address_v4("127.0.0.1"), 0}), reply_(std::move(reply)) {
    thread_ = std::thread([this, max_requests] {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      boost::asio::streambuf buf;
      for (int i = 0; i < max_requests; ++i) {
        boost::asio::read_until(socket, buf, "\r\n\r\n", ec);
        if (ec) return;
        const std::string data(boost::asio::buffers_begin(buf.data()), boost::asio::buffers_end(buf.data()));
        const auto end = data.find("\r\n\r\n") + 4;
        requests_.push_back(data.substr(0, end));
        buf.consume(end);
        boost::asio::write(socket, boost::asio::buffer(reply_), ec);
        if (ec) return;
      }
    });
  }
  ~ScriptedServer() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  const std::vector<std::string>& requests() const { return requests_; }  // after join

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string reply_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

TEST(HttpClientTest, KeepAliveReusesOneConnection) {
  auto server = std::make_unique<ScriptedServer>(
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nok", /*max_requests=*/2);
  HttpClient http(server->port(), 5s);
  http.set_keep_alive(true);
  for (int i = 0; i < 2; ++i) {
    auto r = http.Send({.method = "GET", .target = "/x", .headers = {}, .body = {}});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "ok");
    EXPECT_EQ(r->Header("x-A"), "1");
    EXPECT_EQ(r->Headers("X-a"), (std::vector<std::string>{"1", "2"}));
    EXPECT_TRUE(http.connected());
  }
}

TEST(HttpClientTest, TimesOutOnASilentServer) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address_v4("127.0.0.1"), 0});
  HttpClient http(acceptor.local_endpoint().port(), 200ms);  // the kernel completes the handshake
  auto r = http.Send({.method = "GET", .target = "/", .headers = {}, .body = {}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailable) {
  int port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address_v4("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  HttpClient http(port, 1s);
  EXPECT_EQ(http.Send({}).status().code(), absl::StatusCode::kUnavailable);
}

TEST(HttpClientTest, ParseResponse) {
  auto r = HttpClient::ParseResponse("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, "abc");
  EXPECT_FALSE(HttpClient::ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").ok());
  EXPECT_FALSE(HttpClient::ParseResponse("").ok());
}

// ctest runs this binary once per suite (tests/e2e/CMakeLists.txt): a suite
// missing from that list would silently never run.
TEST(HarnessTest, EverySuiteIsRunByCtest) {
  const std::vector<std::string> listed = absl::StrSplit(OCTO_E2E_CTEST_SUITES, ',');
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const std::string name = unit.GetTestSuite(i)->name();
    EXPECT_NE(std::find(listed.begin(), listed.end(), name), listed.end())
        << "suite " << name << " is not in octo_e2e_suites in tests/e2e/CMakeLists.txt";
  }
}

}  // namespace
}  // namespace octo::testing
