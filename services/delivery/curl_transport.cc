#include "services/delivery/curl_transport.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/log.h"
#include "services/common/strings.h"
#include "services/delivery/send_fault.h"

namespace octo::delivery {

namespace {

// Beyond this much response body the transfer is cut short (the status is
// known by then and kept): a receiver streaming megabytes must not hold a
// slot until the timeout.
constexpr std::size_t kMaxResponseRead = 64 * 1024;

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(CurlTransportOptions options) : options_(std::move(options)) {}

  ~CurlTransport() override {
    Shutdown(absl::Now() + absl::FromChrono(options_.request_timeout));
    curl_slist_free_all(resolve_);
  }

  absl::Status Init() {
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
    // The dispatcher keeps within the caps; these are libcurl's backstop and
    // the size of its connection cache (idle keep-alive connections).
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(options_.max_per_host));
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(options_.max_in_flight));
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(options_.max_in_flight));
    for (const std::string& entry : options_.resolve) resolve_ = curl_slist_append(resolve_, entry.c_str());
    return absl::OkStatus();
  }

  void Start(CompletionFn on_done) override {
    std::lock_guard lock(mu_);
    if (thread_.joinable() || stopping_) return;
    on_done_ = std::move(on_done);
    thread_ = std::thread([this] { Run(); });
  }

  void Submit(std::vector<OutgoingRequest> requests) override {
    if (requests.empty()) return;
    {
      std::lock_guard lock(mu_);
      if (!stopping_ && thread_.joinable()) {
        for (auto& r : requests) incoming_.push_back(std::move(r));
        // Under the lock: Shutdown() frees the multi handle only after
        // stopping_ is set, which this section excludes.
        curl_multi_wakeup(multi_);
        return;
      }
    }
    // Shutting down: nothing more is started.
    std::vector<TransferResult> unsent;
    unsent.reserve(requests.size());
    for (const auto& r : requests) unsent.push_back(NotSent(r.tag));
    if (on_done_) on_done_(std::move(unsent));
  }

  void Shutdown(absl::Time deadline) override {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        stopping_ = true;
        deadline_ = deadline;
      }
    }
    std::lock_guard join_lock(join_mu_);
    if (thread_.joinable()) {
      curl_multi_wakeup(multi_);
      thread_.join();
    }
    std::lock_guard lock(mu_);
    if (multi_ != nullptr) {
      curl_multi_cleanup(multi_);
      multi_ = nullptr;
    }
  }

 private:
  struct Transfer {
    OutgoingRequest request;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    std::string body_prefix;
    std::size_t body_seen = 0;
    bool body_cut = false;  // we stopped reading past kMaxResponseRead
    std::optional<std::string> retry_after;
    absl::Time started_at;
    char error_buffer[CURL_ERROR_SIZE] = {};
    // SSRF guard bookkeeping (OnOpenSocket): sockets actually created, and
    // why the first refused address was refused.
    const DestinationPolicy* policy = nullptr;
    int sockets_opened = 0;
    std::string blocked_reason;
  };

  static TransferResult NotSent(uint64_t tag) {
    TransferResult r;
    r.tag = tag;
    r.sent = false;
    return r;
  }

  static TransferResult Refused(uint64_t tag, ErrorClass error_class, std::string detail) {
    TransferResult r;
    r.tag = tag;
    r.attempt.error_class = error_class;
    r.error_detail = std::move(detail);
    r.started_at = absl::Now();
    return r;
  }

  static size_t OnBody(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
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
  static curl_socket_t OnOpenSocket(void* user, curlsocktype /*purpose*/, curl_sockaddr* address) {
    auto* t = static_cast<Transfer*>(user);
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

  static size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * count;
    const absl::string_view line(data, n);
    if (absl::StartsWith(line, "HTTP/")) {
      t->retry_after.reset();  // a new response (after a 1xx)
    } else if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
      t->retry_after = std::string(absl::StripAsciiWhitespace(line.substr(12)));
    }
    return n;
  }

  void Run() {
    std::vector<TransferResult> done;
    while (true) {
      std::vector<OutgoingRequest> incoming;
      bool stopping;
      absl::Time deadline;
      {
        std::lock_guard lock(mu_);
        incoming.swap(incoming_);
        stopping = stopping_;
        deadline = deadline_;
      }
      for (auto& request : incoming) {
        if (stopping) {
          done.push_back(NotSent(request.tag));
        } else {
          StartTransfer(std::move(request), done);
        }
      }
      if (stopping && absl::Now() >= deadline) AbortActive(done);

      int running = 0;
      curl_multi_perform(multi_, &running);
      CollectFinished(done);

      if (!done.empty()) {
        on_done_(std::move(done));
        done.clear();
      }
      if (stopping && active_.empty()) {
        std::lock_guard lock(mu_);
        if (incoming_.empty()) break;
        continue;
      }
      int timeout_ms = 1000;
      if (stopping) {
        timeout_ms = static_cast<int>(
            std::clamp<int64_t>(absl::ToInt64Milliseconds(deadline - absl::Now()) + 1, 0, timeout_ms));
      }
      curl_multi_poll(multi_, nullptr, 0, timeout_ms, nullptr);
    }
    for (CURL* easy : free_easy_) curl_easy_cleanup(easy);
    free_easy_.clear();
  }

  void StartTransfer(OutgoingRequest request, std::vector<TransferResult>& done) {
    if (const std::string scheme = UrlScheme(request.url); !scheme.empty() && scheme != "http" && scheme != "https") {
      // SSRF guard: file://, gopher://, ... are never fetched.
      done.push_back(Refused(request.tag, ErrorClass::kBlocked,
                             "blocked by the SSRF guard: only http and https URLs are delivered"));
      return;
    }
    if (!DestinationKey(request.url).has_value()) {
      done.push_back(Refused(request.tag, ErrorClass::kInternal, "malformed URL"));
      return;
    }
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    CURL* easy = TakeEasy();
    if (easy == nullptr) {
      Fail(std::move(t), "curl_easy_init failed", done);
      return;
    }
    t->easy = easy;
    Configure(*t);
    MaybeCrashBeforeSend(t->request.url);
    t->started_at = absl::Now();
    if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
      Fail(std::move(t), "curl_multi_add_handle failed", done);
      return;
    }
    Transfer* raw = t.get();
    active_.emplace(raw, std::move(t));
  }

  CURL* TakeEasy() {
    if (free_easy_.empty()) return curl_easy_init();
    CURL* easy = free_easy_.back();
    free_easy_.pop_back();
    curl_easy_reset(easy);
    return easy;
  }

  void Configure(Transfer& t) {
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
    t.policy = &options_.destination_policy;
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &CurlTransport::OnOpenSocket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, &t);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t.headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &CurlTransport::OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &CurlTransport::OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.error_buffer);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &t);
    if (!options_.ca_bundle.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_bundle.c_str());
    if (resolve_ != nullptr) curl_easy_setopt(easy, CURLOPT_RESOLVE, resolve_);
  }

  // A transfer that could not be started: an internal error, nothing sent.
  void Fail(std::unique_ptr<Transfer> t, std::string_view why, std::vector<TransferResult>& done) {
    done.push_back(Refused(t->request.tag, ErrorClass::kInternal, std::string(why)));
    Release(std::move(t));
  }

  void CollectFinished(std::vector<TransferResult>& done) {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* raw = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
      auto it = active_.find(raw);
      if (it == active_.end()) continue;  // cannot happen: every added handle is listed
      done.push_back(Finish(*raw, msg->data.result));
      Finalize(std::move(it->second));
      active_.erase(it);
    }
  }

  TransferResult Finish(Transfer& t, CURLcode code) {
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
    r.attempt.retry_after = std::move(t.retry_after);
    r.body_prefix = std::move(t.body_prefix);
    return r;
  }

  void ClassifyFailure(Transfer& t, CURLcode code, TransferResult& r) {
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

  // Removes a running transfer from the multi handle.
  void Finalize(std::unique_ptr<Transfer> t) {
    curl_multi_remove_handle(multi_, t->easy);
    Release(std::move(t));
  }

  void Release(std::unique_ptr<Transfer> t) {
    curl_slist_free_all(t->headers);
    t->headers = nullptr;
    if (t->easy != nullptr) {
      // Keep a bounded number of handles for reuse.
      if (static_cast<int>(free_easy_.size()) < options_.max_in_flight) {
        free_easy_.push_back(t->easy);
      } else {
        curl_easy_cleanup(t->easy);
      }
      t->easy = nullptr;
    }
  }

  void AbortActive(std::vector<TransferResult>& done) {
    for (auto& [raw, t] : active_) {
      TransferResult r = Finish(*t, CURLE_OPERATION_TIMEDOUT);
      r.duration = absl::Now() - t->started_at;
      r.attempt.http_status = 0;
      r.attempt.error_class = ErrorClass::kTimeout;
      r.error_detail = "aborted at shutdown";
      done.push_back(std::move(r));
      Finalize(std::move(t));
    }
    active_.clear();
  }

  const CurlTransportOptions options_;
  CompletionFn on_done_;  // set by Start, before the thread runs
  CURLM* multi_ = nullptr;
  curl_slist* resolve_ = nullptr;  // options_.resolve, for CURLOPT_RESOLVE
  std::thread thread_;
  std::mutex join_mu_;

  std::mutex mu_;
  std::vector<OutgoingRequest> incoming_;  // guarded by mu_
  bool stopping_ = false;                  // guarded by mu_
  absl::Time deadline_;                    // guarded by mu_

  // The transport thread's own state.
  std::unordered_map<Transfer*, std::unique_ptr<Transfer>> active_;
  std::vector<CURL*> free_easy_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpTransport>> NewCurlTransport(CurlTransportOptions options) {
  if (options.max_in_flight < 1 || options.max_per_host < 1) {
    return absl::InvalidArgumentError("max_in_flight and max_per_host must be at least 1");
  }
  if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0) {
    return absl::InvalidArgumentError("connect and request timeouts must be positive");
  }
  static std::once_flag init_once;
  static CURLcode init_result = CURLE_OK;
  std::call_once(init_once, [] { init_result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init_result != CURLE_OK) return absl::InternalError("curl_global_init failed");
  auto transport = std::make_unique<CurlTransport>(std::move(options));
  if (absl::Status s = transport->Init(); !s.ok()) return s;
  return transport;
}

}  // namespace octo::delivery
