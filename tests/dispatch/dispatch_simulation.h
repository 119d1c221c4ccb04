#pragma once
// The claim -> admit -> send -> record walk of one octo-delivery process
// against an in-memory queue, on a simulated clock, ticked a millisecond at
// a time: ClaimScheduler and DestinationAdmission are the real ones; the
// queue is claimed as the database does (due, not leased, oldest
// next_attempt_at first, a lease per claim); the main destination answers
// each request after `pace(now)`, a second one (AddOther: a neighbour that
// must not wait behind the main one's backlog) after 2 ms; results are
// written as they come. A delivery released as backlog is marked parked,
// and after a claim that found less than it asked for the process pulls
// parked backlogs forward as the dispatcher does (DestinationAdmission::
// TakePulls, then PullForward on the queue: parked, not leased, not due
// yet, earliest first; off with pull_forward = false). Kill()
// drops the process as kill -9 does (its claims keep their leases until
// they run out, its requests at the receiver were received but never
// recorded) and starts a fresh one. No threads, no sleeps: a run of
// 100,000 deliveries takes a second or two of CPU.
//
// Example:
//   DispatchSimulation sim({...}, [](absl::Time) { return absl::Milliseconds(2); });
//   sim.Add(100000);
//   sim.RunUntil([&] { return sim.Received() >= 15000; }, absl::Minutes(2));
//   sim.Kill();
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "services/delivery/claim_loop.h"
#include "services/delivery/destination_admission.h"
#include "tests/fakes/simulated_clock.h"

namespace octo::delivery::simulation {

inline constexpr char kDestination[] = "http://127.0.0.1:8080";
inline constexpr char kOtherDestination[] = "http://127.0.0.1:9090";
inline constexpr absl::Duration kOtherPace = absl::Milliseconds(2);

struct SimulationOptions {
  ClaimOptions claim;
  AdmissionOptions admission;
  absl::Duration lease = absl::Seconds(2);
  absl::Duration claim_takes = absl::Milliseconds(5);  // one claim statement
  absl::Duration restart_takes = absl::Milliseconds(500);
  bool pull_forward = true;                             // ClaimLoop::PullBacklogs
  absl::Duration pull_takes = absl::Milliseconds(5);    // one PullForward statement
};

class DispatchSimulation {
 public:
  using Pace = std::function<absl::Duration(absl::Time)>;

  DispatchSimulation(SimulationOptions options, Pace pace) : options_(options), pace_(std::move(pace)) { Restart(); }

  octo::testing::SimulatedClock& clock() { return clock_; }

  // `count` deliveries due now, to the main destination (Add) or the
  // other one (AddOther).
  void Add(int count) { AddTo(false, count); }
  void AddOther(int count) { AddTo(true, count); }
  // `count` deliveries to the main destination waiting for their retry
  // (not parked), due after `due_in`; returns the first one's index.
  int AddRetries(int count, absl::Duration due_in) {
    const int first = static_cast<int>(deliveries_.size());
    AddTo(false, count);
    for (int id = first; id < first + count; ++id) {
      due_.erase({deliveries_[id].next_attempt_at, id});
      deliveries_[id].next_attempt_at = clock_.Now() + due_in;
      due_.insert({deliveries_[id].next_attempt_at, id});
    }
    return first;
  }
  // When delivery `id` was first sent (InfiniteFuture: not yet).
  absl::Time FirstSent(int id) const { return deliveries_[id].first_sent; }

  // Ticks a millisecond at a time until `done` or `limit` (simulated) has
  // passed; returns whether `done`.
  bool RunUntil(const std::function<bool()>& done, absl::Duration limit) {
    const absl::Time end = clock_.Now() + limit;
    while (!done()) {
      if (clock_.Now() >= end) return false;
      clock_.Advance(absl::Milliseconds(1));
      Tick();
    }
    return true;
  }

  // kill -9, and a new process after restart_takes.
  void Kill() {
    process_.reset();
    running_.clear();
    clock_.Advance(options_.restart_takes);
    Restart();
  }

  // Requests the receiver saw (duplicates included).
  int64_t Received() const { return received_; }
  // Of the other destination's deliveries: how many succeeded, and the
  // longest any took from being added to succeeding (unfinished ones count
  // up to now).
  int OtherSucceeded() const { return other_succeeded_; }
  absl::Duration OtherLongestWait() const {
    absl::Duration longest;
    for (const auto& d : deliveries_) {
      if (d.other) longest = std::max(longest, (d.done ? d.done_at : clock_.Now()) - d.added_at);
    }
    return longest;
  }
  int Succeeded() const { return succeeded_; }
  int64_t Claimed() const { return claimed_; }
  int64_t Released() const { return released_; }
  // PullForward statements, and the parked deliveries they made due.
  int64_t Pulls() const { return pulls_; }
  int64_t Pulled() const { return pulled_; }
  // How far ahead the farthest unfinished delivery is due (parked by a
  // backlog release), from now.
  absl::Duration FarthestRelease() const {
    absl::Time latest = clock_.Now();
    for (const auto& d : deliveries_) {
      if (!d.done) latest = std::max(latest, d.next_attempt_at);
    }
    return latest - clock_.Now();
  }

 private:
  struct Delivery {
    absl::Time next_attempt_at;
    bool other = false;  // to kOtherDestination
    absl::Time added_at;
    absl::Time lease_until = absl::InfinitePast();
    bool done = false;
    absl::Time done_at;
    bool parked = false;  // released as backlog (parked_backlog)
    absl::Time first_sent = absl::InfiniteFuture();
  };

  void AddTo(bool other, int count) {
    for (int i = 0; i < count; ++i) {
      Delivery d;
      d.next_attempt_at = d.added_at = clock_.Now();
      d.other = other;
      deliveries_.push_back(d);
      due_.insert({clock_.Now(), static_cast<int>(deliveries_.size()) - 1});
    }
  }
  struct Process {
    Process(const SimulationOptions& o, const Clock& clock) : scheduler(o.claim, clock), admission(o.admission, clock) {}
    ClaimScheduler scheduler;
    DestinationAdmission admission;
    std::unordered_map<uint64_t, int> tags;  // admitted: tag -> delivery
    uint64_t next_tag = 1;
    absl::Time claim_busy_until = absl::InfinitePast();
    absl::Time next_expiry = absl::InfinitePast();
  };

  void Restart() { process_ = std::make_unique<Process>(options_, clock_); }

  void Tick() {
    const absl::Time now = clock_.Now();
    Process& p = *process_;
    // Requests answered by now, their results written.
    while (!running_.empty() && running_.begin()->first <= now) {
      const auto [at, running] = *running_.begin();
      const auto [tag, started] = running;
      running_.erase(running_.begin());
      const int id = p.tags[tag];
      p.tags.erase(tag);
      Delivery& d = deliveries_[id];
      if (!d.done) {
        ++succeeded_;
        if (d.other) ++other_succeeded_;
        d.done_at = now;
      }
      d.done = true;
      d.lease_until = absl::InfinitePast();
      std::vector<OutgoingRequest> next =
          p.admission.Finished(tag, now - started, /*sent=*/true, {.opened = true, .kept = true});
      p.scheduler.Finished(1, {});
      Start(next);
    }
    if (now >= p.next_expiry) {  // the pipeline's 100 ms tick
      p.next_expiry = now + absl::Milliseconds(100);
      for (const ExpiredRequest& e : p.admission.ExpireWaiting()) Release(e.tag, e.defer, /*parked=*/true);
      Start(p.admission.PromoteAll());
    }
    if (now >= p.claim_busy_until) {
      if (const int limit = p.scheduler.TakeClaim(); limit > 0) {
        p.claim_busy_until = now + options_.claim_takes;
        Claim(limit);
      }
    }
  }

  void Claim(int limit) {
    Process& p = *process_;
    const absl::Time now = clock_.Now();
    // Leases that ran out make their deliveries claimable again.
    while (!leases_.empty() && leases_.begin()->first < now) {
      const auto [until, id] = *leases_.begin();
      leases_.erase(leases_.begin());
      Delivery& d = deliveries_[id];
      if (!d.done && d.lease_until == until) due_.insert({d.next_attempt_at, id});
    }
    std::vector<int> batch;
    while (static_cast<int>(batch.size()) < limit && !due_.empty() && due_.begin()->first <= now) {
      const int id = due_.begin()->second;
      due_.erase(due_.begin());
      deliveries_[id].lease_until = now + options_.lease;
      leases_.insert({now + options_.lease, id});
      batch.push_back(id);
    }
    claimed_ += static_cast<int64_t>(batch.size());
    p.scheduler.Claimed(limit, static_cast<int>(batch.size()));
    int backlogged = 0;
    for (int id : batch) {
      const uint64_t tag = p.next_tag++;
      p.tags[tag] = id;
      int deferred = 0;
      const bool other = deliveries_[id].other;
      const Admission a = p.admission.Admit({.tag = tag,
                                             .destination = other ? kOtherDestination : kDestination,
                                             .webhook_id = other ? "v" : "w",
                                             .claimed_at = now,
                                             .parked = deliveries_[id].parked},
                                            deferred);
      if (a.verdict == Admission::kDefer) {
        backlogged += a.backlogged ? 1 : 0;
        Release(tag, a.defer, a.backlogged);
      } else if (a.verdict == Admission::kStart) {
        OutgoingRequest r;
        r.tag = tag;
        Start({r});
      } else {
        OutgoingRequest r;
        r.tag = tag;
        Start(p.admission.Enqueue(std::move(r)));
      }
    }
    if (!batch.empty()) p.scheduler.Admitted(static_cast<int>(batch.size()), backlogged);
    if (options_.pull_forward && static_cast<int>(batch.size()) < limit) PullBacklogs();
  }

  // ClaimLoop::PullBacklogs against the queue, as kPullForward does it.
  void PullBacklogs() {
    Process& p = *process_;
    const absl::Time now = clock_.Now();
    int pulled = 0;
    for (const BacklogPull& pull : p.admission.TakePulls()) {
      ++pulls_;
      p.claim_busy_until += options_.pull_takes;
      const bool other = pull.destination == kOtherDestination;
      std::vector<int> ids;
      for (auto it = due_.upper_bound({now, INT32_MAX}); it != due_.end() && static_cast<int>(ids.size()) < pull.limit;
           ++it) {
        const Delivery& d = deliveries_[it->second];
        if (d.parked && d.other == other) ids.push_back(it->second);
      }
      for (int id : ids) {
        due_.erase({deliveries_[id].next_attempt_at, id});
        deliveries_[id].parked = false;  // kPullForward clears the mark
        deliveries_[id].next_attempt_at = now;
        due_.insert({now, id});
      }
      pulled += static_cast<int>(ids.size());
      p.admission.PullDone(pull, static_cast<int>(ids.size()));
    }
    pulled_ += pulled;
    if (pulled > 0) p.scheduler.Wake();
  }

  // Released unsent: lease cleared, due again after `defer`; `parked` when
  // released as backlog.
  void Release(uint64_t tag, absl::Duration defer, bool parked) {
    Process& p = *process_;
    const int id = p.tags[tag];
    p.tags.erase(tag);
    Delivery& d = deliveries_[id];
    ++released_;
    d.lease_until = absl::InfinitePast();
    d.next_attempt_at = clock_.Now() + defer;
    d.parked = parked;
    due_.insert({d.next_attempt_at, id});
    p.scheduler.Finished(1, {defer});
  }

  void Start(const std::vector<OutgoingRequest>& requests) {
    for (const OutgoingRequest& r : requests) {
      ++received_;
      Delivery& d = deliveries_[process_->tags[r.tag]];
      d.first_sent = std::min(d.first_sent, clock_.Now());
      const bool other = d.other;
      const absl::Duration takes = other ? kOtherPace : pace_(clock_.Now());
      running_.insert({clock_.Now() + takes, {r.tag, clock_.Now()}});
    }
  }

  const SimulationOptions options_;
  const Pace pace_;
  octo::testing::SimulatedClock clock_;
  std::unique_ptr<Process> process_;
  std::vector<Delivery> deliveries_;
  std::set<std::pair<absl::Time, int>> due_;       // not leased, by next_attempt_at
  std::multimap<absl::Time, int> leases_;          // lease end -> delivery
  std::multimap<absl::Time, std::pair<uint64_t, absl::Time>> running_;  // answer time -> tag, start
  int64_t received_ = 0;
  int64_t claimed_ = 0;
  int64_t released_ = 0;
  int64_t pulls_ = 0;
  int64_t pulled_ = 0;
  int succeeded_ = 0;
  int other_succeeded_ = 0;
};

}  // namespace octo::delivery::simulation
