#pragma once
// The gateway's HTTP/1.1 server (Boost.Beast, asynchronous): keep-alive,
// pipelining (requests on one connection are answered in order, one at a
// time), Expect: 100-continue, and limits so nothing a client sends can
// exhaust or crash the process:
//
//   limit                     default   answer when exceeded
//   request header bytes      16 KiB    431, BAD_REQUEST, connection closed
//   request body bytes        64 KiB    413, BAD_REQUEST, connection closed
//   malformed HTTP            -         400, BAD_REQUEST, connection closed
//   header read (idle or      10 s      connection closed, no answer
//     slow, from the start)
//   body read                 30 s      connection closed, no answer
//   response write            30 s      connection closed
//   open connections          10000     new connections closed at once
//   per client address        (guard)   connections: closed at once;
//                                       requests/s: 429 + Retry-After
//
// A connection closed after an error answer is closed gracefully: the server
// shuts down its sending side and discards what the client still sends (up
// to 1 MiB or 2 s), so the client reads the answer instead of a reset.
// Each request is logged as one JSON line: method, route template, status,
// duration; never headers, the path's values or the body.
//
// This file is the listener (bind, accept, the connection limits, the
// registry of connections, Stop); each connection is an HttpSession
// (http_session.h: reading, deadlines, answering, closing).
//
// Example:
//   HttpServer server(options, &handler);
//   if (absl::Status s = server.Start(); !s.ok()) ...
//   int port = server.port();  // the bound port, also for options.port == 0
//   ...
//   server.Stop(std::chrono::seconds(5));
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gateway/client_guard.h"
#include "gateway/http_types.h"
#include "services/common/metrics.h"

namespace octo::gateway {

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";  // an IP address or a resolvable name
    int port = 8080;                 // 0: any free port
    int threads = 2;
    std::uint64_t max_body_bytes = 65536;
    std::uint32_t max_header_bytes = 16384;
    // Idle keep-alive wait plus the whole request header: a deadline, not
    // an idle timer, so a client trickling bytes is cut off too.
    std::chrono::milliseconds header_timeout{10000};
    std::chrono::milliseconds read_timeout{30000};  // the whole body
    std::chrono::milliseconds write_timeout{30000};
    int max_connections = 10000;
    // Counts requests by route template, method and status, their duration
    // and those in flight (octo_gateway_http_*); null = not counted. Must
    // outlive the server.
    metrics::HttpMetrics* metrics = nullptr;
    // Per-address limits (client_guard.h); null = none. Must outlive the server.
    ClientGuard* guard = nullptr;
  };

  // `handler` must outlive the server, and its callbacks must all have
  // returned before the server is destroyed (see Stop()).
  HttpServer(Options options, HttpHandler* handler);
  // Calls Stop() with no drain time. Not from an I/O thread.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads. UNAVAILABLE when the address
  // cannot be bound, INVALID_ARGUMENT when the host does not resolve.
  absl::Status Start();

  // The bound port; valid after a successful Start().
  int port() const;

  // Stops accepting, closes idle connections, lets requests in progress
  // finish for up to `drain`, then stops the I/O threads. Requests still
  // waiting on the handler after that are dropped; their callbacks remain
  // safe until the server is destroyed. Idempotent; not from an I/O thread.
  void Stop(std::chrono::milliseconds drain);

  class Impl;  // the implementation, public only for http_server.cc

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace octo::gateway
