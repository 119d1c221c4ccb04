// DestinationAdmission on a simulated clock: per-destination caps, line and
// backlog, pace, per-webhook rate and concurrency, expiry of requests
// waiting too long, shutdown. No sockets, no sleeps. (Connection warm-up:
// destination_connections_test.cc.)
#include "services/delivery/destination_admission.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/dispatch/admission_test_support.h"

namespace octo::delivery {
namespace {

using namespace admission_test;  // NOLINT: the shared fixture and helpers

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
  // Once that time has passed, the deferral counts from what is there, at
  // the pace the running request shows: it has run 10 s (2 ahead + itself).
  clock_.Advance(absl::Seconds(10));
  EXPECT_EQ(a.Admit(Ask(9), deferred).defer, absl::Seconds(30));
}

// However long a run of refusals, the next slot is at most kMaxBacklogDefer
// ahead (the stored one too, not only the deferral returned); a destination
// that caught up (empty line, nothing refused for kBacklogForgottenAfter)
// spreads its next backlog from now.
TEST_F(AdmissionTest, BacklogSlotsStayWithinTheLongestDeferral) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/0);
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Seconds(60), true, kOpenedKept);  // pace: a minute per request
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kStart);
  for (uint64_t t = 3; t < 100; ++t) {
    EXPECT_LE(a.Admit(Ask(t), deferred).defer, DestinationAdmission::kMaxBacklogDefer);
  }
  // 97 slots of a minute, stored no further than ten minutes ahead.
  EXPECT_EQ(a.BacklogUntil(kDest), clock_.Now() + DestinationAdmission::kMaxBacklogDefer);
}

// A destination that answers parks its backlog no further than its pace
// times kBacklogHorizonPaces, at least kMinBacklogHorizon ahead: released
// deliveries cannot be claimed before their slot, so a destination that
// became faster (or a new process) would otherwise wait for slots spaced at
// the old pace (restart_backlog_test.cc).
TEST_F(AdmissionTest, AnAnsweringDestinationsBacklogIsParkedAtMostAMinuteAhead) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/0);
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Milliseconds(300), true, kOpenedKept);  // pace 300 ms
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kStart);
  absl::Duration last;
  for (uint64_t t = 3; t < 1000; ++t) last = a.Admit(Ask(t), deferred).defer;  // 997 slots of 300 ms
  EXPECT_EQ(last, DestinationAdmission::kMinBacklogHorizon);
  EXPECT_EQ(a.BacklogUntil(kDest), clock_.Now() + DestinationAdmission::kMinBacklogHorizon);
  // One that hangs keeps the long horizon: its running request has taken
  // 5 s so far, and 200 paces of 5 s are beyond kMaxBacklogDefer.
  a.Finished(2, absl::Milliseconds(300), true, kOpenedKept);
  ASSERT_EQ(a.Admit(Ask(1000), deferred).verdict, Admission::kStart);
  clock_.Advance(absl::Seconds(5));
  for (uint64_t t = 1001; t < 2000; ++t) last = a.Admit(Ask(t), deferred).defer;
  EXPECT_EQ(last, DestinationAdmission::kMaxBacklogDefer);
}

// 200 paces of 1 s: a destination answering in 1 s parks its backlog up to
// 200 s ahead (beyond kMinBacklogHorizon, within kMaxBacklogDefer).
TEST_F(AdmissionTest, ADestinationAnsweringInASecondParksItsBacklog200SecondsAhead) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/0);
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Seconds(1), true, kOpenedKept);  // pace 1 s
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kStart);
  absl::Duration last;
  for (uint64_t t = 3; t < 1000; ++t) last = a.Admit(Ask(t), deferred).defer;  // 997 slots of 1 s
  EXPECT_EQ(last, absl::Seconds(200));
  EXPECT_EQ(a.BacklogUntil(kDest), clock_.Now() + absl::Seconds(200));
}

// The backlog horizon and slot spacing follow the youngest running
// request's age, not the oldest's: one request of 64 that has run 5 s (an
// outlier, as a 15-s request timeout allows) leaves a destination answering
// in 300 ms its short horizon; 64 requests that all have run 5 s (every slot
// held) give it the long one.
TEST_F(AdmissionTest, OneSlowRequestAmongManyKeepsTheShortHorizon) {
  constexpr int kSlots = 64;
  DestinationAdmission a = Make(kSlots, /*max_queued=*/0);
  WarmUp(a, kDest, kSlots, 100000);
  ASSERT_GE(a.ProvenConnections(kDest), kSlots - DestinationAdmission::kNewConnections);
  int deferred = 0;
  for (uint64_t t = 1; t <= 30; ++t) {  // the learned pace comes to about 300 ms
    ASSERT_EQ(a.Admit(Ask(t), deferred).verdict, Admission::kStart);
    a.Finished(t, absl::Milliseconds(300), true, kOpenedKept);
  }
  ASSERT_EQ(a.Admit(Ask(100), deferred).verdict, Admission::kStart);  // the outlier
  clock_.Advance(absl::Seconds(5));
  for (uint64_t t = 101; t < 100 + kSlots; ++t) ASSERT_EQ(a.Admit(Ask(t), deferred).verdict, Admission::kStart);
  absl::Duration last;
  for (uint64_t t = 1000; t < 3000; ++t) last = a.Admit(Ask(t), deferred).defer;
  // 2,000 refusals spaced at 300 ms / 64 come back within about 10 s (at
  // the outlier's 5 s they would reach 156 s, past the 1-min horizon).
  EXPECT_LE(last, absl::Seconds(15));
  EXPECT_LE(a.BacklogUntil(kDest), clock_.Now() + DestinationAdmission::kMinBacklogHorizon);

  // Every slot held for 5 s: the destination hangs; 10,000 refusals reach
  // the 10-min horizon (200 paces of 5 s are beyond it).
  clock_.Advance(DestinationAdmission::kMaxBacklogDefer);  // the old slots have passed
  for (uint64_t t = 100; t < 100 + kSlots; ++t) a.Finished(t, absl::Milliseconds(300), true, kOpenedKept);
  for (uint64_t t = 5000; t < 5000 + kSlots; ++t) ASSERT_EQ(a.Admit(Ask(t), deferred).verdict, Admission::kStart);
  clock_.Advance(absl::Seconds(5));
  for (uint64_t t = 10000; t < 20000; ++t) last = a.Admit(Ask(t), deferred).defer;
  EXPECT_EQ(last, DestinationAdmission::kMaxBacklogDefer);
}

TEST_F(AdmissionTest, ADestinationThatCaughtUpStartsItsNextBacklogAfresh) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/0);
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Seconds(2), true, kOpenedKept);  // pace 2 s
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kStart);
  for (uint64_t t = 3; t < 13; ++t) a.Admit(Ask(t), deferred);  // slots up to 22 s ahead
  a.Finished(2, absl::Seconds(2), true, kOpenedKept);
  clock_.Advance(DestinationAdmission::kBacklogForgottenAfter + absl::Seconds(1));
  ASSERT_EQ(a.Admit(Ask(13), deferred).verdict, Admission::kStart);  // caught up: line empty
  EXPECT_EQ(a.Admit(Ask(14), deferred).defer, absl::Seconds(4));     // not after the old slots
}

// A destination that suddenly hangs: its learned pace is fast, but the
// oldest running request has run long; the line takes only what that pace
// lets start within the queue wait, not max_queued_per_host.
TEST_F(AdmissionTest, AHangingDestinationIsSlowBeforeItsRequestsEnd) {
  DestinationAdmission a = Make(/*max_per_host=*/2, /*max_queued=*/100, /*max_wait=*/absl::Seconds(4));
  int deferred = 0;
  ASSERT_EQ(a.Admit(Ask(1), deferred).verdict, Admission::kStart);
  a.Finished(1, absl::Milliseconds(10), true, kOpenedKept);  // pace 10 ms
  ASSERT_EQ(a.Admit(Ask(2), deferred).verdict, Admission::kStart);
  ASSERT_EQ(a.Admit(Ask(3), deferred).verdict, Admission::kStart);
  clock_.Advance(absl::Seconds(8));  // both hang: 8 s per request, a slot per 4 s
  std::vector<OutgoingRequest> started;
  EXPECT_EQ(AdmitAndQueue(a, Ask(4), &started).verdict, Admission::kDefer);
  EXPECT_EQ(a.Queued(kDest), 0);
}

// A request's wait for its destination counts from its claim: a claim that
// took long leaves it less time in line.
TEST_F(AdmissionTest, TheWaitInLineCountsFromTheClaim) {
  DestinationAdmission a = Make(/*max_per_host=*/1, /*max_queued=*/10, absl::Seconds(7));
  std::vector<OutgoingRequest> started;
  AdmitAndQueue(a, Ask(1), &started);
  AdmissionAsk ask = Ask(2);
  ask.claimed_at = clock_.Now() - absl::Seconds(5);
  ASSERT_EQ(AdmitAndQueue(a, ask, &started).verdict, Admission::kWait);
  clock_.Advance(absl::Seconds(2) + absl::Microseconds(1));
  const std::vector<ExpiredRequest> expired = a.ExpireWaiting();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].tag, 2u);
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
