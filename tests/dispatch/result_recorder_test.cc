// ResultRecorder against the in-memory store: batching, transient and
// lasting failures, giving up, what is reported done. One writing round at a
// time (WriteOnce), so no threads and no sleeps.
#include "services/delivery/result_recorder.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fakes/fake_dispatch_store.h"

namespace octo::delivery {
namespace {

using octo::testing::FakeDispatchStore;

std::vector<DeliveryResult> Results(int n, int first = 0) {
  std::vector<DeliveryResult> out;
  for (int i = first; i < first + n; ++i) {
    DeliveryResult r;
    r.delivery_id = "d-" + std::to_string(i);
    r.lease_us = i;
    r.action = DeliveryResult::Action::kAttempt;
    r.attempt.http_status = 200;
    r.decision.kind = DecisionKind::kSucceeded;
    out.push_back(std::move(r));
  }
  return out;
}

class RecorderTest : public ::testing::Test {
 protected:
  ResultRecorder Make(int batch) {
    return ResultRecorder({.batch = batch}, [this](std::size_t count, const std::vector<DeliveryResult>& written) {
      done_ += count;
      written_ += written.size();
    });
  }
  FakeDispatchStore store_;
  std::vector<ResultRecorder::Pending> backlog_;
  std::size_t done_ = 0;
  std::size_t written_ = 0;
};

TEST_F(RecorderTest, WritesInTransactionsOfAtMostTheBatchSize) {
  ResultRecorder recorder = Make(500);
  recorder.Add(Results(700));
  recorder.Add(Results(500, 700));
  EXPECT_TRUE(recorder.WriteOnce(store_, backlog_));
  EXPECT_EQ(store_.write_sizes(), (std::vector<int>{500, 500, 200}));
  EXPECT_EQ(store_.written().size(), 1200u);
  EXPECT_EQ(store_.written()[0].delivery_id, "d-0");
  EXPECT_EQ(store_.written()[1199].delivery_id, "d-1199");
  EXPECT_EQ(done_, 1200u);
  EXPECT_EQ(written_, 1200u);
  EXPECT_EQ(recorder.stats().writes, 3);
}

// The database is down: everything is kept, nothing reported done (the
// claim slots stay taken), and the next round writes it all.
TEST_F(RecorderTest, ATransientFailureKeepsEverythingForTheNextRound) {
  ResultRecorder recorder = Make(10);
  recorder.Add(Results(25));
  store_.FailNextWrites({absl::OkStatus(), absl::UnavailableError("connection lost")});
  EXPECT_FALSE(recorder.WriteOnce(store_, backlog_));
  EXPECT_EQ(store_.written().size(), 10u);
  EXPECT_EQ(backlog_.size(), 15u);
  EXPECT_EQ(done_, 10u);
  store_.FailNextWrites({absl::AbortedError("serialization failure")});
  EXPECT_FALSE(recorder.WriteOnce(store_, backlog_));
  EXPECT_EQ(backlog_.size(), 15u);
  EXPECT_TRUE(recorder.WriteOnce(store_, backlog_));
  EXPECT_EQ(store_.written().size(), 25u);
  EXPECT_EQ(done_, 25u);
}

// A batch refused for a lasting reason is retried one result at a time so
// that one bad result holds back no other; a result refused five times is
// given up (reported done, not written).
TEST_F(RecorderTest, ALastingRefusalIsIsolatedAndGivenUpAfterFiveTries) {
  ResultRecorder recorder = Make(10);
  recorder.Add(Results(3));
  // The batch, then one at a time: d-0 ok, d-1 refused, d-2 ok.
  store_.FailNextWrites({absl::InternalError("bad row"), absl::OkStatus(), absl::InternalError("bad row")});
  EXPECT_FALSE(recorder.WriteOnce(store_, backlog_));
  ASSERT_EQ(backlog_.size(), 1u);
  EXPECT_EQ(backlog_[0].result.delivery_id, "d-1");
  EXPECT_EQ(backlog_[0].failures, 1);
  EXPECT_EQ(done_, 2u);
  for (int i = 2; i <= 5; ++i) {
    store_.FailNextWrites({absl::InternalError("bad row")});
    recorder.WriteOnce(store_, backlog_);
  }
  EXPECT_TRUE(backlog_.empty());
  EXPECT_EQ(done_, 3u);     // its slot is freed...
  EXPECT_EQ(written_, 2u);  // ...but it was never written
}

// A round takes at most `take` results, the oldest first; the rest wait for
// the next round (or another writer).
TEST_F(RecorderTest, ARoundTakesAtMostWhatItIsAskedFor) {
  ResultRecorder recorder = Make(500);
  recorder.Add(Results(700));
  EXPECT_TRUE(recorder.WriteOnce(store_, backlog_, nullptr, 500));
  EXPECT_EQ(store_.write_sizes(), (std::vector<int>{500}));
  EXPECT_EQ(store_.written().back().delivery_id, "d-499");
  EXPECT_TRUE(recorder.WriteOnce(store_, backlog_, nullptr, 500));
  EXPECT_EQ(store_.write_sizes(), (std::vector<int>{500, 200}));
  EXPECT_EQ(store_.written().back().delivery_id, "d-699");
  EXPECT_EQ(done_, 700u);
}

// What a round kept (a lasting refusal) counts against what it takes.
TEST_F(RecorderTest, AKeptResultCountsAgainstTheRound) {
  ResultRecorder recorder = Make(10);
  recorder.Add(Results(3));
  store_.FailNextWrites({absl::InternalError("bad row"), absl::OkStatus(), absl::InternalError("bad row")});
  EXPECT_FALSE(recorder.WriteOnce(store_, backlog_, nullptr, 10));
  ASSERT_EQ(backlog_.size(), 1u);
  recorder.Add(Results(20, 3));
  EXPECT_TRUE(recorder.WriteOnce(store_, backlog_, nullptr, 10));
  EXPECT_EQ(store_.write_sizes().back(), 10);  // d-1 again and 9 new ones
  EXPECT_EQ(store_.written()[2].delivery_id, "d-1");
  EXPECT_TRUE(recorder.WriteOnce(store_, backlog_, nullptr, 10));
  EXPECT_TRUE(recorder.WriteOnce(store_, backlog_, nullptr, 10));
  EXPECT_EQ(store_.written().size(), 23u);
}

// A store whose writes wait until the test opens its gate; the writer
// threads may share it.
class GatedStore final : public DispatchStore {
 public:
  using DispatchStore::Claim;
  absl::StatusOr<ClaimBatch> Claim(int, absl::Duration, Suspects) override { return ClaimBatch{}; }
  absl::Status WriteResults(const std::vector<DeliveryResult>& results) override {
    std::unique_lock lock(mu_);
    sizes_.push_back(static_cast<int>(results.size()));
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    written_ += results.size();
    return absl::OkStatus();
  }
  DisabledCounts TakeDisabledCounts() override { return {}; }
  // True once `n` writes have begun (false after the timeout, which only
  // bounds a broken test).
  bool WaitEntered(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return sizes_.size() >= n; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  std::vector<int> sizes() {
    std::lock_guard lock(mu_);
    return sizes_;
  }
  std::size_t written() {
    std::lock_guard lock(mu_);
    return written_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> sizes_;  // of every write begun, in order
  bool open_ = false;
  std::size_t written_ = 0;
};

// Two batches waiting and two writers: each takes one, and both are being
// committed at once (one writer took everything before).
TEST_F(RecorderTest, WritersCommitBatchesSideBySide) {
  GatedStore store;
  ResultRecorder recorder = Make(100);
  recorder.Add(Results(200));
  recorder.StartWriters({&store, &store});
  ASSERT_TRUE(store.WaitEntered(2));
  EXPECT_EQ(store.sizes(), (std::vector<int>{100, 100}));
  store.Open();
  recorder.Stop(absl::InfiniteFuture());
  EXPECT_EQ(store.written(), 200u);
  EXPECT_EQ(done_, 200u);
}

// Beside a busy writer another starts only once half a batch waits, so
// that a few results do not cost a commit of their own.
TEST_F(RecorderTest, ASecondWriterWaitsForHalfABatch) {
  GatedStore store;
  ResultRecorder recorder = Make(100);
  recorder.StartWriters({&store, &store});
  recorder.Add(Results(10));
  ASSERT_TRUE(store.WaitEntered(1));  // one writer holds 10, the gate closed
  recorder.Add(Results(30, 10));      // 30 wait: too few for the other
  recorder.Add(Results(20, 40));      // 50: half a batch
  ASSERT_TRUE(store.WaitEntered(2));
  EXPECT_EQ(store.sizes(), (std::vector<int>{10, 50}));
  store.Open();
  recorder.Stop(absl::InfiniteFuture());
  EXPECT_EQ(store.written(), 60u);
  EXPECT_EQ(done_, 60u);
}

TEST_F(RecorderTest, WritersDrainEverythingBeforeStopReturns) {
  ResultRecorder recorder = Make(7);
  recorder.StartWriters({&store_});
  recorder.Add(Results(30));
  recorder.Stop(absl::InfiniteFuture());
  EXPECT_EQ(store_.written().size(), 30u);
  EXPECT_EQ(done_, 30u);
}

}  // namespace
}  // namespace octo::delivery
