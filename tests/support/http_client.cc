#include "tests/support/http_client.h"

#include <cstdint>
#include <limits>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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

tcp::endpoint Loopback(int port) {
  return tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port));
}

// Runs the io_context until the pending operation (and its timer) completed.
void RunIo(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

// (This abseil's string_view is not std::string_view: no absl string
// functions on std::string_view here.)
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

absl::Status FromError(const std::string& what, const beast::error_code& ec) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
  }
  return absl::UnavailableError(absl::StrCat(what, ": ", ec.message()));
}

bool IsPeerClose(const beast::error_code& ec) {
  return ec == net::error::eof || ec == net::error::connection_reset || ec == http::error::end_of_stream ||
         ec == net::error::broken_pipe;
}

HttpResponse ToResponse(const http::response<http::string_body>& res) {
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.reason = std::string(res.reason());
  for (const auto& field : res) out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out.body = res.body();
  return out;
}

beast::error_code Connect(net::io_context& ioc, beast::tcp_stream& stream, int port,
                          std::chrono::milliseconds timeout) {
  beast::error_code result;
  stream.expires_after(timeout);
  stream.async_connect(Loopback(port), [&](beast::error_code ec) { result = ec; });
  RunIo(ioc);
  if (!result) stream.socket().set_option(tcp::no_delay(true), result);
  return result;
}

void Close(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close();
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> HttpResponse::Headers(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) out.push_back(v);
  }
  return out;
}

struct HttpClient::Impl {
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;  // the keep-alive connection
  beast::flat_buffer buffer;                // bytes read past the last response
};

HttpClient::HttpClient(int port, std::chrono::milliseconds timeout)
    : port_(port), timeout_(timeout), impl_(std::make_unique<Impl>()) {}

HttpClient::~HttpClient() {
  if (impl_->stream) Close(*impl_->stream);
}

bool HttpClient::connected() const { return impl_->stream && impl_->stream->socket().is_open(); }

absl::StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  Impl& impl = *impl_;
  if (!keep_alive_ || !connected()) {
    if (impl.stream) Close(*impl.stream);
    impl.stream.emplace(impl.ioc);
    impl.buffer.clear();
    if (beast::error_code ec = Connect(impl.ioc, *impl.stream, port_, timeout_)) {
      impl.stream.reset();
      return FromError(absl::StrCat("connect 127.0.0.1:", port_), ec);
    }
  }
  beast::tcp_stream& stream = *impl.stream;

  http::request<http::string_body> req;
  req.method_string(request.method);
  req.target(request.target);
  req.version(11);
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    req.insert(name, value);
    has_host = has_host || EqualsIgnoreCase(name, "host");
  }
  if (!has_host) req.set(http::field::host, absl::StrCat("127.0.0.1:", port_));
  req.keep_alive(keep_alive_);
  if (request.body.has_value()) {
    req.body() = *request.body;
    req.content_length(request.body->size());
  }

  stream.expires_after(timeout_);
  beast::error_code write_ec;
  http::async_write(stream, req, [&](beast::error_code ec, std::size_t) { write_ec = ec; });
  RunIo(impl.ioc);
  if (write_ec == beast::error::timeout) {
    impl.stream.reset();
    return FromError("write", write_ec);
  }
  // A write error may mean the server answered early and closed (e.g. 413
  // before reading the body): its response may still be readable.

  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  beast::error_code read_ec;
  http::async_read(stream, impl.buffer, parser, [&](beast::error_code ec, std::size_t) { read_ec = ec; });
  RunIo(impl.ioc);
  if (read_ec) {
    impl.stream.reset();
    if (write_ec) return FromError("write", write_ec);
    if (read_ec == beast::error::timeout) return FromError("read", read_ec);
    if (IsPeerClose(read_ec)) return absl::UnavailableError(absl::StrCat("read: connection closed: ", read_ec.message()));
    return absl::InternalError(absl::StrCat("read: unparsable response: ", read_ec.message()));
  }
  HttpResponse response = ToResponse(parser.get());
  if (write_ec || !keep_alive_ || !parser.get().keep_alive()) {
    Close(stream);
    impl.stream.reset();
  }
  return response;
}

absl::StatusOr<RawResult> HttpClient::SendRaw(std::string_view bytes, RawOptions options) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  if (beast::error_code ec = Connect(ioc, stream, port_, timeout_)) {
    return FromError(absl::StrCat("connect 127.0.0.1:", port_), ec);
  }
  RawResult result;
  stream.expires_after(options.read_timeout);
  beast::error_code write_ec;
  net::async_write(stream, net::buffer(bytes.data(), bytes.size()),
                   [&](beast::error_code ec, std::size_t) { write_ec = ec; });
  RunIo(ioc);
  if (write_ec == beast::error::timeout) return result;  // the server reads nothing; not an error
  if (!write_ec && options.half_close) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
  // Collect until the server closes or the deadline set above passes.
  char chunk[4096];
  for (;;) {
    beast::error_code read_ec;
    std::size_t n = 0;
    stream.async_read_some(net::buffer(chunk), [&](beast::error_code ec, std::size_t got) {
      read_ec = ec;
      n = got;
    });
    RunIo(ioc);
    result.bytes.append(chunk, n);
    if (read_ec) {
      result.peer_closed = read_ec != beast::error::timeout;
      break;
    }
  }
  return result;
}

absl::StatusOr<HttpResponse> HttpClient::ParseResponse(std::string_view raw) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  beast::error_code ec;
  while (!parser.is_done()) {
    std::size_t used = raw.empty() ? 0 : parser.put(net::buffer(raw.data(), raw.size()), ec);
    raw.remove_prefix(used);
    if (ec == http::error::need_more || (!ec && used == 0)) {
      if (!raw.empty() && used > 0) {
        ec = {};
        continue;
      }
      ec = {};
      if (!parser.got_some()) return absl::InvalidArgumentError("no HTTP response");
      parser.put_eof(ec);
      if (ec) return absl::InvalidArgumentError(absl::StrCat("truncated HTTP response: ", ec.message()));
      break;
    }
    if (ec) return absl::InvalidArgumentError(absl::StrCat("unparsable HTTP response: ", ec.message()));
  }
  return ToResponse(parser.get());
}

}  // namespace octo::testing
