// One libcurl transfer: options, callbacks and result (curl_transfer.h).
#include "services/delivery/curl_transfer.h"

#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/strings.h"

namespace octo::delivery {
namespace {

// Beyond this much response body the transfer is cut short (the status is
// known by then and kept): a receiver streaming megabytes must not hold a
// slot until the timeout.
constexpr std::size_t kMaxResponseRead = 64 * 1024;

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<CurlTransfer*>(user);
  const size_t n = size * count;
  if (t->body_prefix.size() < kMaxCapturedBody) {
    t->body_prefix.append(data, std::min(n, kMaxCapturedBody - t->body_prefix.size()));
  }
  t->body_seen += n;
  if (t->body_seen > kMaxResponseRead) {
    t->body_cut = true;
    return 0;  // CURLE_WRITE_ERROR: stop reading
  }
  return n;
}

// libcurl asks us for every socket it connects (each address of a name,
// each Happy Eyeballs attempt), after DNS: a refused address gets no
// socket, so not a single packet goes to it.
curl_socket_t OnOpenSocket(void* user, curlsocktype /*purpose*/, curl_sockaddr* address) {
  auto* t = static_cast<CurlTransfer*>(user);
  const std::optional<IpAddress> ip =
      IpAddress::FromSockaddr(&address->addr, static_cast<socklen_t>(address->addrlen));
  const absl::Status allowed =
      ip.has_value() ? t->policy->Check(*ip) : absl::PermissionDeniedError("not an IP socket address");
  if (!allowed.ok()) {
    if (t->blocked_reason.empty()) t->blocked_reason = std::string(allowed.message());
    return CURL_SOCKET_BAD;
  }
  const curl_socket_t fd = socket(address->family, address->socktype, address->protocol);
  if (fd != CURL_SOCKET_BAD) ++t->sockets_opened;
  return fd;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<CurlTransfer*>(user);
  const size_t n = size * count;
  const absl::string_view line(data, n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->retry_after.reset();  // a new response (after a 1xx)
    t->closes = absl::StartsWith(line, "HTTP/1.0");
  } else if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
    t->retry_after = std::string(absl::StripAsciiWhitespace(line.substr(12)));
  } else if (absl::StartsWithIgnoreCase(line, "connection:")) {
    t->closes = absl::StrContains(absl::AsciiStrToLower(line.substr(11)), "close");
  }
  return n;
}

void ClassifyFailure(CurlTransfer& t, CURLcode code, TransferResult& r) {
  r.attempt.error_class = ClassifyCurlCode(code);
  r.error_detail = t.error_buffer[0] != '\0' ? std::string(t.error_buffer) : curl_easy_strerror(code);
  if (!t.blocked_reason.empty() && t.sockets_opened == 0) {
    // Every address was refused by the guard: libcurl reports that as a
    // failed connect, but nothing was attempted on the network.
    r.attempt.error_class = ErrorClass::kBlocked;
    r.error_detail = absl::StrCat("blocked by the SSRF guard: ", t.blocked_reason);
  }
  long request_bytes = 0;
  curl_easy_getinfo(t.easy, CURLINFO_REQUEST_SIZE, &request_bytes);
  if (code == CURLE_UNSUPPORTED_PROTOCOL && request_bytes > 0) {
    // Not our URL's scheme: the request went out and the answer was not
    // HTTP/1.x or 2 ("Received HTTP/0.9 when not allowed").
    r.attempt.error_class = ErrorClass::kHttp;
  }
}

}  // namespace

void ConfigureTransfer(CurlTransfer& t, const CurlTransportOptions& options, curl_slist* resolve) {
  CURL* easy = t.easy;
  for (const std::string& h : t.request.headers) t.headers = curl_slist_append(t.headers, h.c_str());
  // No "Expect: 100-continue" round trip, no Accept we do not mean.
  t.headers = curl_slist_append(t.headers, "Expect:");
  t.headers = curl_slist_append(t.headers, "Accept:");
  const OutgoingRequest& req = t.request;
  curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  // An environment proxy would connect on our behalf, out of the guard's sight.
  curl_easy_setopt(easy, CURLOPT_PROXY, "");
  t.policy = &options.destination_policy;
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &OnOpenSocket);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, &t);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options.request_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t.headers);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.error_buffer);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &t);
  if (!options.ca_bundle.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options.ca_bundle.c_str());
  if (resolve != nullptr) curl_easy_setopt(easy, CURLOPT_RESOLVE, resolve);
}

TransferResult FinishTransfer(CurlTransfer& t, CURLcode code) {
  TransferResult r;
  r.tag = t.request.tag;
  r.started_at = t.started_at;
  curl_off_t total_us = 0;
  if (curl_easy_getinfo(t.easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK && total_us > 0) {
    r.duration = absl::Microseconds(total_us);
  } else {
    r.duration = absl::Now() - t.started_at;
  }
  long status = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
  const bool status_usable = status >= 100 && status <= 599;
  if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && t.body_cut)) {
    if (status_usable) {
      r.attempt.http_status = static_cast<int>(status);
    } else {
      r.attempt.error_class = ErrorClass::kHttp;
      r.error_detail = absl::StrCat("unusable HTTP status ", status);
    }
  } else {
    ClassifyFailure(t, code, r);
  }
  long connects = 0;
  curl_easy_getinfo(t.easy, CURLINFO_NUM_CONNECTS, &connects);
  r.opened_connection = connects > 0;
  // A cut body (WRITE_ERROR) or any failure closes the connection.
  r.connection_kept = code == CURLE_OK && status_usable && !t.closes;
  r.attempt.retry_after = std::move(t.retry_after);
  r.body_prefix = std::move(t.body_prefix);
  return r;
}

}  // namespace octo::delivery
