#pragma once
// A blocking HTTP/1.1 test client over one TCP connection to 127.0.0.1, for
// driving the real gateway server byte by byte (raw writes for malformed
// input, Beast for well-formed requests and responses). Every operation has
// a timeout, so a misbehaving server fails a test instead of hanging it.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace octo::gateway::testing {

using TestResponse = boost::beast::http::response<boost::beast::http::string_body>;
using TestRequest = boost::beast::http::request<boost::beast::http::string_body>;

class TestConnection {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};

  explicit TestConnection(int port);

  bool connected() const { return connected_; }

  // Writes raw bytes. False on error.
  bool Send(std::string_view bytes);
  // Writes a request (Host and Content-Length filled in when missing).
  bool Send(TestRequest request);
  // Reads one response; nullopt on error, close or timeout.
  std::optional<TestResponse> Read(std::chrono::milliseconds timeout = kDefaultTimeout);
  // Send + Read.
  std::optional<TestResponse> RoundTrip(TestRequest request);
  // Reads raw bytes until `needle` arrived; what arrived, or nullopt.
  std::optional<std::string> ReadUntil(std::string_view needle,
                                       std::chrono::milliseconds timeout = kDefaultTimeout);
  // True when the server closes the connection (EOF or reset) within
  // `timeout`; whatever it sends before is discarded.
  bool WaitForClose(std::chrono::milliseconds timeout = kDefaultTimeout);
  void Close();

 private:
  // Runs the io_context until the pending operation completed.
  void Run();

  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
};

// GET `target` on a fresh connection.
std::optional<TestResponse> Get(int port, const std::string& target);

// A raw TCP connection from `source` (a 127.x.y.z address) to 127.0.0.1:port;
// -1 on failure.
int ConnectFrom(const char* source, int port);

// Slow clients ("slowloris"): sends `bytes` on every socket of `fds` every
// `interval` until `until`, and notes when the server closed each (EOF or
// reset), to within `interval`. A server that restarts its timer on every
// byte (an idle timer, not a deadline) never closes them while this runs.
// `each_round`, if set, runs once per round after the sends.
using SteadyTime = std::chrono::steady_clock::time_point;
std::vector<std::optional<SteadyTime>> TrickleUntil(const std::vector<int>& fds,
                                                    std::string_view bytes,
                                                    std::chrono::milliseconds interval,
                                                    SteadyTime until,
                                                    const std::function<void()>& each_round = {});

}  // namespace octo::gateway::testing
