#pragma once
// A scripted HTTP/1.1 receiver on 127.0.0.1 for the dispatcher's tests: it
// records every request (headers in the order received, body byte for byte)
// and answers what the test's handler says: a status with headers and body,
// after a delay, or by closing or resetting the connection.
//
// Example:
//   HttpReceiver receiver;
//   receiver.SetHandler([](const ReceivedRequest& r) { return Reply(503); });
//   ... send to receiver.Url("/hook") ...
//   ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(5)));
//   EXPECT_EQ(receiver.Requests()[0].Header("webhook-id"), "msg_...");
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace octo::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;
  absl::Time received_at;
  int connection = 0;  // which connection it came on (1, 2, ...)

  // The value of the first header of that name (case-insensitive), if any.
  std::optional<std::string> Header(std::string_view name) const;
  int HeaderCount(std::string_view name) const;
};

struct ScriptedResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration delay;    // before answering (interrupted when the receiver stops)
  bool close = false;      // answer, then close the connection
  bool reset = false;      // no answer: reset the connection (RST)
  std::string raw;         // when set, written as is instead of a response
};

// Shorthands for handlers.
ScriptedResponse Reply(int status, std::string body = {},
                       std::vector<std::pair<std::string, std::string>> headers = {});
ScriptedResponse Delayed(absl::Duration delay, int status = 200);
ScriptedResponse ResetConnection();
ScriptedResponse Raw(std::string bytes);

class HttpReceiver {
 public:
  using Handler = std::function<ScriptedResponse(const ReceivedRequest&)>;

  // Listens on 127.0.0.1 on a free port; answers 200 "ok" until told otherwise.
  // `listen_backlog`: the listen(2) queue; small ones (Python's http.server
  // uses 5) drop the SYNs of a burst of new connections, which the client
  // then retransmits after Linux's 1 s initial RTO.
  explicit HttpReceiver(int listen_backlog = 512);
  ~HttpReceiver();
  HttpReceiver(const HttpReceiver&) = delete;
  HttpReceiver& operator=(const HttpReceiver&) = delete;

  void SetHandler(Handler handler);
  int port() const { return port_; }
  // "http://127.0.0.1:<port><path>".
  std::string Url(std::string_view path = "/") const;

  std::vector<ReceivedRequest> Requests() const;
  // True once at least n requests were received (false after the timeout).
  bool WaitForRequests(std::size_t n, absl::Duration timeout) const;
  int Connections() const { return connections_.load(); }
  // The most requests that were being handled at the same time.
  int MaxConcurrent() const { return max_concurrent_.load(); }

 private:
  void AcceptLoop();
  void Serve(int fd, int connection);
  // Sleeps up to `d`; false when the receiver stops meanwhile.
  bool Sleep(absl::Duration d);

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;                   // guarded by mu_
  Handler handler_;                         // guarded by mu_
  std::vector<ReceivedRequest> requests_;   // guarded by mu_
  std::vector<int> open_fds_;               // guarded by mu_
  std::vector<std::thread> workers_;        // guarded by mu_
  std::atomic<int> connections_{0};
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
};

// A 127.0.0.1 port nothing listens on (bound, then closed).
int UnusedPort();

}  // namespace octo::testing
