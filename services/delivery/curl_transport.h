#pragma once
// The libcurl transport (http_transport.h): many concurrent POSTs on one
// thread with libcurl's multi interface. It starts what it is given at once
// (DestinationAdmission decided when); connections are kept alive and reused
// (the multi handle's connection cache); redirects are not followed; only
// http and https; proxies from the environment are ignored. SSRF guard:
// every address a connection is opened to (after DNS, so rebinding is
// caught) must pass the destination policy, else no socket is even created
// and the request is answered with error class kBlocked.
//
// Example:
//   auto transport = NewCurlTransport(options);
//   (*transport)->Start(on_done);
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/address_guard.h"
#include "services/delivery/http_transport.h"

namespace octo::delivery {

struct CurlTransportOptions {
  // libcurl's backstops (the dispatcher never has more running): total and
  // per-host connections, and the size of the idle connection cache.
  int max_in_flight = 1000;
  int max_per_host = 64;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};
  // Which addresses may be connected to; the default is production (public
  // addresses only). Tests and self-hosters allow e.g. 127.0.0.0/8.
  DestinationPolicy destination_policy;
  // PEM file of the CAs that receivers' certificates are verified against
  // (CURLOPT_CAINFO), e.g. a private CA; empty = the system's store.
  std::string ca_bundle;
  // "host:port:address" entries answered instead of DNS (CURLOPT_RESOLVE),
  // for tests that need a name resolving to an address they choose. The
  // guard still checks the address.
  std::vector<std::string> resolve;
};

// INVALID_ARGUMENT for a non-positive cap or timeout; INTERNAL when libcurl
// cannot be initialised.
absl::StatusOr<std::unique_ptr<HttpTransport>> NewCurlTransport(CurlTransportOptions options);

// The error class of a libcurl result code (CURLcode, as an int so that this
// header needs no curl.h). CURLE_OK -> kNone.
ErrorClass ClassifyCurlCode(int curl_code);

// Whether libcurl parses `url` as an absolute URL with a host (what it
// would send to); a request to any other is answered as malformed.
bool ParsesAsAbsoluteUrl(const std::string& url);

// The lower-cased scheme of a URL ("http"), or "" when it has none (RFC 3986:
// a letter, then letters, digits, '+', '-', '.', up to the first ':').
std::string UrlScheme(std::string_view url);

}  // namespace octo::delivery
