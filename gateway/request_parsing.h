#pragma once
// Parsing of what a partner sends: the Authorization and Content-Type
// headers and the JSON bodies of POST/PATCH <base>/webhooks. Pure functions.
//
// Body rules (both create and update):
//   - the body must be a JSON object (Boost.JSON, strict RFC 8259, valid UTF-8);
//   - known fields: url, event (string), retryOnError, useContactLanguage
//     (boolean), headers (object of strings), capabilities (array of strings),
//     and our extensions rateLimitPerSecond (number) and maxConcurrency
//     (integer), 0 meaning no limit (on PATCH: remove it), and ordered
//     (boolean: ordered delivery per resource);
//   - a wrong type or an unknown field is INVALID_ARGUMENT naming the field;
//     null is a wrong type, not "absent";
//   - "capabilities" is type-checked, then ignored: a webhook's capabilities
//     come from the Octo-Capabilities request header, as the OCTO webhooks
//     docs say ("you don't set the capabilities in the request body").
//   - a member named twice in one object is refused (ParseJsonBody).
// Create additionally requires url and event; validating their values is the
// subscription service's job.
//
// Example:
//   absl::StatusOr<CreateWebhookRequest> r =
//       ParseCreateWebhookBody(R"({"url":"https://x.test/h","event":"booking_update"})");
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/fields.hpp>

#include "absl/status/statusor.h"
#include "octo/webhooks/v1/webhooks.pb.h"

namespace octo::gateway {

// True for "application/json", any case, with optional parameters; a charset
// parameter must be utf-8 (RFC 8259 8.1).
bool IsJsonContentType(std::string_view content_type);

// The key of "Bearer <key>" (scheme case-insensitive, one or more spaces).
// INVALID_ARGUMENT when the value is not of that form, the key is empty, has
// whitespace or control characters, or is longer than 512 bytes.
absl::StatusOr<std::string> ParseBearerKey(std::string_view authorization);

// Capabilities joined with ", " for the Octo-Capabilities response header.
std::string JoinCapabilities(const std::vector<std::string>& capabilities);

// The request's capabilities: every Octo-Capabilities field, joined as one
// list (RFC 9110 5.3), parsed with octo::ParseCapabilitiesHeader.
absl::StatusOr<std::vector<std::string>> RequestCapabilities(
    const boost::beast::http::fields& fields);

// The Octo-Capabilities response header for a request: its capabilities
// joined with ", ", or "" when it has none or they are invalid.
std::string CapabilitiesEcho(const boost::beast::http::fields& fields);

// connection_id and capabilities are left empty for the caller to fill.
absl::StatusOr<octo::webhooks::v1::CreateWebhookRequest> ParseCreateWebhookBody(
    std::string_view body);

// connection_id and webhook_id are left empty; absent fields stay unset.
absl::StatusOr<octo::webhooks::v1::UpdateWebhookRequest> ParseUpdateWebhookBody(
    std::string_view body);

}  // namespace octo::gateway
