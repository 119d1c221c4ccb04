#pragma once
// Recording: the results of claimed deliveries (attempts, releases,
// cancellations) written to the store in batches by writer threads, each
// with its own DispatchStore (connection). Each round a writer takes at
// most one batch, the oldest results first; a second writer starts beside
// a busy one once half a batch waits, so commits overlap when one writer
// falls behind and batches stay large when it does not. A batch the database refuses
// for a lasting reason is written one result at a time so that one bad
// result does not hold back the others; a result refused kMaxWriteFailures
// times is given up (logged; its lease expires and the delivery is sent
// again: at least once). Transient failures (UNAVAILABLE, ABORTED) keep
// everything for the next round, with backoff (100 ms doubling to 5 s).
// Every result written or given up is reported to `on_done` (which frees
// its claim slot and notes when it falls due again).
//
// Example:
//   ResultRecorder recorder({.batch = 500}, [&](std::size_t n, const std::vector<DeliveryResult>& w) {...});
//   recorder.StartWriters({store.get()});
//   recorder.Add({result});
//   ...
//   recorder.Stop(absl::Now() + absl::Seconds(10));
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/common/metrics.h"
#include "services/delivery/dispatch_store.h"

namespace octo::delivery {

struct RecorderOptions {
  int batch = 500;  // results per transaction at most
  metrics::DeliveryMetrics* metrics = nullptr;  // attempts, outcomes, webhooks disabled
  metrics::PgMetrics* pg_metrics = nullptr;     // dispatch_write_results timing
  // Called by a writer when it starts (true) and stops (false) holding
  // results it could not write for lack of a database connection
  // (UNAVAILABLE). The claimer waits meanwhile (ClaimScheduler::ResultsHeld):
  // those deliveries' leases may run out, and a claim would send them again.
  std::function<void(bool held)> on_results_held = nullptr;
};

class ResultRecorder {
 public:
  // `count` results are done with; `written` those that were written.
  using DoneFn = std::function<void(std::size_t count, const std::vector<DeliveryResult>& written)>;
  // A result waiting to be written, and how often the database refused it.
  struct Pending {
    DeliveryResult result;
    int failures = 0;
  };
  struct Stats {
    int64_t writes = 0;
    int64_t written = 0;
    absl::Duration write_time;
  };
  static constexpr int kMaxWriteFailures = 5;

  ResultRecorder(RecorderOptions options, DoneFn on_done);
  ~ResultRecorder();

  // Thread-safe.
  void Add(std::vector<DeliveryResult> results);
  // One writing round: takes what was added into `backlog`, the oldest
  // first, until it holds `take` results (the writer threads take one
  // batch each, so that several commit side by side), and writes it in
  // batches. True when `backlog` is empty afterwards. `outage` (optional):
  // set when what is left was kept for lack of a connection (UNAVAILABLE),
  // not for a lock or a refusal.
  bool WriteOnce(DispatchStore& store, std::vector<Pending>& backlog, bool* outage = nullptr,
                 std::size_t take = SIZE_MAX);
  // One thread per store (the stores must outlive Stop).
  void StartWriters(const std::vector<DispatchStore*>& stores);
  // Once nothing more will be added: the writers write what is left and end;
  // what cannot be written by `deadline` is given up.
  void Stop(absl::Time deadline);
  Stats stats() const;

 private:
  void WriterLoop(DispatchStore& store);
  void SetHeld(bool& holding, bool held);
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes backlog[from, from + n) as one transaction.
  absl::Status WriteChunk(DispatchStore& store, const std::vector<Pending>& backlog, std::size_t from, std::size_t n);
  void Done(std::size_t count, const std::vector<DeliveryResult>& written);
  void CountDisabled(DispatchStore& store);

  const RecorderOptions options_;
  const DoneFn on_done_;
  std::vector<std::thread> writers_;
  mutable absl::Mutex mu_;
  // Results waiting before another writer starts beside a busy one.
  const std::size_t side_by_side_;
  std::vector<DeliveryResult> added_ ABSL_GUARDED_BY(mu_);
  int busy_writers_ ABSL_GUARDED_BY(mu_) = 0;  // writers in a round
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// Counts the attempts of written results (docs/observability.md).
void RecordAttemptMetrics(metrics::DeliveryMetrics& m, const std::vector<DeliveryResult>& written);

}  // namespace octo::delivery
