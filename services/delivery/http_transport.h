#pragma once
// The HTTP transport of the dispatcher: it only moves bytes. It POSTs what
// it is given at once, concurrently, and reports each result; when a request
// may start (per-destination pace, limits, backlog) is decided before, by
// DestinationAdmission (destination_admission.h). The real one is libcurl's
// multi interface (curl_transport.h); tests use tests/fakes/fake_transport.h.
//
// Example:
//   transport->Start([&](std::vector<TransferResult> done) { ... });  // on its thread: return fast
//   transport->Submit({OutgoingRequest{.tag = 1, .url = "http://127.0.0.1:8080/hook",
//                                      .headers = {"Content-Type: application/json"},
//                                      .body = "{}"}});
//   transport->Shutdown(absl::Now() + absl::Seconds(15));
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/delivery/dispatch_outcome.h"

namespace octo::delivery {

struct OutgoingRequest {
  uint64_t tag = 0;                  // the caller's, returned in the result
  std::string url;                   // absolute http(s) URL, without credentials
  std::vector<std::string> headers;  // "Name: value" lines, sent in this order
  std::string body;                  // POSTed as is
};

struct TransferResult {
  uint64_t tag = 0;
  // False when the request was never started (the transport shut down):
  // nothing was sent; the fields below are empty.
  bool sent = true;
  AttemptResult attempt;     // status or error class, Retry-After
  std::string error_detail;  // the transport's message; never holds the URL's credentials
  std::string body_prefix;   // raw first kMaxCapturedBody bytes of the response body
  absl::Time started_at;     // when the transfer started
  absl::Duration duration;   // started_at -> completion
  // The connection it went on: opened for it (else an idle kept-alive one
  // was reused), and left open for the next request (an answer read to the
  // end without "Connection: close" over HTTP/1.1 or later).
  bool opened_connection = false;
  bool connection_kept = false;
};

// Bytes of the response body kept: 4 KB plus room to finish a UTF-8
// character cut at the 4 KB mark (SanitizeSnippet trims to 4 KB).
inline constexpr std::size_t kMaxCapturedBody = 4096 + 3;

class HttpTransport {
 public:
  // Receives finished transfers in batches, on the transport's thread. It
  // may call Submit.
  using CompletionFn = std::function<void(std::vector<TransferResult>)>;

  virtual ~HttpTransport() = default;
  // Sets where results go and starts sending; called once.
  virtual void Start(CompletionFn on_done) = 0;
  // Starts the requests; thread-safe. Requests submitted before Start are
  // held and started by Start (none is dropped). After Shutdown() began,
  // requests are answered at once as not sent; shut down before Start, they
  // are held and Start answers them not sent (Start then starts nothing).
  virtual void Submit(std::vector<OutgoingRequest> requests) = 0;
  // Lets the running transfers finish until `deadline` (then aborts them,
  // reported as timeouts), delivers every result, and stops. Idempotent.
  virtual void Shutdown(absl::Time deadline) = 0;
};

}  // namespace octo::delivery
