#include "gateway/http_server.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gateway/octo_error.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"
#include "services/common/log.h"

namespace octo::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// After an error answer: how much of what the client still sends is read and
// discarded, and for how long, before the socket is closed.
constexpr std::size_t kMaxLingerBytes = 1 << 20;
constexpr std::chrono::seconds kLingerTimeout{2};
// Wait before accepting again after accept() failed (e.g. out of fds).
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
constexpr std::string_view kUnmatchedRoute = "unmatched";

bool IsHttpParseError(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

// A process-unique id for each answered request, to tell log lines apart and
// quote in support tickets: a random per-process prefix and a sequence number.
std::string NextRequestId() {
  static const std::string prefix = [] {
    std::random_device random;
    return absl::StrFormat("%08x", random());
  }();
  static std::atomic<std::uint64_t> sequence{0};
  return absl::StrCat(prefix, "-", sequence.fetch_add(1, std::memory_order_relaxed) + 1);
}

void LogAccess(std::string_view method, std::string_view route, unsigned status,
               std::chrono::steady_clock::duration duration) {
  const double ms = std::chrono::duration<double, std::milli>(duration).count();
  log::Info("request", {{"method", method},
                        {"route", route},
                        {"status", absl::StrCat(status)},
                        {"duration_ms", absl::StrFormat("%.3f", ms)},
                        {"request_id", NextRequestId()}});
}

}  // namespace

class HttpSession;

class HttpServer::Impl {
 public:
  Impl(Options options, HttpHandler* handler) : options_(std::move(options)), handler_(handler) {}

  ~Impl() { Stop(std::chrono::milliseconds(0)); }

  absl::Status Start();
  void Stop(std::chrono::milliseconds drain);
  int port() const { return port_; }

  const Options& options() const { return options_; }
  HttpHandler* handler() const { return handler_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  void Register(const std::shared_ptr<HttpSession>& session);
  void Unregister(HttpSession* session);

 private:
  void DoAccept();
  void OnAccept(error_code ec, tcp::socket socket);

  const Options options_;
  HttpHandler* const handler_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;  // by the owner's thread only
  bool stopped_ = false;  // by the owner's thread only
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable sessions_gone_;
  std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions_;  // guarded by mu_

  // Declared after the session registry: destroying the io_context destroys
  // the handlers still queued in it, and with them the last references to
  // their sessions, whose destructors unregister themselves.
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_{asio::make_strand(ioc_)};
  asio::steady_timer accept_retry_{acceptor_.get_executor()};
  std::vector<std::thread> threads_;
};

// One connection. Every member is touched only on the connection's strand.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `address` has been admitted by the server's guard, if any.
  HttpSession(HttpServer::Impl* server, tcp::socket socket, std::string address)
      : server_(server), stream_(std::move(socket)), address_(std::move(address)) {}

  ~HttpSession() {
    if (options().guard != nullptr) options().guard->ReleaseConnection(address_);
    server_->Unregister(this);
  }

  asio::any_io_executor executor() { return stream_.get_executor(); }

  void Start() { DoReadHeader(); }

  // Server shutdown: close now if idle or reading, else after the answer.
  void Shutdown() {
    shutting_down_ = true;
    if (state_ == State::kReading || state_ == State::kClosing) {
      error_code ignored;
      stream_.socket().cancel(ignored);
    }
  }

 private:
  enum class State { kReading, kHandling, kWriting, kClosing, kClosed };

  const HttpServer::Options& options() const { return server_->options(); }

  void DoReadHeader() {
    if (shutting_down_ || server_->stopping()) return Close();
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(options().max_header_bytes);
    parser_->body_limit(options().max_body_bytes);
    // Bounds the wait for the next request (idle keep-alive) and the header.
    stream_.expires_after(options().header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, std::size_t) { self->OnHeader(ec); });
  }

  void OnHeader(error_code ec) {
    if (ec) return OnReadError(ec);
    request_start_ = std::chrono::steady_clock::now();
    // The address's rate is spent as soon as the header is in: a client over
    // it gets no 100 Continue and its body is not read.
    if (options().guard != nullptr) {
      if (const int wait = options().guard->AcquireRequest(address_); wait > 0)
        return RefuseOverRate(wait);
    }
    if (parser_->is_done()) return Dispatch();
    const auto expect = parser_->get().find(http::field::expect);
    if (expect != parser_->get().end() &&
        absl::EqualsIgnoreCase(AbslView(expect->value()), "100-continue")) {
      continue_.emplace(http::status::continue_, parser_->get().version());
      stream_.expires_after(options().write_timeout);
      http::async_write(stream_, *continue_,
                        [self = shared_from_this()](error_code write_ec, std::size_t) {
                          if (write_ec) return self->Close();
                          self->DoReadBody();
                        });
      return;
    }
    DoReadBody();
  }

  void DoReadBody() {
    stream_.expires_after(options().read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, std::size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  void OnReadError(const error_code& ec) {
    if (ec == http::error::body_limit) {
      return AnswerAndClose(
          BadRequest(absl::StrCat("The request body exceeds ", options().max_body_bytes, " bytes"),
                     http::status::payload_too_large),
          CapabilitiesEcho(parser_->get().base()));
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return AnswerAndClose(BadRequest(absl::StrCat("The request header exceeds ",
                                                    options().max_header_bytes, " bytes"),
                                       http::status::request_header_fields_too_large),
                            "");
    }
    if (ec != http::error::end_of_stream && ec != http::error::partial_message &&
        IsHttpParseError(ec)) {
      return AnswerAndClose(BadRequest(absl::StrCat("Malformed HTTP request: ", ec.message())), "");
    }
    // end_of_stream (closed between requests), partial_message, timeout,
    // reset, cancelled by Shutdown(): nobody to answer.
    Close();
  }

  void Dispatch() {
    state_ = State::kHandling;
    stream_.expires_never();
    HttpRequest request = parser_->release();
    method_ = PrintableAscii(request.method_string(), 16);
    if (options().metrics != nullptr) options().metrics->RequestStarted();
    server_->handler()->Handle(
        std::move(request), [self = shared_from_this()](HandlerResult result) {
          asio::post(self->executor(), [self, result = std::move(result)]() mutable {
            self->Send(std::move(result));
          });
        });
  }

  // 429 + Retry-After. A request without a body keeps its connection (it is
  // the rate that is limited); one with a body still unread is closed, so the
  // body is never read.
  void RefuseOverRate(int wait) {
    const bool body_unread = !parser_->is_done();
    method_ = PrintableAscii(parser_->get().method_string(), 16);
    route_ = std::string(kUnmatchedRoute);
    if (options().metrics != nullptr) options().metrics->RequestStarted();
    HttpResponse response = TooManyRequestsResponse("Too many requests from this address", wait,
                                                    parser_->get().version());
    response.set("Octo-Capabilities", "");
    response.keep_alive(!body_unread && parser_->get().keep_alive() && !shutting_down_ &&
                        !server_->stopping());
    Write(std::move(response), /*linger=*/body_unread);
  }

  void Send(HandlerResult result) {
    if (state_ != State::kHandling) return;
    const bool keep_alive = result.response.keep_alive() && !shutting_down_ && !server_->stopping();
    result.response.keep_alive(keep_alive);
    route_ = std::move(result.route);
    Write(std::move(result.response), /*linger=*/false);
  }

  // An error found while reading: answer it, then close gracefully.
  void AnswerAndClose(const OctoError& error, std::string echo) {
    method_ = parser_ ? PrintableAscii(parser_->get().method_string(), 16) : "";
    if (method_.empty()) method_ = "-";
    route_ = std::string(kUnmatchedRoute);
    if (request_start_ == std::chrono::steady_clock::time_point{})
      request_start_ = std::chrono::steady_clock::now();
    if (options().metrics != nullptr) options().metrics->RequestStarted();
    HttpResponse response = ErrorResponse(error, 11);
    response.set("Octo-Capabilities", echo);
    response.keep_alive(false);
    Write(std::move(response), /*linger=*/true);
  }

  void Write(HttpResponse response, bool linger) {
    state_ = State::kWriting;
    response_ = std::make_unique<HttpResponse>(std::move(response));
    stream_.expires_after(options().write_timeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), linger](error_code ec, std::size_t) {
                        self->OnWrite(ec, linger);
                      });
  }

  void OnWrite(const error_code& ec, bool linger) {
    const auto duration = std::chrono::steady_clock::now() - request_start_;
    LogAccess(method_, route_, response_->result_int(), duration);
    if (options().metrics != nullptr) {
      options().metrics->RequestFinished(route_, method_, static_cast<int>(response_->result_int()),
                                         std::chrono::duration<double>(duration).count());
    }
    const bool close = response_->need_eof();
    response_.reset();
    request_start_ = {};
    if (ec) return Close();
    if (linger) return Linger();
    if (close) return Close();
    DoReadHeader();
  }

  // Half-close, then read and discard until the client closes, 1 MiB or 2 s.
  void Linger() {
    state_ = State::kClosing;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTimeout);
    DoDiscard();
  }

  void DoDiscard() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ >= kMaxLingerBytes) return self->Close();
                              self->DoDiscard();
                            });
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  HttpServer::Impl* const server_;
  beast::tcp_stream stream_;
  const std::string address_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::unique_ptr<HttpResponse> response_;
  State state_ = State::kReading;
  bool shutting_down_ = false;
  std::chrono::steady_clock::time_point request_start_{};
  std::string method_;
  std::string route_;
  std::array<char, 4096> discard_{};
  std::size_t discarded_ = 0;
};

absl::Status HttpServer::Impl::Start() {
  if (started_) return absl::FailedPreconditionError("the server was already started");
  started_ = true;
  error_code ec;
  tcp::resolver resolver(ioc_);
  const auto endpoints =
      resolver.resolve(options_.host, std::to_string(options_.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve '", options_.host, "': ", ec.message()));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  const std::string where = absl::StrCat(endpoint.address().to_string(), ":", endpoint.port());
  if (acceptor_.open(endpoint.protocol(), ec); ec) {
    return absl::UnavailableError(absl::StrCat("socket for ", where, ": ", ec.message()));
  }
  if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return absl::UnavailableError(absl::StrCat("SO_REUSEADDR on ", where, ": ", ec.message()));
  }
  if (acceptor_.bind(endpoint, ec); ec) {
    return absl::UnavailableError(absl::StrCat("bind ", where, ": ", ec.message()));
  }
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return absl::UnavailableError(absl::StrCat("listen on ", where, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec)
    return absl::UnavailableError(absl::StrCat("local endpoint of ", where, ": ", ec.message()));

  work_.emplace(ioc_.get_executor());
  asio::post(acceptor_.get_executor(), [this] { DoAccept(); });
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] {
      // A handler that throws must not take the process down: log and go on.
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          log::Error("uncaught exception on an I/O thread", {{"what", e.what()}});
        } catch (...) {
          log::Error("uncaught non-standard exception on an I/O thread");
        }
      }
    });
  }
  return absl::OkStatus();
}

void HttpServer::Impl::DoAccept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void HttpServer::Impl::OnAccept(error_code ec, tcp::socket socket) {
  if (stopping() || ec == asio::error::operation_aborted) return;
  if (ec) {
    // EMFILE/ENFILE/ENOBUFS...: back off briefly instead of spinning.
    log::Warn("accept failed", {{"error", ec.message()}});
    accept_retry_.expires_after(kAcceptRetryDelay);
    accept_retry_.async_wait([this](error_code wait_ec) {
      if (!wait_ec && !stopping()) DoAccept();
    });
    return;
  }
  bool full = false;
  {
    std::lock_guard lock(mu_);
    full = static_cast<int>(sessions_.size()) >= options_.max_connections;
  }
  error_code ignored;
  const tcp::endpoint remote = socket.remote_endpoint(ignored);
  std::string address = ignored ? std::string("unknown") : ClientAddressKey(remote.address());
  if (full) {
    log::Warn("connection limit reached; closing a new connection");
    if (options_.guard != nullptr) options_.guard->CountGlobalConnectionLimit();
    socket.close(ignored);
  } else if (options_.guard != nullptr && !options_.guard->AdmitConnection(address)) {
    // No log line per refusal: a client at its cap would flood the log.
    socket.close(ignored);
  } else {
    socket.set_option(tcp::no_delay(true), ignored);
    auto session = std::make_shared<HttpSession>(this, std::move(socket), std::move(address));
    Register(session);
    asio::post(session->executor(), [session] { session->Start(); });
  }
  DoAccept();
}

void HttpServer::Impl::Register(const std::shared_ptr<HttpSession>& session) {
  std::lock_guard lock(mu_);
  sessions_.emplace(session.get(), session);
}

void HttpServer::Impl::Unregister(HttpSession* session) {
  std::lock_guard lock(mu_);
  sessions_.erase(session);
  if (sessions_.empty()) sessions_gone_.notify_all();
}

void HttpServer::Impl::Stop(std::chrono::milliseconds drain) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_release);

  asio::post(acceptor_.get_executor(), [this] {
    error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  std::vector<std::shared_ptr<HttpSession>> live;
  {
    std::lock_guard lock(mu_);
    for (const auto& [raw, weak] : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) {
    asio::post(session->executor(), [session] { session->Shutdown(); });
  }
  live.clear();
  {
    std::unique_lock lock(mu_);
    sessions_gone_.wait_for(lock, drain, [this] { return sessions_.empty(); });
  }
  work_.reset();
  ioc_.stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

HttpServer::HttpServer(Options options, HttpHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() = default;

absl::Status HttpServer::Start() { return impl_->Start(); }

int HttpServer::port() const { return impl_->port(); }

void HttpServer::Stop(std::chrono::milliseconds drain) { impl_->Stop(drain); }

}  // namespace octo::gateway
