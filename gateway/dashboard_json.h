#pragma once
// The dashboard API's JSON: what it answers (sessions, connections, webhooks
// with their health, the capabilities the projection knows) and the bodies
// and query strings it reads. Pure functions; the rules of the OCTO routes
// apply (unknown members refused, repeated members refused, types checked).
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "absl/status/statusor.h"
#include "octo/webhooks/v1/operators.pb.h"
#include "octo/webhooks/v1/webhooks.pb.h"

namespace octo::gateway {

// {"operator": {"id", "name"}, "supplier": {"id", "name"}, "csrfToken", "expiresAt"}
boost::json::object SessionToJson(const octo::webhooks::v1::OperatorSession& session);

// {"connections": [{"id", "name", "webhookCount", "maxWebhooks", "createdAt"}]}
boost::json::object ConnectionsToJson(const octo::webhooks::v1::ListSupplierConnectionsResponse& response);

// The webhook's OCTO shape plus "connectionName" and "health":
// {"succeeded24h", "failed24h", "successRate" (0..1, null without attempts),
//  "pendingDeliveries", "hours": [{"start", "succeeded", "failed"}] (24, oldest first)}
boost::json::object SupplierWebhookToJson(const octo::webhooks::v1::SupplierWebhook& webhook);

// {"capabilities": [...]}: every capability the projection table names, and
// the aliases, sorted.
boost::json::object KnownCapabilitiesJson();

// {"name": "...", "password": "..."}
absl::StatusOr<octo::webhooks::v1::LoginRequest> ParseLoginBody(std::string_view body);

// ?connectionId=&event=&status=enabled|disabled (each optional, once).
absl::StatusOr<octo::webhooks::v1::ListSupplierWebhooksRequest> ParseWebhookFilter(std::string_view target);

// The create form: the OCTO create body plus "connectionId" (required) and
// "capabilities" (array of strings, the webhook's capabilities).
absl::StatusOr<octo::webhooks::v1::CreateWebhookRequest> ParseDashboardCreateBody(std::string_view body);

}  // namespace octo::gateway
