#pragma once
// The first step every authenticated route shares (webhook routes,
// webhook_exchange.cc; notifications routes, notifications_handler.cc; both
// through keyed_exchange.cc), so a limit added to one cannot be missed by
// the other:
//   1. exactly one "Authorization: Bearer <key>" (else 401);
//   2. AuthService.Authenticate (401 when the service finds the key malformed,
//      unknown or wrong; its other errors mapped by ErrorFromStatus);
//   3. one token of the key's request rate (429 + Retry-After beyond it).
#include <functional>
#include <optional>
#include <string>

#include "gateway/http_types.h"
#include "gateway/octo_error.h"
#include "gateway/rate_limiter.h"
#include "gateway/subscription_backend.h"
#include "services/common/metrics.h"

namespace octo::gateway {

struct KeyRateCheck {
  RateLimiter* key_limiter = nullptr;                  // null: no limit
  metrics::GatewayGuardMetrics* guard_metrics = nullptr;  // may be null
};

// Either the request's connection, or how to refuse the request.
struct AuthOutcome {
  std::string connection_id;             // set when accepted
  std::optional<OctoError> unauthorized;  // refused: no usable key (401)
  absl::Status backend_status;            // refused: the service failed (caller maps it)
  std::optional<HttpResponse> too_many;   // refused: over the key's rate (429)
  bool accepted() const {
    return !unauthorized.has_value() && backend_status.ok() && !too_many.has_value();
  }
};

// Runs steps 1-3 for `request` and calls `done` exactly once: at once for a
// missing or malformed header, else on the backend's callback thread.
void AuthenticateRequest(SubscriptionBackend* backend, SubscriptionBackend::Deadline deadline,
                         const HttpRequest& request, KeyRateCheck check,
                         std::function<void(AuthOutcome)> done);

}  // namespace octo::gateway
