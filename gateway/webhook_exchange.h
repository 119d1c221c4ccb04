#pragma once
// The webhook routes' requests (<base>/webhooks..., and the extensions under
// <base>/ext/webhooks/:id/...) on the shared steps of keyed_exchange.h:
//   - Octo-Capabilities: vendor/name ids (400 when invalid), sent on create;
//   - :id routes: an id that is not a UUID answers INVALID_WEBHOOK_ID (400)
//     without calling the service, exactly as an unknown id would;
//     INVALID_DELIVERY_ID likewise for :deliveryId;
//   - POST/PATCH: Content-Type application/json (415), the JSON body (400);
//   - the SubscriptionService call, dialect "webhook"; its status mapped by
//     ErrorFromStatus (the extensions' FAILED_PRECONDITION, "the webhook is
//     disabled", is 422);
//   - GET <base>/webhooks answers from the list cache when it can.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/http_types.h"
#include "gateway/keyed_exchange.h"
#include "gateway/list_cache.h"
#include "gateway/router.h"

namespace octo::gateway {

// Handles one request of a webhook or extension route. `capabilities` are
// the request's, parsed (RequestCapabilities); `list_cache` may be null
// (every list is fetched). Calls `done` exactly once.
void HandleWebhookRequest(const KeyedExchange::Context& context, ListCache* list_cache,
                          HttpRequest request, RouteMatch match,
                          absl::StatusOr<std::vector<std::string>> capabilities,
                          HttpHandler::Done done);

}  // namespace octo::gateway
