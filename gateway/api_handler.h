#pragma once
// The gateway's request handler: routing, bearer authentication, OCTO
// request/response translation and the calls to the subscription service.
// Knows nothing about sockets (see http_server.h). This file routes and
// answers what needs no key (404, 405, /healthz, /openapi.yaml, /readyz:
// readiness_probe.h); the webhook routes are webhook_exchange.h, the
// notifications routes notifications_handler.h, both on the steps of
// keyed_exchange.h.
//
// A webhook request goes through, in order:
//   1. route (404 unknown path, 405 + Allow for a known path's other methods);
//   2. Authorization: Bearer <key> (401 when missing or malformed), then
//      AuthService.Authenticate (401 on UNAUTHENTICATED) -> connection_id;
//      then the key's request rate (429 + Retry-After beyond the limit);
//   3. the Octo-Capabilities header (400 when invalid);
//   4. :id routes: an id that is not a UUID answers INVALID_WEBHOOK_ID (400)
//      without calling the service, exactly as an unknown id would;
//   5. POST/PATCH: Content-Type application/json (415), the JSON body (400);
//   6. the SubscriptionService call; its status is mapped by ErrorFromStatus.
//      GET <base>/webhooks answers from the list cache when it can.
// Every response carries Octo-Capabilities: the request's capabilities,
// parsed, joined with ", " (empty when none or invalid).
//
// Threading: Handle() runs on an I/O thread and never blocks; the steps after
// a backend call run on the backend's callback thread and only do CPU work
// (JSON); `done` is then invoked there and the server posts the response
// back to the connection's strand.
#include <chrono>
#include <functional>
#include <string>

#include "gateway/http_types.h"
#include "gateway/list_cache.h"
#include "gateway/rate_limiter.h"
#include "gateway/readiness_probe.h"  // kOverallHealthService, kPostgresHealthService
#include "gateway/router.h"
#include "gateway/subscription_backend.h"
#include "services/common/metrics.h"

namespace octo::gateway {

class ApiHandler final : public HttpHandler {
 public:
  struct Options {
    std::string base_path = "/octo";  // normalized (NormalizeBasePath)
    // Deadline of all backend calls one request makes, together.
    std::chrono::milliseconds request_timeout{5000};
    // Deadline of /readyz's health checks.
    std::chrono::milliseconds readiness_timeout{2000};
    // The body of GET /metrics (Prometheus text format); unset: 404. The
    // gateway serves it on its own listener instead (main.cc).
    std::function<std::string()> metrics_text;
    // The cached list bodies (list_cache.h); null: every list is fetched.
    // The backend must tell it about changes (caching_backend.h).
    ListCache* list_cache = nullptr;
    // Requests per API key, after authentication (429 + Retry-After beyond);
    // null: no limit.
    RateLimiter* key_limiter = nullptr;
    metrics::GatewayGuardMetrics* guard_metrics = nullptr;  // may be null
  };

  // `backend` must outlive every callback of every Handle() call.
  ApiHandler(Options options, SubscriptionBackend* backend);

  void Handle(HttpRequest request, Done done) override;

 private:
  const Options options_;
  const Router router_;
  SubscriptionBackend* const backend_;
};

}  // namespace octo::gateway
