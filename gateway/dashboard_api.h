#pragma once
// The JSON API behind the operators' dashboard, under /dashboard/api/
// (docs/dashboard.md, docs/openapi.yaml). Each call runs to completion on the
// calling thread with blocking gRPC calls (DashboardHandler gives it a worker
// thread): OperatorService for the session and the supplier-scoped reads,
// SubscriptionService for the webhook and delivery operations, called with
// the connection id OperatorService resolved, exactly as the OCTO routes do
// with the API key's connection; and, like them, drops the connection's
// cached list (list_cache.h) on every change of its webhooks.
//
// Every route but login needs a live session (cookie); every state-changing
// one also the session's X-CSRF-Token and a same-site Origin. A webhook of
// another supplier answers 404 exactly like one that does not exist.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "gateway/http_types.h"
#include "octo/webhooks/v1/operators.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"

namespace octo::gateway {

class ListCache;

struct DashboardApiOptions {
  std::chrono::milliseconds timeout{5000};  // all backend calls of one request
  bool secure_cookies = false;              // Secure on the session cookie (TLS in front)
  // The partner routes' cached webhook lists (list_cache.h): every change
  // of a connection's webhooks made here (create, update, delete, enable,
  // rotate secret) drops its connection's entry before it is answered, so a
  // partner's next list through this gateway shows it. Null: none. Must
  // outlive the API.
  ListCache* list_cache = nullptr;
};

class DashboardApi {
 public:
  // The stubs must outlive the API. Thread-safe.
  DashboardApi(DashboardApiOptions options, octo::webhooks::v1::OperatorService::StubInterface* operators,
               octo::webhooks::v1::SubscriptionService::StubInterface* subscriptions)
      : options_(options), operators_(operators), subscriptions_(subscriptions) {}

  // The answer to `request` (under /dashboard/api/) when it needs no backend
  // call: an unknown route, a wrong method, the capability list, no session
  // cookie. Cheap; for the I/O thread. Sets `route` like Handle().
  static std::optional<HttpResponse> Precheck(const HttpRequest& request, std::string& route);

  // `request` targets /dashboard/api/...; returns the response and sets
  // `route` to the matched template (for the access log). Every backend call
  // ends by `deadline`.
  HttpResponse Handle(const HttpRequest& request, std::string& route,
                      std::chrono::system_clock::time_point deadline) const;

  // Method and path template of every route, for the OpenAPI check.
  static std::vector<std::pair<std::string, std::string>> Routes();

 private:
  const DashboardApiOptions options_;
  octo::webhooks::v1::OperatorService::StubInterface* const operators_;
  octo::webhooks::v1::SubscriptionService::StubInterface* const subscriptions_;
};

}  // namespace octo::gateway
