#pragma once
// The HTTP vocabulary shared by the gateway's server (sockets) and its handler
// (routing, auth, translation to gRPC), so the handler is testable without a
// socket.
#include <functional>
#include <string>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace octo::gateway {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// A response plus what the access log needs to know about it.
struct HandlerResult {
  HttpResponse response;
  // The matched route template ("/octo/webhooks/:id"), never the raw path.
  std::string route;
};

// Turns one request into one response, possibly asynchronously.
class HttpHandler {
 public:
  using Done = std::function<void(HandlerResult)>;
  virtual ~HttpHandler() = default;
  // Calls `done` exactly once, on any thread, possibly before returning.
  // Must not block. Thread-safe.
  virtual void Handle(HttpRequest request, Done done) = 0;
};

}  // namespace octo::gateway
