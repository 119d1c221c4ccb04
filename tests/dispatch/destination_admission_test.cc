// DestinationAdmission on a simulated clock: per-destination caps, line and
// backlog, warm-up, pace, per-webhook rate and concurrency, expiry of
// requests waiting too long, shutdown. No sockets, no sleeps.
#include "services/delivery/destination_admission.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fakes/simulated_clock.h"

namespace octo::delivery {
namespace {

using octo::testing::SimulatedClock;

constexpr char kDest[] = "http://127.0.0.1:8080";
constexpr char kOther[] = "http://127.0.0.1:9090";
// An answer on a connection opened for it and kept alive.
constexpr ConnectionUse kOpenedKept{.opened = true, .kept = true};

AdmissionAsk Ask(uint64_t tag, std::string destination = kDest, std::string webhook = "") {
  AdmissionAsk a;
  a.tag = tag;
  a.destination = std::move(destination);
  a.webhook_id = webhook.empty() ? "w-" + std::to_string(tag) : webhook;
  return a;
}

OutgoingRequest Request(uint64_t tag) {
  OutgoingRequest r;
  r.tag = tag;
  return r;
}

std::vector<uint64_t> Tags(const std::vector<OutgoingRequest>& requests) {
  std::vector<uint64_t> tags;
  for (const auto& r : requests) tags.push_back(r.tag);
  return tags;
}

class AdmissionTest : public ::testing::Test {
 protected:
  DestinationAdmission Make(int max_per_host, int max_queued, absl::Duration max_wait = absl::ZeroDuration()) {
    return DestinationAdmission({max_per_host, max_queued, max_wait}, clock_);
  }
  // Admits `ask`; a kWait one is rendered and put in line at once.
  Admission AdmitAndQueue(DestinationAdmission& a, const AdmissionAsk& ask, std::vector<OutgoingRequest>* started) {
    int deferred = 0;
    const Admission verdict = a.Admit(ask, deferred);
    if (verdict.verdict == Admission::kWait) {
      for (auto& r : a.Enqueue(Request(ask.tag))) started->push_back(std::move(r));
    }
    return verdict;
  }
  // Proves `n` connections to a destination: bursts of n requests, answered.
  void WarmUp(DestinationAdmission& a, const std::string& destination, int n, uint64_t first_tag) {
    for (uint64_t burst = 0; a.ProvenConnections(destination) < n && burst < 10; ++burst) {
      Burst(a, destination, n, first_tag + burst * 1000);
    }
  }
  void Burst(DestinationAdmission& a, const std::string& destination, int n, uint64_t first_tag) {
    std::vector<OutgoingRequest> started;
    std::vector<uint64_t> running;
    for (uint64_t t = first_tag; t < first_tag + static_cast<uint64_t>(n); ++t) {
      if (AdmitAndQueue(a, Ask(t, destination), &started).verdict == Admission::kStart) running.push_back(t);
    }
    while (!running.empty()) {
      std::vector<uint64_t> next;
      for (uint64_t t : running) {
        for (const auto& r : a.Finished(t, absl::Milliseconds(10), true, kOpenedKept)) next.push_back(r.tag);
      }
      running = next;
    }
  }
  SimulatedClock clock_;
};

// The cold-start stall: a burst to a destination without kept-alive
// connections opens at most kNewConnections at once (a burst of 30 at once
// overflowed a receiver's listen queue; the dropped SYNs came back after
// the kernel's 1 s retransmission timeout). Each answer proves a connection,
// which the next requests reuse, so the burst still drains in a few round
// trips; the new connections being opened never exceed kNewConnections.
TEST_F(AdmissionTest, ABurstToAColdDestinationOpensFewConnectionsAtOnce) {
  DestinationAdmission a = Make(64, 500);
  std::vector<OutgoingRequest> started;
  std::vector<uint64_t> running;
  for (uint64_t t = 1; t <= 30; ++t) {
    const Admission v = AdmitAndQueue(a, Ask(t), &started);
    if (v.verdict == Admission::kStart) running.push_back(t);
    EXPECT_NE(v.verdict, Admission::kDefer) << t;
  }
  EXPECT_EQ(running, (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(started.empty());
  EXPECT_EQ(a.Queued(kDest), 26);
  // The first answer proves a connection: one request reuses it.
  EXPECT_EQ(Tags(a.Finished(1, absl::Milliseconds(5), true, kOpenedKept)), (std::vector<uint64_t>{5}));
  running = {2, 3, 4, 5};
  int rounds = 0;
  std::size_t widest = 0;
  while (!running.empty()) {
    ++rounds;
    widest = std::max(widest, running.size());
    std::vector<uint64_t> next;
    for (uint64_t t : running) {
      for (const auto& r : a.Finished(t, absl::Milliseconds(5), true, kOpenedKept)) next.push_back(r.tag);
      // Never more running than proven connections plus those being opened.
      EXPECT_LE(a.Running(kDest), a.ProvenConnections(kDest) + DestinationAdmission::kNewConnections);
    }
    running = next;
  }
  EXPECT_LE(rounds, 6);  // a few round trips (milliseconds), not a second
  EXPECT_GE(widest, 8u);
  EXPECT_EQ(a.Queued(kDest), 0);
  EXPECT_GE(a.ProvenConnections(kDest), 8);
}

TEST_F(AdmissionTest, AWarmDestinationTakesABurstAtOnceUntilItIdlesTooLong) {
  DestinationAdmission a = Make(16, 100);
  WarmUp(a, kDest, 16, 100);
  ASSERT_EQ(a.ProvenConnections(kDest), 16);
  std::vector<OutgoingRequest> started;
  for (uint64_t t = 1; t <= 16; ++t) EXPECT_EQ(AdmitAndQueue(a, Ask(t), &started).verdict, Admission::kStart) << t;
  for (uint64_t t = 1; t <= 16; ++t) a.Finished(t, absl::Milliseconds(5), true, kOpenedKept);
  // Idle past kWarmFor: its connections are likely closed; warm up again.
  clock_.Advance(DestinationAdmission::kWarmFor + absl::Milliseconds(1));
  for (uint64_t t = 21; t <= 26; ++t) {
    const Admission v = AdmitAndQueue(a, Ask(t), &started);
    EXPECT_EQ(v.verdict, t <= 24 ? Admission::kStart : Admission::kWait) << t;
  }
}

TEST_F(AdmissionTest, AnUnansweredRequestProvesNoConnection) {
  DestinationAdmission a = Make(64, 100);
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Seconds(1), /*sent=*/true, {.opened = true, .kept = false});  // a connect error
  EXPECT_EQ(a.ProvenConnections(kDest), 0);
}

TEST_F(AdmissionTest, PerHostCapThenLineThenBacklogged) {
  DestinationAdmission a = Make(/*max_per_host=*/2, /*max_queued=*/3);
  std::vector<OutgoingRequest> started;
  std::vector<Admission::Verdict> verdicts;
  Admission last;
  for (uint64_t t = 1; t <= 6; ++t) {
    last = AdmitAndQueue(a, Ask(t), &started);
    verdicts.push_back(last.verdict);
  }
  EXPECT_EQ(verdicts, (std::vector<Admission::Verdict>{Admission::kStart, Admission::kStart, Admission::kWait,
                                                        Admission::kWait, Admission::kWait, Admission::kDefer}));
  EXPECT_TRUE(last.backlogged);
  // Pace unknown: the shortest backlog deferral.
  EXPECT_EQ(last.defer, DestinationAdmission::kMinBacklogDefer);
  // Another destination is not held up by this one.
  int deferred = 0;
  EXPECT_EQ(a.Admit(Ask(7, kOther), deferred).verdict, Admission::kStart);
  // Line order is kept.
  EXPECT_EQ(Tags(a.Finished(1, absl::Milliseconds(10), true, kOpenedKept)), (std::vector<uint64_t>{3}));
  EXPECT_EQ(Tags(a.Finished(2, absl::Milliseconds(10), true, kOpenedKept)), (std::vector<uint64_t>{4}));
}

// Backlog release: a slow destination's surplus comes back spread out at
// the pace it drains (running + waiting + earlier refusals, per running
// slot), not all after the same second.
TEST_F(AdmissionTest, BacklogDeferralFollowsTheDestinationsPace) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/1);
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Seconds(2), true, kOpenedKept);  // pace: 2 s per request
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kStart);
  ASSERT_EQ(a.Admit(Ask(3), deferred).verdict, Admission::kWait);
  const Admission first = a.Admit(Ask(4), deferred);
  const Admission second = a.Admit(Ask(5), deferred);
  ASSERT_EQ(first.verdict, Admission::kDefer);
  EXPECT_EQ(first.defer, absl::Seconds(6));   // 2 ahead + itself, 2 s each
  EXPECT_EQ(second.defer, absl::Seconds(8));  // one more ahead
  // A refusal keeps its slot until its time has come, even once the line
  // is empty: a later one is not sent back to the same moment.
  a.Withdraw(3);
  a.Finished(2, absl::Seconds(2), true, kOpenedKept);
  ASSERT_EQ(a.Admit(Ask(6), deferred).verdict, Admission::kStart);
  ASSERT_EQ(a.Admit(Ask(7), deferred).verdict, Admission::kWait);
  EXPECT_EQ(a.Admit(Ask(8), deferred).defer, absl::Seconds(10));
  // Once that time has passed, the deferral counts from what is there.
  clock_.Advance(absl::Seconds(10));
  EXPECT_EQ(a.Admit(Ask(9), deferred).defer, absl::Seconds(6));
}

// A destination's line holds only what its slots will take within 3/4 of
// max_queue_wait at its pace; the next one is released before it is
// rendered, due again in the slot after those (at least kMinBacklogDefer),
// instead of holding its lease in a line it would leave unsent.
TEST_F(AdmissionTest, ALineHoldsOnlyWhatStartsWithinTheQueueWait) {
  DestinationAdmission a = Make(/*max_per_host=*/2, /*max_queued=*/100, /*max_wait=*/absl::Seconds(2));
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Seconds(1), true, kOpenedKept);  // pace 1 s: one slot frees every 0.5 s
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kStart);
  ASSERT_EQ(a.Admit(Ask(3), deferred).verdict, Admission::kStart);
  EXPECT_EQ(a.Admit(Ask(4), deferred).verdict, Admission::kWait);  // starts in about 0.5 s
  EXPECT_EQ(a.Admit(Ask(5), deferred).verdict, Admission::kWait);  // about 1 s
  EXPECT_EQ(a.Admit(Ask(6), deferred).verdict, Admission::kWait);  // about 1.5 s: 3/4 of the wait
  const Admission refused = a.Admit(Ask(7), deferred);
  ASSERT_EQ(refused.verdict, Admission::kDefer);
  EXPECT_TRUE(refused.backlogged);
  EXPECT_EQ(refused.defer, absl::Seconds(3));  // 5 ahead, 0.5 s each, then its own slot
  EXPECT_EQ(a.Admit(Ask(8), deferred).defer, absl::Milliseconds(3500));
  EXPECT_EQ(a.Queued(kDest), 3);
}

TEST_F(AdmissionTest, ARateLimitSpacesRequestsAndSpreadsABatchsSurplus) {
  DestinationAdmission a = Make(64, 100);
  AdmissionAsk ask = Ask(1, kDest, "w");
  ask.rate_limit_per_second = 2;  // one per 500 ms
  int deferred = 0;
  EXPECT_EQ(a.Admit(ask, deferred).verdict, Admission::kStart);
  ask.tag = 2;
  const Admission second = a.Admit(ask, deferred);
  ask.tag = 3;
  const Admission third = a.Admit(ask, deferred);
  EXPECT_EQ(second.verdict, Admission::kDefer);
  EXPECT_FALSE(second.backlogged);
  EXPECT_EQ(second.defer, absl::Milliseconds(500));
  EXPECT_EQ(third.defer, absl::Milliseconds(1000));
  clock_.Advance(absl::Milliseconds(499));
  int fresh = 0;
  ask.tag = 4;
  EXPECT_EQ(a.Admit(ask, fresh).defer, DestinationAdmission::kMinLimitDefer);  // 1 ms left: at least 10 ms
  clock_.Advance(absl::Milliseconds(1));
  ask.tag = 5;
  EXPECT_EQ(a.Admit(ask, fresh).verdict, Admission::kStart);
}

// Requests of a rate-limited webhook that waited in line start at its rate,
// not together when slots free; the held one starts on a later tick.
TEST_F(AdmissionTest, ARateLimitHoldsAtStartToo) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/10);
  std::vector<OutgoingRequest> started;
  ASSERT_EQ(AdmitAndQueue(a, Ask(1), &started).verdict, Admission::kStart);
  AdmissionAsk limited = Ask(2, kDest, "w");
  limited.rate_limit_per_second = 10;  // one per 100 ms
  ASSERT_EQ(AdmitAndQueue(a, limited, &started).verdict, Admission::kWait);
  clock_.Advance(absl::Milliseconds(100));
  limited.tag = 3;
  ASSERT_EQ(AdmitAndQueue(a, limited, &started).verdict, Admission::kWait);
  EXPECT_EQ(Tags(a.Finished(1, absl::Milliseconds(5), true, kOpenedKept)), (std::vector<uint64_t>{2}));
  EXPECT_TRUE(a.Finished(2, absl::Milliseconds(5), true, kOpenedKept).empty());  // 0 ms after the 2nd
  EXPECT_TRUE(a.PromoteAll().empty());
  clock_.Advance(absl::Milliseconds(100));
  EXPECT_EQ(Tags(a.PromoteAll()), (std::vector<uint64_t>{3}));
}

TEST_F(AdmissionTest, MaxConcurrencyDefersUntilASlotFrees) {
  DestinationAdmission a = Make(64, 100);
  AdmissionAsk ask = Ask(1, kDest, "w");
  ask.max_concurrency = 1;
  int deferred = 0;
  EXPECT_EQ(a.Admit(ask, deferred).verdict, Admission::kStart);
  ask.tag = 2;
  const Admission over = a.Admit(ask, deferred);
  EXPECT_EQ(over.verdict, Admission::kDefer);
  EXPECT_EQ(over.defer, absl::Milliseconds(100));  // one typical attempt
  a.Finished(1, absl::Milliseconds(100), true, kOpenedKept);
  ask.tag = 3;
  int fresh = 0;
  EXPECT_EQ(a.Admit(ask, fresh).verdict, Admission::kStart);
}

// A delivery refused because its destination is backlogged takes none of
// its webhook's rate: the next one of that webhook may still go.
TEST_F(AdmissionTest, ABackloggedDeliveryUsesNoneOfItsWebhooksRate) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/0);
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  AdmissionAsk limited = Ask(2, kDest, "w");
  limited.rate_limit_per_second = 1;
  const Admission refused = a.Admit(limited, deferred);
  ASSERT_TRUE(refused.backlogged);
  a.Finished(1, absl::Milliseconds(10), true, kOpenedKept);
  limited.tag = 3;
  EXPECT_EQ(a.Admit(limited, deferred).verdict, Admission::kStart);
}

// Proven connections follow what the transport reports: a connection
// opened and kept proves one; reused and kept, or opened and closed, changes
// nothing; reused and closed takes one away.
TEST_F(AdmissionTest, ProvenConnectionsFollowWhatTheTransportReports) {
  DestinationAdmission a = Make(64, 100);
  int deferred = 0;
  const auto run = [&](uint64_t tag, ConnectionUse use) {
    ASSERT_EQ(a.Admit(Ask(tag), deferred).verdict, Admission::kStart);
    a.Finished(tag, absl::Milliseconds(5), true, use);
  };
  run(1, kOpenedKept);
  EXPECT_EQ(a.ProvenConnections(kDest), 1);
  run(2, {.opened = false, .kept = true});  // reused the proven one
  EXPECT_EQ(a.ProvenConnections(kDest), 1);
  run(3, {.opened = false, .kept = false});  // the proven one closed after this answer
  EXPECT_EQ(a.ProvenConnections(kDest), 0);
  run(4, {.opened = true, .kept = false});  // Connection: close, HTTP/1.0
  EXPECT_EQ(a.ProvenConnections(kDest), 0);
  run(5, {.opened = false, .kept = false});  // never below zero
  EXPECT_EQ(a.ProvenConnections(kDest), 0);
}

// After kWarmFor idle the count starts again from zero, but the transport
// may still hold a kept-alive connection (the server's keep-alive is
// longer): a request that reused it proves it again. Before, only a newly
// opened connection proved one, so after an idle spell (a database outage)
// the count stayed at zero while libcurl reused its connections, and the
// destination was held to kNewConnections running requests for good.
TEST_F(AdmissionTest, AConnectionTheTransportStillHadIsProvenAgainAfterIdling) {
  DestinationAdmission a = Make(64, 100);
  WarmUp(a, kDest, 8, 100);
  ASSERT_EQ(a.ProvenConnections(kDest), 8);
  clock_.Advance(DestinationAdmission::kWarmFor + absl::Seconds(1));
  std::vector<OutgoingRequest> started;
  std::vector<uint64_t> running;
  for (uint64_t t = 1; t <= 8; ++t) {
    if (AdmitAndQueue(a, Ask(t), &started).verdict == Admission::kStart) running.push_back(t);
  }
  EXPECT_EQ(running.size(), static_cast<std::size_t>(DestinationAdmission::kNewConnections));
  std::size_t promoted = 0;
  for (uint64_t t : running) {
    promoted += a.Finished(t, absl::Milliseconds(10), true, {.opened = false, .kept = true}).size();
  }
  EXPECT_EQ(a.ProvenConnections(kDest), DestinationAdmission::kNewConnections);
  EXPECT_EQ(promoted, 4u);  // the other four started as those ended
}

// A request that waited in line longer than max_queue_wait (half the lease
// margin) is released before its lease could run out while it waits.
TEST_F(AdmissionTest, RequestsWaitingTooLongAreReleasedBeforeTheirLeaseRunsOut) {
  DestinationAdmission a = Make(/*max_per_host=*/2, /*max_queued=*/10, absl::Seconds(7));
  std::vector<OutgoingRequest> started;
  AdmitAndQueue(a, Ask(1), &started);
  AdmitAndQueue(a, Ask(2), &started);
  ASSERT_EQ(AdmitAndQueue(a, Ask(3), &started).verdict, Admission::kWait);
  clock_.Advance(absl::Seconds(3));
  ASSERT_EQ(AdmitAndQueue(a, Ask(4), &started).verdict, Admission::kWait);
  clock_.Advance(absl::Seconds(4));
  EXPECT_TRUE(a.ExpireWaiting().empty());  // exactly 7 s: not yet
  clock_.Advance(absl::Microseconds(1));
  const std::vector<ExpiredRequest> expired = a.ExpireWaiting();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].tag, 3u);
  EXPECT_GE(expired[0].defer, DestinationAdmission::kMinBacklogDefer);
  EXPECT_EQ(a.Queued(kDest), 1);
  clock_.Advance(absl::Seconds(3));
  ASSERT_EQ(a.ExpireWaiting().size(), 1u);
  EXPECT_EQ(a.Running(kDest), 2);  // the running ones are the transport's to finish
}

// An admitted request not yet rendered (the claim thread renders it outside
// the pipeline's lock) is not expired however long it took: its renderer
// Enqueues or Withdraws it, and only that ends it, so it gets one result.
TEST_F(AdmissionTest, AnUnrenderedRequestIsNeverExpired) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/10, absl::Seconds(7));
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kWait);
  clock_.Advance(absl::Seconds(8));
  EXPECT_TRUE(a.ExpireWaiting().empty());
  EXPECT_EQ(a.Queued(kDest), 1);
  EXPECT_TRUE(a.Withdraw(2).empty());  // its rendering failed: it gives its place up
  EXPECT_EQ(a.Queued(kDest), 0);
  EXPECT_TRUE(a.Finished(1, absl::Milliseconds(1), true, kOpenedKept).empty());
  EXPECT_EQ(a.Running(kDest), 0);
}

TEST_F(AdmissionTest, DropWaitingReturnsTheLinesAndKeepsTheRunning) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/10);
  std::vector<OutgoingRequest> started;
  for (uint64_t t = 1; t <= 4; ++t) AdmitAndQueue(a, Ask(t), &started);
  EXPECT_EQ(a.DropWaiting(), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(a.Running(kDest), 1);
  EXPECT_TRUE(a.Finished(1, absl::Milliseconds(1), true, kOpenedKept).empty());
  EXPECT_EQ(a.Running(kDest), 0);
}

// A request waiting in line starts only once rendered: a freed slot goes to
// the next rendered one when its turn comes.
TEST_F(AdmissionTest, AnUnrenderedRequestIsNotStartedBeforeItsBodyIsThere) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/10);
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kWait);
  EXPECT_TRUE(a.Finished(1, absl::Milliseconds(1), true, kOpenedKept).empty());
  EXPECT_EQ(Tags(a.Enqueue(Request(2))), (std::vector<uint64_t>{2}));
  // A withdrawn one (its rendering failed) gives its place up.
  ASSERT_EQ(a.Admit(Ask(3), deferred).verdict, Admission::kWait);
  ASSERT_EQ(a.Admit(Ask(4), deferred).verdict, Admission::kWait);
  EXPECT_TRUE(a.Enqueue(Request(4)).empty());
  EXPECT_TRUE(a.Withdraw(3).empty());
  EXPECT_EQ(Tags(a.Finished(2, absl::Milliseconds(1), true, kOpenedKept)), (std::vector<uint64_t>{4}));
}

}  // namespace
}  // namespace octo::delivery
