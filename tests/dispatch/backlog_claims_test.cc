// Claims while one destination is backlogged: ClaimScheduler and
// DestinationAdmission driven together on a simulated clock against an
// in-memory queue claimed as the database does (due deliveries, oldest
// next_attempt_at first). A destination that hangs with a large due backlog
// must not hold back another destination's fresh deliveries for more than
// about backlog / claim_batch claim cycles. No threads, no sleeps.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "services/delivery/claim_loop.h"
#include "services/delivery/destination_admission.h"
#include "tests/fakes/simulated_clock.h"

namespace octo::delivery {
namespace {

using octo::testing::SimulatedClock;

constexpr char kHanging[] = "http://127.0.0.1:8080";
constexpr char kHealthy[] = "http://127.0.0.1:9090";

struct QueuedDelivery {
  uint64_t tag = 0;
  std::string destination;
  absl::Time next_attempt_at;
  bool claimed = false;
  bool sent = false;
};

// The dispatch walk reduced to what decides claims: claim (due, oldest
// first), admit, release refused ones into their later slot, answer the
// healthy destination at once and never the hanging one.
class BacklogSimulation {
 public:
  BacklogSimulation(ClaimOptions claim, AdmissionOptions admission)
      : scheduler_(claim, clock_), admission_(admission, clock_) {}

  void Add(int count, const std::string& destination, absl::Time due) {
    for (int i = 0; i < count; ++i) queue_.push_back({next_tag_++, destination, due});
  }

  // One claim cycle: waits (simulated) for the scheduler's next claim and
  // dispatches it. Returns the number claimed.
  int ClaimCycle() {
    int limit = scheduler_.TakeClaim();
    for (int i = 0; limit == 0 && i < 100; ++i) {
      const absl::Time next = scheduler_.NextCheck();
      clock_.Set(next == absl::InfiniteFuture() ? clock_.Now() + absl::Milliseconds(100) : next);
      ExpireWaiting();
      limit = scheduler_.TakeClaim();
    }
    std::vector<QueuedDelivery*> batch = Due(limit);
    scheduler_.Claimed(limit, static_cast<int>(batch.size()));
    int backlogged = 0;
    for (QueuedDelivery* d : batch) backlogged += Dispatch(*d) ? 0 : 1;
    scheduler_.Admitted(static_cast<int>(batch.size()), backlogged);
    return static_cast<int>(batch.size());
  }

  int Sent(const std::string& destination) const {
    return static_cast<int>(std::count_if(queue_.begin(), queue_.end(), [&](const QueuedDelivery& d) {
      return d.sent && d.destination == destination;
    }));
  }
  SimulatedClock& clock() { return clock_; }

 private:
  std::vector<QueuedDelivery*> Due(int limit) {
    std::vector<QueuedDelivery*> due;
    for (QueuedDelivery& d : queue_) {
      if (!d.claimed && !d.sent && d.next_attempt_at <= clock_.Now()) due.push_back(&d);
    }
    std::stable_sort(due.begin(), due.end(), [](const QueuedDelivery* a, const QueuedDelivery* b) {
      return a->next_attempt_at < b->next_attempt_at;
    });
    if (static_cast<int>(due.size()) > limit) due.resize(limit);
    for (QueuedDelivery* d : due) d->claimed = true;
    return due;
  }

  // False when admission refused it as backlog.
  bool Dispatch(QueuedDelivery& d) {
    int deferred = 0;
    const Admission a = admission_.Admit({.tag = d.tag, .destination = d.destination, .webhook_id = "w"}, deferred);
    if (a.verdict == Admission::kDefer) {
      Release(d, a.defer);
      return !a.backlogged;
    }
    OutgoingRequest request;
    request.tag = d.tag;
    std::vector<OutgoingRequest> start;
    if (a.verdict == Admission::kStart) {
      start.push_back(std::move(request));
    } else {
      start = admission_.Enqueue(std::move(request));
    }
    for (const OutgoingRequest& r : start) Started(r.tag);
    return true;
  }

  // The healthy destination answers at once; the hanging one never does.
  void Started(uint64_t tag) {
    QueuedDelivery& d = queue_[tag];
    if (d.destination != kHealthy) return;
    std::vector<OutgoingRequest> next =
        admission_.Finished(tag, absl::Milliseconds(10), /*sent=*/true, {.opened = true, .kept = true});
    d.sent = true;
    d.claimed = false;
    scheduler_.Finished(1, {});
    for (const OutgoingRequest& r : next) Started(r.tag);
  }

  void Release(QueuedDelivery& d, absl::Duration defer) {
    d.claimed = false;
    d.next_attempt_at = clock_.Now() + defer;
    scheduler_.Finished(1, {defer});
  }

  void ExpireWaiting() {
    for (const ExpiredRequest& e : admission_.ExpireWaiting()) Release(queue_[e.tag], e.defer);
  }

  SimulatedClock clock_;
  ClaimScheduler scheduler_;
  DestinationAdmission admission_;
  std::vector<QueuedDelivery> queue_;
  uint64_t next_tag_ = 0;
};

TEST(BacklogClaimsTest, AHangingDestinationsDueBacklogDoesNotStarveAnother) {
  BacklogSimulation sim({.claim_batch = 200, .max_in_flight = 1000, .poll_interval = absl::Seconds(1)},
                        {.max_per_host = 64, .max_queued_per_host = 436, .max_queue_wait = absl::Seconds(10)});
  const absl::Time start = sim.clock().Now();
  sim.Add(10000, kHanging, start - absl::Hours(1));  // due long ago: claimed first
  sim.Add(20, kHealthy, start);
  int cycles = 0;
  // 10,000 / 200 claim cycles reach the fresh deliveries; a few more for
  // the claims that refused less than a batch.
  const int bound = 10000 / 200 + 15;
  while (sim.Sent(kHealthy) < 20 && cycles < bound) {
    sim.ClaimCycle();
    ++cycles;
  }
  EXPECT_EQ(sim.Sent(kHealthy), 20) << "after " << cycles << " claim cycles, "
                                    << absl::FormatDuration(sim.clock().Now() - start) << " simulated";
  EXPECT_LT(sim.clock().Now() - start, absl::Seconds(bound));
}

}  // namespace
}  // namespace octo::delivery
