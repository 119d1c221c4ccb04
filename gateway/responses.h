#pragma once
// Construction of the gateway's JSON responses.
#include <string>

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

}  // namespace octo::gateway
