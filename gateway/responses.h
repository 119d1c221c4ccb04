#pragma once
// Construction of the gateway's JSON responses.
#include <string>
#include <string_view>

#include <boost/beast/http/status.hpp>

#include "gateway/http_types.h"
#include "gateway/octo_error.h"

namespace octo::gateway {

// A response with Content-Type application/json, Cache-Control no-store (a
// create response holds the signing secret) and Content-Length set.
HttpResponse JsonResponse(boost::beast::http::status status, unsigned http_version,
                          std::string body);

// The OCTO error body of `error`, with Retry-After on 503.
HttpResponse ErrorResponse(const OctoError& error, unsigned http_version);

// 429 with the OCTO error body (code BAD_REQUEST, as for the other HTTP-level
// errors OCTO has no code of its own for) and Retry-After: `retry_after_s`:
// {"error":"BAD_REQUEST","errorMessage":"<message>; retry after N s"}.
HttpResponse TooManyRequestsResponse(std::string_view message, int retry_after_s,
                                     unsigned http_version);

}  // namespace octo::gateway
