#pragma once
// A DispatchStore in memory for the dispatcher's unit tests: claims are
// scripted (each Claim takes the next batch, else an empty one), writes are
// recorded and can be made to fail. Thread-safe, so that a dispatcher's
// threads may share it with the test.
//
// Example:
//   FakeDispatchStore store;
//   store.AddClaim(batch);
//   store.FailNextWrites({absl::UnavailableError("down")});
//   ... dispatcher ...
//   ASSERT_TRUE(store.WaitForWritten(1));
#include <condition_variable>
#include <deque>
#include <utility>
#include <mutex>
#include <vector>

#include "absl/time/time.h"
#include "services/delivery/dispatch_store.h"

namespace octo::testing {

class FakeDispatchStore final : public delivery::DispatchStore {
 public:
  void AddClaim(absl::StatusOr<delivery::ClaimBatch> batch) {
    std::lock_guard lock(mu_);
    claims_.push_back(std::move(batch));
  }
  // The next WriteResults calls return these, in order (nothing is recorded).
  void FailNextWrites(std::vector<absl::Status> statuses) {
    std::lock_guard lock(mu_);
    for (auto& s : statuses) write_failures_.push_back(std::move(s));
  }
  // Every WriteResults call returns `status` until it is set back to OK
  // (after the FailNextWrites ones).
  void FailWritesWith(absl::Status status) {
    std::lock_guard lock(mu_);
    failing_ = std::move(status);
  }
  void SetDisabledCounts(DisabledCounts counts) {
    std::lock_guard lock(mu_);
    disabled_ = counts;
  }

  using delivery::DispatchStore::Claim;
  absl::StatusOr<delivery::ClaimBatch> Claim(int limit, absl::Duration lease, Suspects suspects) override {
    std::lock_guard lock(mu_);
    claim_limits_.push_back(limit);
    claim_suspects_.push_back(suspects);
    last_lease_ = lease;
    if (claims_.empty()) return delivery::ClaimBatch{};
    absl::StatusOr<delivery::ClaimBatch> next = std::move(claims_.front());
    claims_.pop_front();
    return next;
  }

  absl::Status WriteResults(const std::vector<delivery::DeliveryResult>& results) override {
    std::lock_guard lock(mu_);
    write_sizes_.push_back(static_cast<int>(results.size()));
    if (!write_failures_.empty()) {
      absl::Status s = std::move(write_failures_.front());
      write_failures_.pop_front();
      if (!s.ok()) return s;
    }
    if (!failing_.ok()) return failing_;
    for (const auto& r : results) written_.push_back(r);
    cv_.notify_all();
    return absl::OkStatus();
  }

  DisabledCounts TakeDisabledCounts() override {
    std::lock_guard lock(mu_);
    return std::exchange(disabled_, DisabledCounts{});
  }

  std::vector<delivery::DeliveryResult> written() const {
    std::lock_guard lock(mu_);
    return written_;
  }
  // Sizes of every WriteResults call, failed ones included.
  std::vector<int> write_sizes() const {
    std::lock_guard lock(mu_);
    return write_sizes_;
  }
  std::vector<int> claim_limits() const {
    std::lock_guard lock(mu_);
    return claim_limits_;
  }
  // What each claim allowed of suspects, in order.
  std::vector<Suspects> claim_suspects() const {
    std::lock_guard lock(mu_);
    return claim_suspects_;
  }
  absl::Duration last_lease() const {
    std::lock_guard lock(mu_);
    return last_lease_;
  }
  // True once at least n results were written (false after the timeout,
  // which only bounds a broken test).
  bool WaitForWritten(std::size_t n, absl::Duration timeout = absl::Seconds(30)) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return written_.size() >= n; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<absl::StatusOr<delivery::ClaimBatch>> claims_;
  std::deque<absl::Status> write_failures_;
  absl::Status failing_;
  std::vector<delivery::DeliveryResult> written_;
  std::vector<int> write_sizes_;
  std::vector<int> claim_limits_;
  std::vector<Suspects> claim_suspects_;
  absl::Duration last_lease_;
  DisabledCounts disabled_;
};

}  // namespace octo::testing
