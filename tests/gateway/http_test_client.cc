#include "tests/gateway/http_test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace octo::gateway::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;

TestConnection::TestConnection(int port) : stream_(ioc_) {
  error_code result = asio::error::would_block;
  stream_.expires_after(kDefaultTimeout);
  stream_.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                                static_cast<unsigned short>(port)),
                        [&](error_code ec) { result = ec; });
  Run();
  connected_ = !result;
}

void TestConnection::Run() {
  ioc_.restart();
  ioc_.run();
}

bool TestConnection::Send(std::string_view bytes) {
  error_code result = asio::error::would_block;
  stream_.expires_after(kDefaultTimeout);
  asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()),
                    [&](error_code ec, std::size_t) { result = ec; });
  Run();
  return !result;
}

bool TestConnection::Send(TestRequest request) {
  if (request.find(http::field::host) == request.end()) request.set(http::field::host, "127.0.0.1");
  request.prepare_payload();
  error_code result = asio::error::would_block;
  stream_.expires_after(kDefaultTimeout);
  http::async_write(stream_, request, [&](error_code ec, std::size_t) { result = ec; });
  Run();
  return !result;
}

std::optional<TestResponse> TestConnection::Read(std::chrono::milliseconds timeout) {
  TestResponse response;
  error_code result = asio::error::would_block;
  stream_.expires_after(timeout);
  http::async_read(stream_, buffer_, response, [&](error_code ec, std::size_t) { result = ec; });
  Run();
  if (result) return std::nullopt;
  return response;
}

std::optional<TestResponse> TestConnection::RoundTrip(TestRequest request) {
  if (!Send(std::move(request))) return std::nullopt;
  return Read();
}

std::optional<std::string> TestConnection::ReadUntil(std::string_view needle,
                                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string_view have(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    if (const auto pos = have.find(needle); pos != std::string_view::npos) {
      std::string out(have.substr(0, pos + needle.size()));
      buffer_.consume(pos + needle.size());
      return out;
    }
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
    error_code result = asio::error::would_block;
    std::size_t n = 0;
    stream_.expires_after(left);
    stream_.async_read_some(buffer_.prepare(4096), [&](error_code ec, std::size_t bytes) {
      result = ec;
      n = bytes;
    });
    Run();
    buffer_.commit(n);
    if (result) return std::nullopt;
  }
}

bool TestConnection::WaitForClose(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char scratch[4096];
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return false;
    error_code result = asio::error::would_block;
    stream_.expires_after(left);
    stream_.async_read_some(asio::buffer(scratch),
                            [&](error_code ec, std::size_t) { result = ec; });
    Run();
    if (result == beast::error::timeout) return false;
    if (result) return true;  // eof, reset, ...
  }
}

void TestConnection::Close() {
  error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
}

std::optional<TestResponse> Get(int port, const std::string& target) {
  TestConnection connection(port);
  if (!connection.connected()) return std::nullopt;
  return connection.RoundTrip(TestRequest(http::verb::get, target, 11));
}

int ConnectFrom(const char* source, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source, &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

namespace {

// True when the peer has closed `fd`; reads and drops what it sent.
bool PeerClosed(int fd) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

}  // namespace

std::vector<std::optional<SteadyTime>> TrickleUntil(const std::vector<int>& fds,
                                                    std::string_view bytes,
                                                    std::chrono::milliseconds interval,
                                                    SteadyTime until,
                                                    const std::function<void()>& each_round) {
  std::vector<std::optional<SteadyTime>> closed(fds.size());
  for (;;) {
    const SteadyTime round = std::chrono::steady_clock::now();
    std::size_t open = 0;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (closed[i].has_value()) continue;
      if (PeerClosed(fds[i])) {
        closed[i] = round;
        continue;
      }
      ++open;
      send(fds[i], bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (open == 0 || round >= until) return closed;
    if (each_round) each_round();
    std::this_thread::sleep_until(std::min(round + interval, until));
  }
}

}  // namespace octo::gateway::testing
