#pragma once
// An HttpTransport without sockets for the dispatcher's unit tests: it
// records what it is asked to send, and the test answers each request when
// it likes (Complete), or an auto-responder answers at once. Thread-safe.
//
// Example:
//   FakeTransport transport;
//   transport.Start(on_done);
//   ... Submit ...
//   transport.Complete(tag, Answered(503, /*retry_after=*/"120"));
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/delivery/http_transport.h"

namespace octo::testing {

// A result as if the receiver answered `status` (optionally with Retry-After).
inline delivery::TransferResult Answered(int status, std::optional<std::string> retry_after = std::nullopt,
                                         absl::Duration duration = absl::Milliseconds(20)) {
  delivery::TransferResult r;
  r.attempt.http_status = status;
  r.attempt.retry_after = std::move(retry_after);
  r.started_at = absl::FromUnixSeconds(1767225600);
  r.duration = duration;
  r.body_prefix = "ok";
  r.opened_connection = true;  // as on a fresh keep-alive connection
  r.connection_kept = true;
  return r;
}

class FakeTransport final : public delivery::HttpTransport {
 public:
  using Responder = std::function<std::optional<delivery::TransferResult>(const delivery::OutgoingRequest&)>;

  // Answers every request at once with what `responder` returns (nullopt:
  // leave it running for Complete).
  void SetResponder(Responder responder) {
    std::lock_guard lock(mu_);
    responder_ = std::move(responder);
  }

  // Requests submitted before Start are handled now, as the real one does.
  void Start(CompletionFn on_done) override {
    std::vector<delivery::OutgoingRequest> held;
    {
      std::lock_guard lock(mu_);
      on_done_ = std::move(on_done);
      held.swap(before_start_);
    }
    if (!held.empty()) Submit(std::move(held));
  }

  void Submit(std::vector<delivery::OutgoingRequest> requests) override {
    std::vector<delivery::TransferResult> now;
    {
      std::lock_guard lock(mu_);
      if (!on_done_) {
        for (auto& r : requests) before_start_.push_back(std::move(r));
        return;
      }
      for (auto& r : requests) {
        std::optional<delivery::TransferResult> answer;
        if (stopped_) {
          answer = delivery::TransferResult{};
          answer->sent = false;
        } else if (responder_) {
          answer = responder_(r);
        }
        submitted_.push_back(r);
        if (answer.has_value()) {
          answer->tag = r.tag;
          now.push_back(std::move(*answer));
        } else {
          running_[r.tag] = r;
        }
      }
      cv_.notify_all();
    }
    if (!now.empty()) on_done_(std::move(now));
  }

  // Answers a running request; false when there is none with that tag.
  bool Complete(uint64_t tag, delivery::TransferResult result) {
    {
      std::lock_guard lock(mu_);
      if (running_.erase(tag) == 0) return false;
    }
    result.tag = tag;
    on_done_({std::move(result)});
    return true;
  }

  // Running requests are aborted as timeouts (as the real one does at its
  // deadline); later ones come back unsent.
  void Shutdown(absl::Time /*deadline*/) override {
    std::vector<delivery::TransferResult> aborted;
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      for (auto& [tag, r] : running_) {
        delivery::TransferResult t;
        t.tag = tag;
        t.attempt.error_class = delivery::ErrorClass::kTimeout;
        aborted.push_back(std::move(t));
      }
      running_.clear();
    }
    if (!aborted.empty()) on_done_(std::move(aborted));
  }

  std::vector<delivery::OutgoingRequest> submitted() const {
    std::lock_guard lock(mu_);
    return submitted_;
  }
  std::vector<uint64_t> running() const {
    std::lock_guard lock(mu_);
    std::vector<uint64_t> tags;
    for (const auto& [tag, r] : running_) tags.push_back(tag);
    return tags;
  }
  bool WaitForSubmitted(std::size_t n, absl::Duration timeout = absl::Seconds(30)) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return submitted_.size() >= n; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  CompletionFn on_done_;
  Responder responder_;
  bool stopped_ = false;
  std::vector<delivery::OutgoingRequest> submitted_;
  std::vector<delivery::OutgoingRequest> before_start_;
  std::map<uint64_t, delivery::OutgoingRequest> running_;
};

}  // namespace octo::testing
