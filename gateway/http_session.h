#pragma once
// One connection of the gateway's HTTP server (http_server.h), apart from
// the listener: it reads one request at a time under the slow-client
// deadlines (header, body, write), spends the client address's request rate
// as soon as a header is in (429 before any 100 Continue), hands the request
// to the handler, writes the answers in order, and closes a connection that
// erred gracefully (half-close, then discard what the client still sends, up
// to 1 MiB or 2 s). Each answered request is logged (method, route template,
// status, duration, request id) and counted.
//
// Every member is touched only on the connection's strand.
#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "gateway/http_server.h"
#include "gateway/http_types.h"
#include "gateway/octo_error.h"

namespace octo::gateway {

class HttpSession;

// What a connection needs of the server that accepted it.
class SessionOwner {
 public:
  virtual const HttpServer::Options& options() const = 0;
  virtual HttpHandler* handler() const = 0;
  // The server is stopping: answer what is in progress, read nothing more.
  virtual bool stopping() const = 0;
  // `session` is being destroyed.
  virtual void Unregister(HttpSession* session) = 0;

 protected:
  ~SessionOwner() = default;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `address` (ClientAddressKey) has been admitted by the server's guard, if
  // any; the session releases it when destroyed. `owner` outlives it.
  HttpSession(SessionOwner* owner, boost::asio::ip::tcp::socket socket, std::string address);
  ~HttpSession();

  boost::asio::any_io_executor executor() { return stream_.get_executor(); }

  // Starts reading; on the session's executor.
  void Start() { DoReadHeader(); }

  // Server shutdown: close now if idle or reading, else after the answer.
  // On the session's executor.
  void Shutdown();

 private:
  enum class State { kReading, kHandling, kWriting, kClosing, kClosed };
  using error_code = boost::system::error_code;

  const HttpServer::Options& options() const { return owner_->options(); }

  void DoReadHeader();
  void OnHeader(error_code ec);
  void DoReadBody();
  void OnReadError(const error_code& ec);
  void Dispatch();
  void RefuseOverRate(int wait);
  void Send(HandlerResult result);
  void AnswerAndClose(const OctoError& error, std::string echo);
  void Write(HttpResponse response, bool linger);
  void OnWrite(const error_code& ec, bool linger);
  void Linger();
  void DoDiscard();
  void Close();

  SessionOwner* const owner_;
  boost::beast::tcp_stream stream_;
  const std::string address_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::optional<boost::beast::http::response<boost::beast::http::empty_body>> continue_;
  std::unique_ptr<HttpResponse> response_;
  State state_ = State::kReading;
  bool shutting_down_ = false;
  std::chrono::steady_clock::time_point request_start_{};
  std::string method_;
  std::string route_;
  std::array<char, 4096> discard_{};
  std::size_t discarded_ = 0;
};

}  // namespace octo::gateway
