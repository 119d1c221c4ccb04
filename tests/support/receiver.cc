#include "tests/support/receiver.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace octo::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::uint64_t kBodyLimit = 64u << 20;
constexpr std::uint32_t kHeaderLimit = 256u << 10;
// An idle keep-alive connection is closed after this long.
constexpr auto kIdleTimeout = std::chrono::seconds(60);

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

// ------------------------------------------------------------ ReceivedRequest

std::optional<std::string> ReceivedRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> ReceivedRequest::Headers(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) out.push_back(v);
  }
  return out;
}

// ----------------------------------------------------------------- Session --

namespace {

// One TCP connection: read a request, record it, (wait,) answer, repeat
// while keep-alive. Every operation runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  using RecordFn = std::function<ReceiverAnswer(ReceivedRequest)>;

  Session(tcp::socket socket, int serial, RecordFn record)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), serial_(serial), record_(std::move(record)) {}

  void Run() { ReadHeader(); }

 private:
  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kIdleTimeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return Close();
    const auto& req = parser_->get();
    auto expect = req.find(http::field::expect);
    if (expect != req.end() && EqualsIgnoreCase(expect->value(), "100-continue")) {
      // libcurl waits (up to a second) for this before sending a large body.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code wec, std::size_t) {
                         if (wec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->OnRequest(ec);
    });
  }

  void OnRequest(beast::error_code ec) {
    if (ec) return Close();
    const http::request<http::string_body>& req = parser_->get();
    ReceivedRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.path = std::string(PathOf(r.target));
    for (const auto& field : req) r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    r.body = req.body();
    r.received_at = std::chrono::system_clock::now();
    r.received_steady = std::chrono::steady_clock::now();
    r.connection = serial_;
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    answer_ = record_(std::move(r));
    if (answer_.delay.count() > 0) {
      // No read deadline while the (deliberately slow) answer is pending.
      stream_.expires_never();
      timer_.expires_after(answer_.delay);
      timer_.async_wait([self = shared_from_this()](beast::error_code tec) {
        if (tec) return self->Close();
        self->Answer();
      });
      return;
    }
    Answer();
  }

  void Answer() {
    if (answer_.close_without_answer) return Close();
    response_.emplace();
    response_->version(version_);
    response_->result(static_cast<unsigned>(answer_.status));
    response_->set(http::field::server, "octo-test-receiver");
    response_->set(http::field::content_type, "text/plain");
    if (answer_.retry_after) response_->set(http::field::retry_after, *answer_.retry_after);
    for (const auto& [name, value] : answer_.headers) response_->insert(name, value);
    response_->body() = answer_.body;
    response_->keep_alive(keep_alive_);
    response_->prepare_payload();
    stream_.expires_after(kIdleTimeout);
    http::async_write(stream_, *response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->Close();
      self->ReadHeader();
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  ReceiverAnswer answer_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  const int serial_;
  RecordFn record_;
};

// Accepts connections until the io_context stops.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  using AcceptedFn = std::function<void(tcp::socket)>;

  Listener(net::io_context& ioc, AcceptedFn accepted)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), accepted_(std::move(accepted)) {}

  beast::error_code Listen(const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    return ec;
  }
  int port() const { return acceptor_.local_endpoint().port(); }

  void Accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) self->accepted_(std::move(socket));
      self->Accept();
    });
  }

 private:
  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  AcceptedFn accepted_;
};

}  // namespace

struct HttpReceiver::Impl {
  net::io_context ioc;  // first: destroyed last
  std::shared_ptr<Listener> listener;
  std::vector<std::thread> threads;
};

// ------------------------------------------------------------ HttpReceiver --

HttpReceiver::HttpReceiver() : impl_(std::make_unique<Impl>()) {}

HttpReceiver::~HttpReceiver() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpReceiver>> HttpReceiver::Start(ReceiverOptions options) {
  std::unique_ptr<HttpReceiver> receiver(new HttpReceiver());
  HttpReceiver* self = receiver.get();
  Impl& impl = *receiver->impl_;
  impl.listener = std::make_shared<Listener>(impl.ioc, [self](tcp::socket socket) {
    int serial = 0;
    {
      absl::MutexLock lock(&self->mu_);
      serial = ++self->connections_;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), serial, [self](ReceivedRequest r) {
      return self->Record(std::move(r));
    })->Run();
  });
  const tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(options.port));
  if (beast::error_code ec = impl.listener->Listen(endpoint)) {
    return absl::UnavailableError(absl::StrCat("receiver: listen on 127.0.0.1:", options.port, ": ", ec.message()));
  }
  receiver->port_ = impl.listener->port();
  impl.listener->Accept();
  const int threads = std::max(1, options.threads);
  impl.threads.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    impl.threads.emplace_back([&impl]() {
      auto guard = net::make_work_guard(impl.ioc);
      impl.ioc.run();
    });
  }
  return receiver;
}

void HttpReceiver::Stop() {
  if (!impl_) return;
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
  // The listener, then the io_context: destroying it destroys the pending
  // handlers, and with them the sessions and their sockets.
  impl_->listener.reset();
  impl_.reset();
}

std::string HttpReceiver::Url(std::string_view path, std::string_view userinfo) const {
  std::string url = "http://";
  if (!userinfo.empty()) url.append(userinfo).append("@");
  return url.append(absl::StrCat("127.0.0.1:", port_)).append(path);
}

void HttpReceiver::SetPlan(const std::string& path, std::vector<ReceiverAnswer> sequence, ReceiverAnswer then) {
  absl::MutexLock lock(&mu_);
  plans_[path] = Plan{std::move(sequence), std::move(then), 0};
}

void HttpReceiver::SetDefaultAnswer(ReceiverAnswer answer) {
  absl::MutexLock lock(&mu_);
  default_answer_ = std::move(answer);
}

void HttpReceiver::SetAnswerer(const std::string& path, Answerer answerer) {
  absl::MutexLock lock(&mu_);
  answerers_[path] = std::move(answerer);
}

ReceiverAnswer HttpReceiver::Record(ReceivedRequest request) {
  absl::MutexLock lock(&mu_);
  ReceiverAnswer answer = default_answer_;
  if (auto a = answerers_.find(request.path); a != answerers_.end()) {
    answer = a->second(request);
  } else if (auto it = plans_.find(request.path); it != plans_.end()) {
    Plan& plan = it->second;
    answer = plan.served < plan.sequence.size() ? plan.sequence[plan.served] : plan.then;
    ++plan.served;
  }
  request.answered_status = answer.close_without_answer ? 0 : answer.status;
  request.answer_delay = answer.delay;
  ++counts_[request.path];
  requests_.push_back(std::move(request));
  return answer;
}

std::vector<ReceivedRequest> HttpReceiver::Requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

std::vector<ReceivedRequest> HttpReceiver::Requests(std::string_view path) const {
  absl::MutexLock lock(&mu_);
  std::vector<ReceivedRequest> out;
  for (const ReceivedRequest& r : requests_) {
    if (r.path == path) out.push_back(r);
  }
  return out;
}

std::size_t HttpReceiver::Count() const {
  absl::MutexLock lock(&mu_);
  return requests_.size();
}

std::size_t HttpReceiver::Count(std::string_view path) const {
  absl::MutexLock lock(&mu_);
  const auto it = counts_.find(path);
  return it == counts_.end() ? 0 : it->second;
}

int HttpReceiver::Connections() const {
  absl::MutexLock lock(&mu_);
  return connections_;
}

namespace {

// Waits on `mu` (held) until `condition` holds or `timeout` has passed on the
// steady clock. absl's timed wait ends by absl::Now(), its own estimate of
// the wall clock, which can wake it a little before `timeout` has passed on
// the steady clock (ReceiverTest times two failed waits with it): so the
// wait goes on for whatever the steady clock says is left.
bool AwaitUntilSteadyDeadline(absl::Mutex& mu, const absl::Condition& condition,
                              std::chrono::milliseconds timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= left.zero()) return condition.Eval();
    if (mu.AwaitWithTimeout(condition, absl::FromChrono(left))) return true;
  }
}

}  // namespace

bool HttpReceiver::WaitFor(std::size_t n, std::chrono::milliseconds timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requests_.size() >= n; };
  return AwaitUntilSteadyDeadline(mu_, absl::Condition(&enough), timeout);
}

bool HttpReceiver::WaitFor(std::string_view path, std::size_t n, std::chrono::milliseconds timeout) const {
  absl::MutexLock lock(&mu_);
  // Counted per path as requests are recorded: the condition is evaluated
  // at releases of mu_ while a test waits, and a scan of every request
  // recorded made each new request cost O(requests so far) under the lock.
  auto enough = [this, path, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // A path no request has reached yet counts 0 (WaitFor(path, 0) holds).
    const auto it = counts_.find(path);
    return (it == counts_.end() ? 0 : it->second) >= n;
  };
  return AwaitUntilSteadyDeadline(mu_, absl::Condition(&enough), timeout);
}

}  // namespace octo::testing
