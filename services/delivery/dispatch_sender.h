#pragma once
// The HTTP sender of the dispatcher: many concurrent POSTs on one thread
// with libcurl's multi interface.
//
// Requests are queued per destination (scheme://host:port) and started
// while fewer than `max_in_flight` transfers run in total and fewer than
// `max_per_host` run to that destination, taking the destinations in turn,
// so one slow host holds at most max_per_host slots and never blocks the
// others. Connections are kept alive and reused (the multi handle's
// connection cache); redirects are not followed; only http and https;
// proxies from the environment are ignored. SSRF guard: every address a
// connection is opened to (after DNS, so rebinding is caught) must pass the
// destination policy, else no socket is even created and the request is
// answered with error class kBlocked.
//
// Example:
//   auto sender = NewCurlSender(options, [&](std::vector<TransferResult> done) {
//     ...  // called on the sender's thread: hand the results over, return fast
//   });
//   sender->Submit({OutgoingRequest{.tag = 1, .url = "http://127.0.0.1:8080/hook",
//                                   .headers = {"Content-Type: application/json"},
//                                   .body = "{}"}});
//   ...
//   sender->Shutdown(absl::Now() + absl::Seconds(15));
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/address_guard.h"
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
  // False when the request was never started: nothing was sent; the fields
  // below are empty.
  bool sent = true;
  // Not sent because its destination is backlogged (max_queued_per_host,
  // max_queue_wait) rather than because the sender shut down.
  bool backlogged = false;
  // Backlogged only: about when the destination could take it, from its
  // queue and how long its transfers take, so that a slow destination's
  // backlog comes back spread out at the pace it drains rather than all at
  // once (each return costs a claim and a release).
  absl::Duration backlog_wait;
  AttemptResult attempt;             // status or error class, Retry-After
  std::string error_detail;          // libcurl's message; never holds the URL's credentials
  std::string body_prefix;           // raw first kMaxCapturedBody bytes of the response body
  absl::Time started_at;             // when the transfer started (after any queueing)
  absl::Duration duration;           // started_at -> completion
};

// Bytes of the response body kept: 4 KB plus room to finish a UTF-8
// character cut at the 4 KB mark (SanitizeSnippet trims to 4 KB).
inline constexpr std::size_t kMaxCapturedBody = 4096 + 3;

class HttpSender {
 public:
  // Receives finished transfers in batches, on the sender's thread.
  using CompletionFn = std::function<void(std::vector<TransferResult>)>;

  virtual ~HttpSender() = default;
  // Queues requests; thread-safe. After Shutdown() began, requests are
  // answered at once as not sent.
  virtual void Submit(std::vector<OutgoingRequest> requests) = 0;
  // Number of requests submitted whose result has not been delivered yet.
  virtual int Pending() const = 0;
  // Answers every queued (not yet started) request as not sent, lets the
  // running transfers finish until `deadline` (then aborts them, reported as
  // timeouts), delivers every result, and joins the thread. Idempotent.
  virtual void Shutdown(absl::Time deadline) = 0;
};

struct CurlSenderOptions {
  int max_in_flight = 1000;
  int max_per_host = 64;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};
  // A request still queued (its destination at max_per_host) this long is
  // answered as not sent, so that a slow destination cannot keep claimed
  // deliveries past their lease. Zero: no limit.
  std::chrono::milliseconds max_queue_wait{0};
  // At most this many requests wait for one destination; more are answered
  // at once as not sent (backlogged), so that one slow destination cannot
  // take the claimed capacity from the others. Zero: no limit.
  int max_queued_per_host = 0;
  // Which addresses may be connected to; the default is production (public
  // addresses only). Tests and self-hosters allow e.g. 127.0.0.0/8.
  DestinationPolicy destination_policy;
};

// INVALID_ARGUMENT for a non-positive cap or timeout; INTERNAL when libcurl
// cannot be initialised. The completion callback must not call back into
// the sender's Shutdown().
absl::StatusOr<std::unique_ptr<HttpSender>> NewCurlSender(CurlSenderOptions options,
                                                           HttpSender::CompletionFn on_done);

// The error class of a libcurl result code (CURLcode, as an int so that this
// header needs no curl.h). CURLE_OK -> kNone.
ErrorClass ClassifyCurlCode(int curl_code);

// "scheme://host:port" of an absolute URL, lower-cased, with the scheme's
// default port filled in; the queue key of the per-host cap. nullopt when
// the URL does not parse.
std::optional<std::string> DestinationKey(const std::string& url);

}  // namespace octo::delivery
