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
#include "services/delivery/curl_transfer.h"
#include "services/delivery/send_fault.h"

namespace octo::delivery {

namespace {

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
    std::vector<OutgoingRequest> held;
    {
      std::lock_guard lock(mu_);
      if (thread_.joinable() || on_done_) return;  // started already
      on_done_ = std::move(on_done);
      if (!stopping_) {
        thread_ = std::thread([this] { Run(); });
        return;
      }
      // Shut down before it started: what was submitted meanwhile is
      // answered, not sent.
      held.swap(incoming_);
    }
    AnswerNotSent(held);
  }

  void Submit(std::vector<OutgoingRequest> requests) override {
    if (requests.empty()) return;
    {
      std::lock_guard lock(mu_);
      if (!stopping_ || !on_done_) {
        // Before Start they wait here: Start's thread takes them first (or,
        // shut down before Start, Start answers them not sent).
        for (auto& r : requests) incoming_.push_back(std::move(r));
        // Under the lock: Shutdown() frees the multi handle only after
        // stopping_ is set, which this section excludes.
        if (thread_.joinable() && !stopping_) curl_multi_wakeup(multi_);
        return;
      }
    }
    // Shutting down: nothing more is started.
    AnswerNotSent(requests);
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
  // on_done_ is set once, before this can be called.
  void AnswerNotSent(const std::vector<OutgoingRequest>& requests) {
    if (requests.empty()) return;
    std::vector<TransferResult> unsent;
    unsent.reserve(requests.size());
    for (const auto& r : requests) unsent.push_back(NotSent(r.tag));
    on_done_(std::move(unsent));
  }

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
    if (!ParsesAsAbsoluteUrl(request.url)) {
      done.push_back(Refused(request.tag, ErrorClass::kInternal, "malformed URL"));
      return;
    }
    auto t = std::make_unique<CurlTransfer>();
    t->request = std::move(request);
    CURL* easy = TakeEasy();
    if (easy == nullptr) {
      Fail(std::move(t), "curl_easy_init failed", done);
      return;
    }
    t->easy = easy;
    ConfigureTransfer(*t, options_, resolve_);
    MaybeCrashBeforeSend(t->request.url);
    t->started_at = absl::Now();
    if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
      Fail(std::move(t), "curl_multi_add_handle failed", done);
      return;
    }
    CurlTransfer* raw = t.get();
    active_.emplace(raw, std::move(t));
  }

  CURL* TakeEasy() {
    if (free_easy_.empty()) return curl_easy_init();
    CURL* easy = free_easy_.back();
    free_easy_.pop_back();
    curl_easy_reset(easy);
    return easy;
  }

  // A transfer that could not be started: an internal error, nothing sent.
  void Fail(std::unique_ptr<CurlTransfer> t, std::string_view why, std::vector<TransferResult>& done) {
    done.push_back(Refused(t->request.tag, ErrorClass::kInternal, std::string(why)));
    Release(std::move(t));
  }

  void CollectFinished(std::vector<TransferResult>& done) {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CurlTransfer* raw = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
      auto it = active_.find(raw);
      if (it == active_.end()) continue;  // cannot happen: every added handle is listed
      done.push_back(FinishTransfer(*raw, msg->data.result));
      Finalize(std::move(it->second));
      active_.erase(it);
    }
  }

  // Removes a running transfer from the multi handle.
  void Finalize(std::unique_ptr<CurlTransfer> t) {
    curl_multi_remove_handle(multi_, t->easy);
    Release(std::move(t));
  }

  void Release(std::unique_ptr<CurlTransfer> t) {
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
      TransferResult r = FinishTransfer(*t, CURLE_OPERATION_TIMEDOUT);
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
  std::unordered_map<CurlTransfer*, std::unique_ptr<CurlTransfer>> active_;
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
