#include "services/delivery/dispatch_sender.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <deque>
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

ErrorClass ClassifyCurlCode(int curl_code) {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_OK:
      return ErrorClass::kNone;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return ErrorClass::kDns;
    case CURLE_COULDNT_CONNECT:
      return ErrorClass::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return ErrorClass::kTimeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
      return ErrorClass::kTls;
    // The server (or the path to it) broke the exchange after connecting.
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP_RETURNED_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_RANGE_ERROR:
      return ErrorClass::kHttp;
    default:
      return ErrorClass::kInternal;
  }
}

std::optional<std::string> DestinationKey(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return std::nullopt;
  std::optional<std::string> key;
  char* scheme = nullptr;
  char* host = nullptr;
  char* port = nullptr;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    key = absl::AsciiStrToLower(absl::StrCat(scheme, "://", host, ":", port));
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return key;
}

namespace {

// The lower-cased scheme of a URL ("http"), or "" when it has none (RFC 3986:
// a letter, then letters, digits, '+', '-', '.', up to the first ':').
std::string UrlScheme(std::string_view url) {
  const auto colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0 || !absl::ascii_isalpha(static_cast<unsigned char>(url[0]))) {
    return "";
  }
  for (char c : url.substr(0, colon)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return "";
  }
  return absl::AsciiStrToLower(AbslView(url.substr(0, colon)));
}

// Beyond this much response body the transfer is cut short (the status is
// known by then and kept): a receiver streaming megabytes must not hold a
// slot until the timeout.
constexpr std::size_t kMaxResponseRead = 64 * 1024;

class CurlSender final : public HttpSender {
 public:
  CurlSender(CurlSenderOptions options, CompletionFn on_done)
      : options_(options), on_done_(std::move(on_done)) {}

  ~CurlSender() override {
    Shutdown(absl::Now() + absl::FromChrono(options_.request_timeout));
  }

  absl::Status Init() {
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
    // Our own queues keep within the caps; these are libcurl's backstop and
    // the size of its connection cache (idle keep-alive connections).
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(options_.max_per_host));
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(options_.max_in_flight));
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(options_.max_in_flight));
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  void Submit(std::vector<OutgoingRequest> requests) override {
    if (requests.empty()) return;
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        pending_.fetch_add(static_cast<int>(requests.size()));
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
    on_done_(std::move(unsent));
  }

  int Pending() const override { return pending_.load(); }

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
  struct Host;

  struct Transfer {
    OutgoingRequest request;
    Host* host = nullptr;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    std::string body_prefix;
    std::size_t body_seen = 0;
    bool body_cut = false;  // we stopped reading past kMaxResponseRead
    std::optional<std::string> retry_after;
    absl::Time queued_at;
    absl::Time started_at;
    char error_buffer[CURL_ERROR_SIZE] = {};
    // SSRF guard bookkeeping (OnOpenSocket): sockets actually created, and
    // why the first refused address was refused.
    const DestinationPolicy* policy = nullptr;
    int sockets_opened = 0;
    std::string blocked_reason;
  };

  struct Host {
    std::string key;
    std::deque<std::unique_ptr<Transfer>> queued;
    int active = 0;
    bool ready = false;  // listed in ready_
    int turned_away = 0;  // backlogged answers since its queue was last empty
  };

  // A backlogged answer for `host`: it will have drained its running,
  // queued and earlier turned-away requests after about this long.
  TransferResult Backlogged(uint64_t tag, Host& host) {
    TransferResult r = NotSent(tag, /*backlogged=*/true);
    const int ahead = host.active + static_cast<int>(host.queued.size()) + ++host.turned_away;
    auto pace = pace_.find(host.key);
    const absl::Duration typical = pace == pace_.end() ? absl::ZeroDuration() : pace->second;
    r.backlog_wait = std::clamp(typical * ahead / options_.max_per_host, absl::ZeroDuration(), absl::Minutes(10));
    return r;
  }

  static TransferResult NotSent(uint64_t tag, bool backlogged = false) {
    TransferResult r;
    r.tag = tag;
    r.sent = false;
    r.backlogged = backlogged;
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
      for (auto& request : incoming) Enqueue(std::move(request), done);
      if (stopping) {
        DropQueued(done);
        if (absl::Now() >= deadline) AbortActive(done);
      } else {
        ExpireQueued(done);
        StartReady(done);
      }

      int running = 0;
      curl_multi_perform(multi_, &running);
      CollectFinished(done);
      if (!stopping) StartReady(done);

      if (!done.empty()) {
        pending_.fetch_sub(static_cast<int>(done.size()));
        on_done_(std::move(done));
        done.clear();
      }
      if (stopping && active_.empty()) break;

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

  void Enqueue(OutgoingRequest request, std::vector<TransferResult>& done) {
    if (const std::string scheme = UrlScheme(request.url); !scheme.empty() && scheme != "http" && scheme != "https") {
      // SSRF guard: file://, gopher://, ... are never fetched.
      TransferResult r;
      r.tag = request.tag;
      r.attempt.error_class = ErrorClass::kBlocked;
      r.error_detail = "blocked by the SSRF guard: only http and https URLs are delivered";
      r.started_at = absl::Now();
      done.push_back(std::move(r));
      return;
    }
    std::optional<std::string> key = DestinationKey(request.url);
    if (!key.has_value()) {
      TransferResult r;
      r.tag = request.tag;
      r.attempt.error_class = ErrorClass::kInternal;
      r.error_detail = "malformed URL";
      r.started_at = absl::Now();
      done.push_back(std::move(r));
      return;
    }
    Host& host = hosts_[*key];
    host.key = *key;
    // Running plus waiting, beyond which a destination takes no more.
    if (options_.max_queued_per_host > 0 && static_cast<int>(host.queued.size()) + host.active >=
                                                options_.max_per_host + options_.max_queued_per_host) {
      done.push_back(Backlogged(request.tag, host));
      return;
    }
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    t->host = &host;
    t->queued_at = absl::Now();
    host.queued.push_back(std::move(t));
    MarkReady(host);
  }

  void MarkReady(Host& host) {
    if (!host.ready && !host.queued.empty() && host.active < options_.max_per_host) {
      host.ready = true;
      ready_.push_back(&host);
    }
  }

  // Starts queued transfers, one destination at a time in turn, within the caps.
  void StartReady(std::vector<TransferResult>& done) {
    while (!ready_.empty() && static_cast<int>(active_.size()) < options_.max_in_flight) {
      Host* host = ready_.front();
      ready_.pop_front();
      host->ready = false;
      if (host->queued.empty()) continue;  // expired meanwhile
      std::unique_ptr<Transfer> t = std::move(host->queued.front());
      host->queued.pop_front();
      if (host->queued.empty()) host->turned_away = 0;  // caught up
      Start(std::move(t), done);
      MarkReady(*host);
    }
  }

  void Start(std::unique_ptr<Transfer> t, std::vector<TransferResult>& done) {
    CURL* easy = nullptr;
    if (!free_easy_.empty()) {
      easy = free_easy_.back();
      free_easy_.pop_back();
      curl_easy_reset(easy);
    } else {
      easy = curl_easy_init();
    }
    if (easy == nullptr) {
      Fail(std::move(t), "curl_easy_init failed", done);
      return;
    }
    t->easy = easy;
    for (const std::string& h : t->request.headers) t->headers = curl_slist_append(t->headers, h.c_str());
    // No "Expect: 100-continue" round trip, no Accept we do not mean.
    t->headers = curl_slist_append(t->headers, "Expect:");
    t->headers = curl_slist_append(t->headers, "Accept:");
    const OutgoingRequest& req = t->request;
    curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    // An environment proxy would connect on our behalf, out of the guard's sight.
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    t->policy = &options_.destination_policy;
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &CurlSender::OnOpenSocket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &CurlSender::OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &CurlSender::OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error_buffer);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
    MaybeCrashBeforeSend(req.url);
    t->started_at = absl::Now();
    if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
      Fail(std::move(t), "curl_multi_add_handle failed", done);
      return;
    }
    ++t->host->active;
    Transfer* raw = t.get();
    active_.emplace(raw, std::move(t));
  }

  // A transfer that could not be started: an internal error, nothing sent.
  void Fail(std::unique_ptr<Transfer> t, std::string_view why, std::vector<TransferResult>& done) {
    TransferResult r;
    r.tag = t->request.tag;
    r.attempt.error_class = ErrorClass::kInternal;
    r.error_detail = std::string(why);
    r.started_at = absl::Now();
    done.push_back(std::move(r));
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
      // The destination's pace, kept while it is idle too (bounded: a
      // cleared map only loses estimates).
      if (pace_.size() > kMaxPaces) pace_.clear();
      auto [pace, fresh] = pace_.try_emplace(raw->host->key, done.back().duration);
      if (!fresh) pace->second = pace->second * 0.8 + done.back().duration * 0.2;
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
    r.attempt.retry_after = std::move(t.retry_after);
    r.body_prefix = std::move(t.body_prefix);
    return r;
  }

  // Removes a running transfer from the multi handle and frees its slot.
  void Finalize(std::unique_ptr<Transfer> t) {
    curl_multi_remove_handle(multi_, t->easy);
    --t->host->active;
    MarkReady(*t->host);
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
    Host* host = t->host;
    t.reset();
    if (host != nullptr && host->active == 0 && host->queued.empty() && !host->ready) {
      const std::string key = host->key;  // a copy: the node holding host->key goes
      hosts_.erase(key);                  // an idle destination: forget it
    }
  }

  // Answers requests queued longer than max_queue_wait as not sent (checked
  // every 100 ms at most: queues are in arrival order, so only fronts are looked at).
  void ExpireQueued(std::vector<TransferResult>& done) {
    if (options_.max_queue_wait.count() <= 0) return;
    const absl::Time now = absl::Now();
    if (now - last_expiry_check_ < absl::Milliseconds(100)) return;
    last_expiry_check_ = now;
    const absl::Time limit = now - absl::FromChrono(options_.max_queue_wait);
    for (auto it = hosts_.begin(); it != hosts_.end();) {
      Host& host = it->second;
      while (!host.queued.empty() && host.queued.front()->queued_at < limit) {
        const uint64_t tag = host.queued.front()->request.tag;
        host.queued.pop_front();
        done.push_back(Backlogged(tag, host));
      }
      if (host.queued.empty() && host.active == 0) {
        if (host.ready) std::erase(ready_, &host);
        it = hosts_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void DropQueued(std::vector<TransferResult>& done) {
    for (auto& [key, host] : hosts_) {
      for (auto& t : host.queued) done.push_back(NotSent(t->request.tag));
      host.queued.clear();
      host.ready = false;
    }
    ready_.clear();
    std::erase_if(hosts_, [](const auto& kv) { return kv.second.active == 0; });
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

  const CurlSenderOptions options_;
  const CompletionFn on_done_;
  CURLM* multi_ = nullptr;
  std::thread thread_;
  std::mutex join_mu_;
  std::atomic<int> pending_{0};

  std::mutex mu_;
  std::vector<OutgoingRequest> incoming_;  // guarded by mu_
  bool stopping_ = false;                  // guarded by mu_
  absl::Time deadline_;                    // guarded by mu_

  // The sender thread's own state.
  std::unordered_map<std::string, Host> hosts_;
  // Per destination: moving average of its transfers' durations.
  static constexpr std::size_t kMaxPaces = 10000;
  std::unordered_map<std::string, absl::Duration> pace_;
  std::deque<Host*> ready_;
  std::unordered_map<Transfer*, std::unique_ptr<Transfer>> active_;
  std::vector<CURL*> free_easy_;
  absl::Time last_expiry_check_ = absl::InfinitePast();
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpSender>> NewCurlSender(CurlSenderOptions options,
                                                           HttpSender::CompletionFn on_done) {
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
  auto sender = std::make_unique<CurlSender>(options, std::move(on_done));
  if (absl::Status s = sender->Init(); !s.ok()) return s;
  return sender;
}

}  // namespace octo::delivery
