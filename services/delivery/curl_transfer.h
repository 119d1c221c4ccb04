#pragma once
// One transfer of the libcurl transport (curl_transport.cc): its easy
// handle's options and callbacks (body capped, Retry-After and connection
// reuse read from the headers, the SSRF guard on every socket), and what
// its result says once libcurl is done with it. The multi loop that runs
// transfers stays in curl_transport.cc; this is the per-request side.
//
// Example:
//   auto t = std::make_unique<CurlTransfer>();
//   t->request = std::move(request);
//   t->easy = curl_easy_init();
//   ConfigureTransfer(*t, options, resolve);  ...  curl_multi_add_handle(multi, t->easy);
//   TransferResult r = FinishTransfer(*t, msg->data.result);
#include <curl/curl.h>

#include <cstddef>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "services/delivery/curl_transport.h"
#include "services/delivery/http_transport.h"

namespace octo::delivery {

struct CurlTransfer {
  OutgoingRequest request;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body_prefix;
  std::size_t body_seen = 0;
  bool body_cut = false;  // we stopped reading past kMaxResponseRead
  std::optional<std::string> retry_after;
  bool closes = false;  // the answer closes the connection (HTTP/1.0, Connection: close)
  absl::Time started_at;
  char error_buffer[CURL_ERROR_SIZE] = {};
  // SSRF guard bookkeeping (OnOpenSocket): sockets actually created, and
  // why the first refused address was refused.
  const DestinationPolicy* policy = nullptr;
  int sockets_opened = 0;
  std::string blocked_reason;
};

// Sets the easy handle's options for `t.request` (POST, headers, timeouts,
// guard, callbacks writing into `t`).
// `resolve` (may be null): CURLOPT_RESOLVE entries made from options.resolve.
void ConfigureTransfer(CurlTransfer& t, const CurlTransportOptions& options, curl_slist* resolve);

// The result of a transfer libcurl finished with `code`: status or error
// class, duration, body prefix, Retry-After, and what it did to its
// connection (opened one; left it open).
TransferResult FinishTransfer(CurlTransfer& t, CURLcode code);

}  // namespace octo::delivery
