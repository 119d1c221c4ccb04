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
// Pages and assets are answered on the I/O thread (no backend call); API
// requests make blocking gRPC calls, so they run on this handler's own
// worker threads, and a full queue answers 503 at once. Every response has
// the security headers (Content-Security-Policy without inline script, ...).
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
  // Finishes the queued requests (each within its deadline), then joins.
  ~DashboardHandler() override;

  void Handle(HttpRequest request, Done done) override;

  static bool IsDashboardTarget(std::string_view target);

 private:
  void Work();
  HandlerResult Page(const HttpRequest& request) const;

  const Options options_;
  HttpHandler* const inner_;
  std::unique_ptr<octo::webhooks::v1::OperatorService::StubInterface> operators_;
  std::unique_ptr<octo::webhooks::v1::SubscriptionService::StubInterface> subscriptions_;
  DashboardApi api_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace octo::gateway
