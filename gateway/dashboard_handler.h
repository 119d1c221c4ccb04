#pragma once
// The operators' dashboard in front of the gateway's API handler: requests
// under /dashboard are answered here, everything else goes to `inner`.
//
//   /dashboard, /dashboard/     the app (index.html; it asks for a session
//                               and sends the browser to the login page
//                               without one)
//   /dashboard/login            the login page
//   /dashboard/assets/<file>    scripts and styles (embedded)
//   /dashboard/api/...          the JSON API (DashboardApi)
//
// Pages, assets and API requests that need no backend call (unknown route,
// wrong method, no session cookie) are answered on the I/O thread; the other
// API requests make blocking gRPC calls, so they run on this handler's own
// worker threads. A request's deadline starts when it is queued: a full
// queue answers 503 at once, and a worker answers 503 (with Retry-After) to a
// request whose deadline passed while it waited. Every response has the
// security headers (Content-Security-Policy without inline script, ...).
//
// Shutdown: Stop() right after HttpServer::Stop() and before the server is
// destroyed; it answers the queued requests 503 and joins the workers, so no
// callback runs after it returns.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>

#include "gateway/dashboard_api.h"
#include "gateway/http_types.h"

namespace octo::gateway {

class DashboardHandler final : public HttpHandler {
 public:
  struct Options {
    DashboardApiOptions api;
    int threads = 2;
    std::size_t max_queue = 256;
  };

  // `inner` must outlive this handler. Starts the worker threads.
  DashboardHandler(Options options, HttpHandler* inner, std::shared_ptr<grpc::Channel> channel);
  // Calls Stop().
  ~DashboardHandler() override;

  // Answers every queued request 503, lets the requests in progress finish
  // (within their deadline), joins the workers; later requests answer 503 at
  // once. Idempotent.
  void Stop();

  void Handle(HttpRequest request, Done done) override;

  static bool IsDashboardTarget(std::string_view target);

 private:
  struct Job {
    HttpRequest request;
    Done done;
    std::chrono::system_clock::time_point deadline;
  };
  void Work();
  static void AnswerUnavailable(Job& job);
  HandlerResult Page(const HttpRequest& request) const;

  const Options options_;
  HttpHandler* const inner_;
  std::unique_ptr<octo::webhooks::v1::OperatorService::StubInterface> operators_;
  std::unique_ptr<octo::webhooks::v1::SubscriptionService::StubInterface> subscriptions_;
  DashboardApi api_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;   // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::mutex join_mu_;      // one Stop() joins at a time
  std::vector<std::thread> workers_;  // guarded by join_mu_ after the constructor
};

}  // namespace octo::gateway
