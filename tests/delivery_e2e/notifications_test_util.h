#pragma once
// What the notification delivery tests share: creating a subscription over
// the notifications REST dialect, the expected thin body of a received
// request, and running the receiver's guide's verification snippets.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/delivery_e2e/delivery_stack.h"
#include "tests/delivery_e2e/delivery_test_util.h"

namespace octo::delivery_e2e {

// POST /octo/notifications/subscriptions as `tenant` with
// {"url": url, "notificationTypes": <types_json><more>}; fails unless 201.
absl::StatusOr<CreatedWebhook> Subscribe(DeliveryStack& stack, const e2e::Tenant& tenant,
                                         const std::string& types_json, const std::string& url,
                                         const std::string& more = "");

// {"id":"<the request's webhook-id>","type":<type>,"timestamp":<timestamp>,"data":<data_json>};
// with `any_time` the timestamp is taken from the body (it must be RFC 3339 UTC).
std::string ThinBody(const ReceivedRequest& request, const std::string& type, const std::string& timestamp,
                     const std::string& data_json, bool any_time = false);

// Runs `command` (through /bin/sh) with the verifier input of `request` on
// stdin ({"secret","headers":{webhook-id,webhook-timestamp,webhook-signature},"body"}).
NodeResult RunVerifier(const std::string& command, const ReceivedRequest& request, const std::string& secret,
                       const std::string& body);

}  // namespace octo::delivery_e2e
