#pragma once
// GET /readyz: grpc.health.v1 checks of the subscription service, run in
// parallel, answered by the last one to finish: 200 {"status":"ready",
// "checks":{...}} when every check is SERVING, else 503 in the OCTO error
// shape naming the failed checks, with the same "checks".
#include <string>

#include "gateway/http_types.h"
#include "gateway/subscription_backend.h"

namespace octo::gateway {

// grpc.health.v1 service names /readyz checks on the subscription service.
inline constexpr const char* kOverallHealthService = "";
inline constexpr const char* kPostgresHealthService = "octo.webhooks.v1.postgres";

// Runs the checks by `deadline` and calls `done` exactly once, on the thread
// of the last check's callback. The response echoes `capabilities_echo` as
// Octo-Capabilities; `route` is the access log's template.
void ProbeReadiness(SubscriptionBackend* backend, SubscriptionBackend::Deadline deadline,
                    const HttpRequest& request, std::string capabilities_echo, std::string route,
                    HttpHandler::Done done);

}  // namespace octo::gateway
