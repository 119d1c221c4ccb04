#pragma once
// OCTO error bodies, and the one table that maps a backend (gRPC) status to
// the HTTP status and OCTO error code a partner sees.
//
// Every error the gateway answers has Content-Type application/json and the
// body {"error": "<CODE>", "errorMessage": "<text>"[, "<idField>": "<id>"]}.
//
// Example:
//   OctoError e = ErrorFromStatus(absl::NotFoundError("webhook"), id);
//   // e.http_status == 400, e.code == "INVALID_WEBHOOK_ID", extra webhookId
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/status.hpp>

#include "absl/status/status.h"

namespace octo::gateway {

// OCTO error codes used by the gateway.
inline constexpr std::string_view kBadRequest = "BAD_REQUEST";
inline constexpr std::string_view kUnauthorized = "UNAUTHORIZED";
inline constexpr std::string_view kForbidden = "FORBIDDEN";
inline constexpr std::string_view kInvalidWebhookId = "INVALID_WEBHOOK_ID";
inline constexpr std::string_view kInvalidDeliveryId = "INVALID_DELIVERY_ID";
inline constexpr std::string_view kUnprocessableEntity = "UNPROCESSABLE_ENTITY";
inline constexpr std::string_view kInternalServerError = "INTERNAL_SERVER_ERROR";

// OCTO's own wording for a request without an API key.
inline constexpr std::string_view kMissingKeyMessage =
    "You didn't send the API Key in the Authorization header to an endpoint that requires "
    "authentication";

struct OctoError {
  boost::beast::http::status http_status = boost::beast::http::status::internal_server_error;
  std::string code;
  std::string message;
  // Members after "error"/"errorMessage", e.g. {"webhookId", "<id>"}.
  std::vector<std::pair<std::string, std::string>> extra;
};

// 400 BAD_REQUEST (or another 4xx status with the BAD_REQUEST code, for the
// HTTP-level errors OCTO has no code of its own for: 404, 405, 413, 415, 431).
OctoError BadRequest(std::string message,
                     boost::beast::http::status status = boost::beast::http::status::bad_request);
// 401 UNAUTHORIZED.
OctoError Unauthorized(std::string message);
// 400 INVALID_WEBHOOK_ID + "webhookId": <id> (sanitized to printable ASCII).
OctoError InvalidWebhookId(std::string_view webhook_id);
// 400 INVALID_DELIVERY_ID + "deliveryId": <id>, as InvalidWebhookId.
OctoError InvalidDeliveryId(std::string_view delivery_id);
// 422 UNPROCESSABLE_ENTITY.
OctoError Unprocessable(std::string message);
// 500 INTERNAL_SERVER_ERROR with a fixed message: never leaks internals.
OctoError InternalError();
// 503 INTERNAL_SERVER_ERROR: the backend is unreachable or too slow.
OctoError Unavailable();

// Maps a non-OK status from the subscription/auth service. `webhook_id` is the
// id the request concerned, empty for create/list. See the table in the .cc.
OctoError ErrorFromStatus(const absl::Status& status, std::string_view webhook_id);

// The JSON body of `error`.
std::string ErrorBodyJson(const OctoError& error);

// At most `max_bytes` of `s` with every byte outside printable ASCII replaced
// by '?': for echoing request bytes (paths, ids) in a JSON body.
std::string PrintableAscii(std::string_view s, std::size_t max_bytes);

// At most `max_bytes` of `s`, cut on a UTF-8 character boundary.
std::string TruncateUtf8(std::string_view s, std::size_t max_bytes);

}  // namespace octo::gateway
