#pragma once
// A small synchronous HTTP/1.1 client for tests, to 127.0.0.1 only.
//
// Synchronous to the caller; underneath, Boost.Beast async operations on a
// private io_context, so every call has a deadline and a hung server fails
// the test instead of hanging it.
//
// Example:
//   octo::testing::HttpClient http(gateway_port);
//   auto r = http.Send({.method = "POST", .target = "/octo/webhooks",
//                       .headers = {{"Authorization", "Bearer " + key},
//                                   {"Content-Type", "application/json"}},
//                       .body = R"({"event":"booking_update","url":"https://x.test/h"})"});
//   ASSERT_TRUE(r.ok()) << r.status();
//   EXPECT_EQ(r->status, 200);
//
//   // Malformed input, byte for byte:
//   auto raw = http.SendRaw("GET / HTTP/1.1\r\nHo", {.half_close = true});
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace octo::testing {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  HttpHeaders headers;  // sent as given, in order; Host is added if absent
  // When set, sent with Content-Length (also when empty). Content-Type is not
  // added: tests choose it.
  std::optional<std::string> body;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  HttpHeaders headers;  // in wire order, names as sent
  std::string body;

  // The first value of header `name` (case-insensitive), if present.
  std::optional<std::string> Header(std::string_view name) const;
  // Every value of header `name` (case-insensitive), in order.
  std::vector<std::string> Headers(std::string_view name) const;
};

struct RawOptions {
  // shutdown(SHUT_WR) after writing, so the server sees EOF (a truncated
  // request rather than a slow one).
  bool half_close = false;
  // How long to wait for the server's answer and close. Hitting it is not an
  // error: RawResult::peer_closed tells the cases apart.
  std::chrono::milliseconds read_timeout = std::chrono::milliseconds(2000);
};

struct RawResult {
  std::string bytes;         // everything the server sent
  bool peer_closed = false;  // the server closed (or reset) the connection
};

// Not thread-safe: one client per thread.
class HttpClient {
 public:
  // `timeout` bounds each Send (connect + write + read).
  explicit HttpClient(int port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // With keep-alive on, consecutive Sends reuse one connection (until the
  // server closes it); off (the default), each Send uses a new connection and
  // asks the server to close it.
  void set_keep_alive(bool on) { keep_alive_ = on; }

  // One request, one response. UNAVAILABLE when the connection fails,
  // DEADLINE_EXCEEDED on timeout, INTERNAL for an unparsable response. When
  // the server answers before reading the whole body (e.g. 413) and closes,
  // its response is still returned.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);

  // Writes `bytes` on a new connection and collects whatever comes back.
  // Fails only when it cannot connect.
  absl::StatusOr<RawResult> SendRaw(std::string_view bytes, RawOptions options = {});

  // True when the current keep-alive connection is open (for tests of
  // connection reuse).
  bool connected() const;

  // Parses the first HTTP response in `raw` (e.g. RawResult::bytes).
  static absl::StatusOr<HttpResponse> ParseResponse(std::string_view raw);

  int port() const { return port_; }

 private:
  struct Impl;
  const int port_;
  const std::chrono::milliseconds timeout_;
  bool keep_alive_ = false;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octo::testing
