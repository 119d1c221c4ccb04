#pragma once
// Rendering of webhooks in the OCTO shape (Ventrata's `Webhook` schema),
// camelCase, plus our additions:
//
//   {"id", "event", "url", "retryOnError", "useContactLanguage", "headers",
//    "capabilities",                                  <- OCTO, always present
//    "ordered",                                       <- ours, always (false unless asked for)
//    "status": "enabled"|"disabled", "createdAt", "updatedAt" (RFC 3339 UTC),
//    "disabledReason", "disabledAt"                   <- only when disabled
//    "rateLimitPerSecond", "maxConcurrency"           <- when set
//    "failingSince"                                   <- while attempts keep failing
//    "previousSecretExpiresAt"                        <- during a rotation's grace period
//    "secret"}                                        <- only in the create and rotate responses
//
// URL credentials and header values arrive masked from the subscription
// service and are rendered as they are.
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "google/protobuf/timestamp.pb.h"
#include "octo/webhooks/v1/webhooks.pb.h"

namespace octo::gateway {

// "2026-11-23T10:15:30Z", or with the fractional seconds that are not zero
// ("2026-11-23T10:15:30.25Z").
std::string FormatRfc3339(const google::protobuf::Timestamp& timestamp);

// `secret` is added when not empty (the create response).
boost::json::object WebhookToJson(const octo::webhooks::v1::Webhook& webhook,
                                  std::string_view secret = {});

}  // namespace octo::gateway
