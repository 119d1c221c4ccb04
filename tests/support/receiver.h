#pragma once
// A real HTTP/1.1 server on 127.0.0.1 that stands in for a partner's webhook
// endpoint in tests: it records every request it reads, byte for byte, and
// answers each path by a script (status sequence, delay, Retry-After,
// closing the connection without an answer).
//
// Boost.Beast on its own io_context and threads; keep-alive, pipelining-free
// HTTP/1.1 as libcurl speaks it (an `Expect: 100-continue` is answered with
// 100 Continue). Delays are timers, not sleeping threads, so hundreds of
// slow answers can be pending at once.
//
// Example:
//   auto receiver = octo::testing::HttpReceiver::Start();
//   ASSERT_TRUE(receiver.ok()) << receiver.status();
//   (*receiver)->SetPlan("/flaky", {Reply(500), Reply(503).RetryAfter("1")});
//   ... point a webhook at (*receiver)->Url("/flaky") ...
//   ASSERT_TRUE((*receiver)->WaitFor("/flaky", 3, std::chrono::seconds(10)));
//   std::vector<ReceivedRequest> got = (*receiver)->Requests("/flaky");
//   EXPECT_EQ(got[0].answered_status, 500);
//   EXPECT_EQ(got[2].answered_status, 200);   // after the sequence: `then`
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "tests/support/http_client.h"

namespace octo::testing {

// What the receiver answers to one request.
struct ReceiverAnswer {
  int status = 200;
  // Waited before answering (or closing). The request is recorded when it
  // has been read, before the delay.
  std::chrono::milliseconds delay{0};
  // Sent as the Retry-After header when set ("2", or an HTTP date).
  std::optional<std::string> retry_after;
  // Close the connection (after `delay`) without writing any response.
  bool close_without_answer = false;
  std::string body;      // sent as text/plain
  HttpHeaders headers;   // further response headers

  // Fluent construction (designated initializers that omit members trip
  // GCC 12's -Wmissing-field-initializers):
  //   Reply(503).RetryAfter("2"), Reply(200).Delay(400ms), Hangup()
  ReceiverAnswer Delay(std::chrono::milliseconds d) const {
    ReceiverAnswer a = *this;
    a.delay = d;
    return a;
  }
  ReceiverAnswer RetryAfter(std::string value) const {
    ReceiverAnswer a = *this;
    a.retry_after = std::move(value);
    return a;
  }
  ReceiverAnswer Body(std::string text) const {
    ReceiverAnswer a = *this;
    a.body = std::move(text);
    return a;
  }
};

// Answer with `status`.
inline ReceiverAnswer Reply(int status) {
  ReceiverAnswer a;
  a.status = status;
  return a;
}
// Close the connection without answering.
inline ReceiverAnswer Hangup() {
  ReceiverAnswer a;
  a.close_without_answer = true;
  return a;
}

// One request as the receiver read it.
struct ReceivedRequest {
  std::string method;
  std::string target;   // as on the request line: path and query
  std::string path;     // `target` up to '?'
  HttpHeaders headers;  // in wire order, names as sent
  std::string body;     // the raw body bytes
  std::chrono::system_clock::time_point received_at;  // when it was read completely
  std::chrono::steady_clock::time_point received_steady;
  int connection = 0;  // serial number of the TCP connection it came on (1, 2, ...)
  // What it was answered: the HTTP status, or 0 for close-without-answer.
  // Decided when the request arrives (the answer itself may still be delayed).
  int answered_status = 0;
  // The delay before that answer was written (from when it was read): the
  // answer left no earlier than received_steady + answer_delay.
  std::chrono::milliseconds answer_delay{0};

  // The first value of header `name` (case-insensitive), if present.
  std::optional<std::string> Header(std::string_view name) const;
  // Every value of header `name` (case-insensitive), in order.
  std::vector<std::string> Headers(std::string_view name) const;
  // How many times header `name` occurs.
  std::size_t HeaderCount(std::string_view name) const { return Headers(name).size(); }
};

struct ReceiverOptions {
  int port = 0;  // 0: the kernel chooses
  int threads = 2;
};

// Thread-safe. Stop() (or destruction) closes the listener and every
// connection; pending delayed answers are dropped.
class HttpReceiver {
 public:
  // Binds 127.0.0.1:`options.port` and starts serving. UNAVAILABLE when the
  // port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpReceiver>> Start(ReceiverOptions options = {});

  ~HttpReceiver();
  HttpReceiver(const HttpReceiver&) = delete;
  HttpReceiver& operator=(const HttpReceiver&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port><path>"; `userinfo` ("user:pass") is put before
  // the host when given.
  std::string Url(std::string_view path, std::string_view userinfo = {}) const;

  // The n-th request (0-based) to `path` is answered with sequence[n]; every
  // one after the sequence with `then`. Replaces the path's plan and restarts
  // its count. Paths without a plan get the default answer (200).
  void SetPlan(const std::string& path, std::vector<ReceiverAnswer> sequence, ReceiverAnswer then = {});
  // The answer for paths without a plan (initially 200, no delay).
  void SetDefaultAnswer(ReceiverAnswer answer);
  // Requests to `path` are answered by `answerer`, called with each request
  // as it was read (under the receiver's lock: it must not call back into
  // the receiver). Takes precedence over a plan for the path.
  using Answerer = std::function<ReceiverAnswer(const ReceivedRequest&)>;
  void SetAnswerer(const std::string& path, Answerer answerer);

  // Every request so far, in arrival order.
  std::vector<ReceivedRequest> Requests() const;
  std::vector<ReceivedRequest> Requests(std::string_view path) const;
  std::size_t Count() const;
  std::size_t Count(std::string_view path) const;
  // TCP connections accepted so far.
  int Connections() const;

  // Blocks until at least `n` requests (to `path`) have arrived; false after
  // `timeout`.
  bool WaitFor(std::size_t n, std::chrono::milliseconds timeout) const;
  bool WaitFor(std::string_view path, std::size_t n, std::chrono::milliseconds timeout) const;

  // Closes the listener and all connections and joins the threads.
  // Idempotent.
  void Stop();

 private:
  struct Impl;
  friend struct Impl;
  HttpReceiver();

  // Records `request` (filling connection, answered_status) and returns the
  // answer to give.
  ReceiverAnswer Record(ReceivedRequest request);

  struct Plan {
    std::vector<ReceiverAnswer> sequence;
    ReceiverAnswer then;
    std::size_t served = 0;
  };

  std::unique_ptr<Impl> impl_;
  int port_ = 0;

  mutable absl::Mutex mu_;
  std::map<std::string, Plan, std::less<>> plans_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Answerer, std::less<>> answerers_ ABSL_GUARDED_BY(mu_);
  ReceiverAnswer default_answer_ ABSL_GUARDED_BY(mu_);
  std::vector<ReceivedRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::size_t, std::less<>> counts_ ABSL_GUARDED_BY(mu_);  // requests per path
  int connections_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace octo::testing
