#include "gateway/octo_error.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "gateway/json_body.h"
#include "gateway/string_views.h"

namespace octo::gateway {

namespace http = boost::beast::http;

namespace {

OctoError Make(http::status status, std::string_view code, std::string message) {
  OctoError e;
  e.http_status = status;
  e.code = std::string(code);
  e.message = std::move(message);
  return e;
}

}  // namespace

OctoError BadRequest(std::string message, http::status status) {
  return Make(status, kBadRequest, std::move(message));
}

OctoError Unauthorized(std::string message) {
  return Make(http::status::unauthorized, kUnauthorized, std::move(message));
}

OctoError InvalidWebhookId(std::string_view webhook_id) {
  OctoError e =
      Make(http::status::bad_request, kInvalidWebhookId, "The webhookId was missing or invalid");
  // Ids come from the request path: keep the echo short and printable.
  e.extra.emplace_back("webhookId", PrintableAscii(webhook_id, 64));
  return e;
}

OctoError InvalidDeliveryId(std::string_view delivery_id) {
  OctoError e =
      Make(http::status::bad_request, kInvalidDeliveryId, "The deliveryId was missing or invalid");
  e.extra.emplace_back("deliveryId", PrintableAscii(delivery_id, 64));
  return e;
}

OctoError Unprocessable(std::string message) {
  return Make(http::status::unprocessable_entity, kUnprocessableEntity, std::move(message));
}

OctoError InternalError() {
  return Make(http::status::internal_server_error, kInternalServerError,
              "There was an un-recoverable error, please try again");
}

OctoError Unavailable() {
  return Make(http::status::service_unavailable, kInternalServerError,
              "The service is temporarily unavailable, please try again");
}

// The gRPC -> OCTO table. The subscription service is the authority on
// validation; its INVALID_ARGUMENT and RESOURCE_EXHAUSTED messages are written
// for partners ("url: must be absolute http or https") and are passed through.
// Everything else gets a fixed message so internals never leak.
//
//   gRPC code            HTTP  OCTO error             errorMessage
//   -------------------  ----  ---------------------  -------------------------------
//   INVALID_ARGUMENT     400   BAD_REQUEST            the status message
//   NOT_FOUND (an id)    400   INVALID_WEBHOOK_ID     fixed, + "webhookId" (OCTO's
//                                                     INVALID_*_ID pattern; another
//                                                     connection's id answers the same)
//   NOT_FOUND (no id)    500   INTERNAL_SERVER_ERROR  fixed (create/list never expect it)
//   RESOURCE_EXHAUSTED   422   UNPROCESSABLE_ENTITY   the status message (webhook cap)
//   UNAUTHENTICATED      401   UNAUTHORIZED           fixed
//   PERMISSION_DENIED    403   FORBIDDEN              fixed (OCTO's wording)
//   UNAVAILABLE,         503   INTERNAL_SERVER_ERROR  fixed; the response adds
//   DEADLINE_EXCEEDED,                                Retry-After (retry is safe for
//   CANCELLED                                         reads; see api.md for writes)
//   anything else        500   INTERNAL_SERVER_ERROR  fixed; the real status is logged
OctoError ErrorFromStatus(const absl::Status& status, std::string_view webhook_id) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return BadRequest(TruncateUtf8(StdView(status.message()), 1024));
    case absl::StatusCode::kNotFound:
      if (!webhook_id.empty()) return InvalidWebhookId(webhook_id);
      return InternalError();
    case absl::StatusCode::kResourceExhausted:
      return Make(http::status::unprocessable_entity, kUnprocessableEntity,
                  TruncateUtf8(StdView(status.message()), 1024));
    case absl::StatusCode::kUnauthenticated:
      return Unauthorized("The API key is invalid or has been revoked");
    case absl::StatusCode::kPermissionDenied:
      return Make(http::status::forbidden, kForbidden,
                  "You sent an API Key that was invalid or has been revoked by the backend "
                  "system. Or you're trying to access an endpoint/resource that you do not "
                  "have access to");
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
      return Unavailable();
    default:
      return InternalError();
  }
}

std::string ErrorBodyJson(const OctoError& error) {
  boost::json::object body;
  body["error"] = error.code;
  body["errorMessage"] = error.message;
  for (const auto& [key, value] : error.extra) body[key] = value;
  return JsonText(body);
}

std::string PrintableAscii(std::string_view s, std::size_t max_bytes) {
  std::string out;
  for (char c : s.substr(0, max_bytes)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

std::string TruncateUtf8(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t end = max_bytes;
  // Back up over continuation bytes (10xxxxxx) to the start of a character.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

}  // namespace octo::gateway
