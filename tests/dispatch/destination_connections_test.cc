// DestinationAdmission's connection warm-up on a simulated clock: a burst
// to a cold destination opens few connections at once, proven connections
// follow what the transport reports, and are forgotten after idling. No
// sockets, no sleeps.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "services/delivery/destination_admission.h"
#include "tests/dispatch/admission_test_support.h"

namespace octo::delivery {
namespace {

using namespace admission_test;  // NOLINT: the shared fixture and helpers

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

}  // namespace
}  // namespace octo::delivery
