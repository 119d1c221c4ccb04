#include "gateway/http_session.h"

#include <atomic>
#include <cstdint>
#include <random>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gateway/request_parsing.h"
#include "gateway/responses.h"
#include "gateway/string_views.h"
#include "services/common/log.h"

namespace octo::gateway {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// After an error answer: how much of what the client still sends is read and
// discarded, and for how long, before the socket is closed.
constexpr std::size_t kMaxLingerBytes = 1 << 20;
constexpr std::chrono::seconds kLingerTimeout{2};
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

HttpSession::HttpSession(SessionOwner* owner, tcp::socket socket, std::string address)
    : owner_(owner), stream_(std::move(socket)), address_(std::move(address)) {}

HttpSession::~HttpSession() {
  if (options().guard != nullptr) options().guard->ReleaseConnection(address_);
  owner_->Unregister(this);
}

void HttpSession::Shutdown() {
  shutting_down_ = true;
  if (state_ == State::kReading || state_ == State::kClosing) {
    error_code ignored;
    stream_.socket().cancel(ignored);
  }
}

void HttpSession::DoReadHeader() {
  if (shutting_down_ || owner_->stopping()) return Close();
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

void HttpSession::OnHeader(error_code ec) {
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

void HttpSession::DoReadBody() {
  stream_.expires_after(options().read_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](error_code ec, std::size_t) {
                     if (ec) return self->OnReadError(ec);
                     self->Dispatch();
                   });
}

void HttpSession::OnReadError(const error_code& ec) {
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

void HttpSession::Dispatch() {
  state_ = State::kHandling;
  stream_.expires_never();
  HttpRequest request = parser_->release();
  method_ = PrintableAscii(request.method_string(), 16);
  if (options().metrics != nullptr) options().metrics->RequestStarted();
  owner_->handler()->Handle(
      std::move(request), [self = shared_from_this()](HandlerResult result) {
        asio::post(self->executor(), [self, result = std::move(result)]() mutable {
          self->Send(std::move(result));
        });
      });
}

// 429 + Retry-After. A request without a body keeps its connection (it is
// the rate that is limited); one with a body still unread is closed, so the
// body is never read.
void HttpSession::RefuseOverRate(int wait) {
  const bool body_unread = !parser_->is_done();
  method_ = PrintableAscii(parser_->get().method_string(), 16);
  route_ = std::string(kUnmatchedRoute);
  if (options().metrics != nullptr) options().metrics->RequestStarted();
  HttpResponse response = TooManyRequestsResponse("Too many requests from this address", wait,
                                                  parser_->get().version());
  response.set("Octo-Capabilities", "");
  response.keep_alive(!body_unread && parser_->get().keep_alive() && !shutting_down_ &&
                      !owner_->stopping());
  Write(std::move(response), /*linger=*/body_unread);
}

void HttpSession::Send(HandlerResult result) {
  if (state_ != State::kHandling) return;
  const bool keep_alive = result.response.keep_alive() && !shutting_down_ && !owner_->stopping();
  result.response.keep_alive(keep_alive);
  route_ = std::move(result.route);
  Write(std::move(result.response), /*linger=*/false);
}

// An error found while reading: answer it, then close gracefully.
void HttpSession::AnswerAndClose(const OctoError& error, std::string echo) {
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

void HttpSession::Write(HttpResponse response, bool linger) {
  state_ = State::kWriting;
  response_ = std::make_unique<HttpResponse>(std::move(response));
  stream_.expires_after(options().write_timeout);
  http::async_write(stream_, *response_,
                    [self = shared_from_this(), linger](error_code ec, std::size_t) {
                      self->OnWrite(ec, linger);
                    });
}

void HttpSession::OnWrite(const error_code& ec, bool linger) {
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
void HttpSession::Linger() {
  state_ = State::kClosing;
  error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLingerTimeout);
  DoDiscard();
}

void HttpSession::DoDiscard() {
  stream_.async_read_some(asio::buffer(discard_),
                          [self = shared_from_this()](error_code ec, std::size_t n) {
                            self->discarded_ += n;
                            if (ec || self->discarded_ >= kMaxLingerBytes) return self->Close();
                            self->DoDiscard();
                          });
}

void HttpSession::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
}

}  // namespace octo::gateway
