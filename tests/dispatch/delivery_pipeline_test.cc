// DeliveryPipeline with a fake transport, the in-memory store and a
// simulated clock: the walk admit -> render -> sign -> send -> record for
// claimed batches, retry schedules and Retry-After, per-endpoint limits,
// backlog release, lease tokens, shutdown. No sockets, no database, no sleeps.
#include "services/delivery/delivery_pipeline.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/delivery/dispatch_render.h"
#include "tests/fakes/claims.h"
#include "tests/fakes/fake_dispatch_store.h"
#include "tests/fakes/fake_transport.h"
#include "tests/fakes/simulated_clock.h"

namespace octo::delivery {
namespace {

using octo::testing::Answered;
using octo::testing::Claims;
using octo::testing::FakeDispatchStore;
using octo::testing::FakeTransport;
using octo::testing::SimulatedClock;
using octo::testing::TestDelivery;

constexpr char kUrl[] = "http://hooks.example/a";

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() { Reset({}); }

  void Reset(PipelineOptions options) {
    pipeline_.reset();
    options.retry_policy.schedule = schedule_;
    pipeline_ = std::make_unique<DeliveryPipeline>(options, clock_, transport_, recorder_);
    transport_.Start([this](std::vector<TransferResult> done) { pipeline_->OnTransfers(std::move(done)); });
  }

  // Writes what the pipeline handed to the recorder; returns it.
  std::vector<DeliveryResult> Record() {
    recorder_.WriteOnce(store_, backlog_);
    std::vector<DeliveryResult> all = store_.written();
    std::vector<DeliveryResult> fresh(all.begin() + static_cast<long>(seen_), all.end());
    seen_ = all.size();
    return fresh;
  }

  uint64_t TagOf(const std::string& delivery_id) {
    for (const OutgoingRequest& r : transport_.submitted()) {
      for (const std::string& h : r.headers) {
        if (h == "webhook-id: " + WebhookMessageId(delivery_id)) return r.tag;
      }
    }
    return 0;
  }

  std::vector<absl::Duration> schedule_ = {absl::Seconds(5), absl::Minutes(5)};
  SimulatedClock clock_;
  FakeTransport transport_;
  FakeDispatchStore store_;
  ResultRecorder recorder_{{}, [](std::size_t, const std::vector<DeliveryResult>&) {}};
  std::vector<ResultRecorder::Pending> backlog_;
  std::size_t seen_ = 0;
  std::unique_ptr<DeliveryPipeline> pipeline_;
};

TEST_F(PipelineTest, ASuccessIsRecordedAsOneAttemptUnderItsLease) {
  ClaimedDelivery d = TestDelivery(1, kUrl);
  pipeline_->Dispatch(Claims({d}));
  ASSERT_EQ(transport_.submitted().size(), 1u);
  const OutgoingRequest sent = transport_.submitted()[0];
  EXPECT_EQ(sent.url, kUrl);
  EXPECT_THAT(sent.headers, ::testing::Contains("webhook-id: " + WebhookMessageId(d.id)));
  ASSERT_TRUE(transport_.Complete(sent.tag, Answered(204)));
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].delivery_id, d.id);
  EXPECT_EQ(r[0].lease_us, d.lease_us);  // the claim's token: a re-claimed delivery keeps its state
  EXPECT_EQ(r[0].action, DeliveryResult::Action::kAttempt);
  EXPECT_EQ(r[0].attempt.http_status, 204);
  EXPECT_EQ(r[0].decision.kind, DecisionKind::kSucceeded);
  EXPECT_EQ(r[0].snippet, "ok");
  EXPECT_EQ(r[0].event, "booking_update");
  EXPECT_EQ(pipeline_->Outstanding(), 0u);
}

// A suspect (its last two claims ended without a result: it may be the
// delivery that crashes the process) counts as in flight from its dispatch
// until its outcome is known, so that the claimer takes no other suspect
// meanwhile; a delivery without suspicion does not count.
TEST_F(PipelineTest, ASuspectIsInFlightUntilItsOutcome) {
  ClaimedDelivery plain = TestDelivery(1, kUrl);
  pipeline_->Dispatch(Claims({plain}));
  EXPECT_FALSE(pipeline_->SuspectInFlight());
  ClaimedDelivery suspect = TestDelivery(2, kUrl);
  suspect.suspect = true;
  pipeline_->Dispatch(Claims({suspect}));
  EXPECT_TRUE(pipeline_->SuspectInFlight());
  ASSERT_TRUE(transport_.Complete(TagOf(plain.id), Answered(204)));
  EXPECT_TRUE(pipeline_->SuspectInFlight());
  ASSERT_TRUE(transport_.Complete(TagOf(suspect.id), Answered(204)));
  EXPECT_FALSE(pipeline_->SuspectInFlight());
  EXPECT_EQ(Record().size(), 2u);
}

// The retry schedule with its +-20 % jitter, then failed when it runs out.
TEST_F(PipelineTest, ServerErrorsFollowTheRetryScheduleThenFail) {
  ClaimedDelivery first = TestDelivery(1, kUrl);
  ClaimedDelivery second = TestDelivery(2, kUrl);
  second.attempt_count = 1;
  ClaimedDelivery last = TestDelivery(3, kUrl);
  last.attempt_count = 2;  // the schedule has 2 delays: 3 attempts
  transport_.SetResponder([](const OutgoingRequest&) { return Answered(500); });
  pipeline_->Dispatch(Claims({first, second, last}));
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].decision.kind, DecisionKind::kRetry);
  EXPECT_GE(r[0].decision.retry_delay, absl::Seconds(4));
  EXPECT_LE(r[0].decision.retry_delay, absl::Seconds(6));
  EXPECT_EQ(r[1].decision.kind, DecisionKind::kRetry);
  EXPECT_GE(r[1].decision.retry_delay, absl::Minutes(4));
  EXPECT_LE(r[1].decision.retry_delay, absl::Minutes(6));
  EXPECT_EQ(r[2].decision.kind, DecisionKind::kFailed);
}

TEST_F(PipelineTest, NoRetryWhenRetryOnErrorIsOff) {
  ClaimedDelivery d = TestDelivery(1, kUrl);
  d.retry_on_error = false;
  transport_.SetResponder([](const OutgoingRequest&) { return Answered(503); });
  pipeline_->Dispatch(Claims({d}));
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].decision.kind, DecisionKind::kFailed);
}

TEST_F(PipelineTest, RetryAfterReplacesTheScheduleWithinItsBounds) {
  PipelineOptions o;
  o.retry_policy.min_retry_after = absl::Seconds(1);
  o.retry_policy.max_retry_after = absl::Minutes(10);
  Reset(o);
  transport_.SetResponder([](const OutgoingRequest& r) -> std::optional<TransferResult> {
    if (r.tag == 1) return Answered(429, "120");
    if (r.tag == 2) return Answered(503, "86400");      // clamped to 10 min
    return Answered(429, "Wed, 21 Oct 2015 07:28:00 GMT");  // in the past: the minimum
  });
  pipeline_->Dispatch(Claims({TestDelivery(1, kUrl), TestDelivery(2, kUrl), TestDelivery(3, kUrl)}));
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].decision.retry_delay, absl::Seconds(120));
  EXPECT_EQ(r[1].decision.retry_delay, absl::Minutes(10));
  EXPECT_EQ(r[2].decision.retry_delay, absl::Seconds(1));
}

TEST_F(PipelineTest, ADisabledWebhooksDeliveryIsCancelledUnsent) {
  ClaimedDelivery d = TestDelivery(1, kUrl);
  d.webhook_enabled = false;
  pipeline_->Dispatch(Claims({d}));
  EXPECT_TRUE(transport_.submitted().empty());
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].action, DeliveryResult::Action::kCancel);
}

TEST_F(PipelineTest, AnUnrenderableDeliveryIsAnInternalErrorAttempt) {
  ClaimedDelivery d = TestDelivery(1, kUrl);
  d.secret = "not-a-secret";
  pipeline_->Dispatch(Claims({d}));
  EXPECT_TRUE(transport_.submitted().empty());
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].action, DeliveryResult::Action::kAttempt);
  EXPECT_EQ(r[0].attempt.error_class, ErrorClass::kInternal);
  EXPECT_EQ(r[0].decision.kind, DecisionKind::kRetry);  // its event is there: a later attempt may render
}

// The claim returns a delivery whose event row is gone (deleted by hand from
// its week) without the event: it fails for good at once, an internal-error
// attempt, instead of being retried through the whole schedule.
TEST_F(PipelineTest, ADeliveryWhoseEventIsGoneFailsAtOnce) {
  ClaimBatch batch = Claims({TestDelivery(1, kUrl)});
  batch.events.clear();
  pipeline_->Dispatch(batch);
  EXPECT_TRUE(transport_.submitted().empty());
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].action, DeliveryResult::Action::kAttempt);
  EXPECT_EQ(r[0].attempt.error_class, ErrorClass::kInternal);
  EXPECT_EQ(r[0].decision.kind, DecisionKind::kFailed);
}

// rate_limit_per_second and max_concurrency: the surplus is released
// without an attempt, due again at the pace the limits allow.
TEST_F(PipelineTest, PerEndpointLimitsReleaseTheSurplusWithoutAnAttempt) {
  std::vector<ClaimedDelivery> batch;
  for (int i = 1; i <= 3; ++i) {
    ClaimedDelivery d = TestDelivery(i, kUrl, "11111111-2222-4333-8444-000000000099");
    d.rate_limit_per_second = 10;
    batch.push_back(d);
  }
  pipeline_->Dispatch(Claims(batch));
  ASSERT_EQ(transport_.submitted().size(), 1u);
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].action, DeliveryResult::Action::kRelease);
  EXPECT_EQ(r[0].decision.retry_delay, absl::Milliseconds(100));
  EXPECT_EQ(r[1].decision.retry_delay, absl::Milliseconds(200));
}

// One destination at its cap with a full line: the rest of the batch is
// released (no attempt), deferred, and never rendered.
TEST_F(PipelineTest, ABackloggedDestinationReleasesItsSurplus) {
  PipelineOptions o;
  o.admission = {.max_per_host = 1, .max_queued_per_host = 2};
  Reset(o);
  std::vector<ClaimedDelivery> batch;
  for (int i = 1; i <= 5; ++i) batch.push_back(TestDelivery(i, kUrl));
  batch.push_back(TestDelivery(6, "http://other.example/b"));
  const DispatchSummary summary = pipeline_->Dispatch(Claims(batch));
  EXPECT_EQ(summary.claimed, 6);
  EXPECT_EQ(summary.backlogged, 2);  // what slows the next claims down
  EXPECT_EQ(pipeline_->releases().backlog, 2);
  ASSERT_EQ(transport_.submitted().size(), 2u);  // one per destination
  const std::vector<DeliveryResult> released = Record();
  ASSERT_EQ(released.size(), 2u);
  for (const DeliveryResult& r : released) {
    EXPECT_EQ(r.action, DeliveryResult::Action::kRelease);
    EXPECT_GE(r.decision.retry_delay, absl::Seconds(1));
  }
  // The line moves on as answers come.
  ASSERT_TRUE(transport_.Complete(TagOf(batch[0].id), Answered(200)));
  ASSERT_EQ(transport_.submitted().size(), 3u);
  EXPECT_EQ(transport_.submitted()[2].tag, TagOf(batch[1].id));
}

// Shutdown: claimed deliveries that never started are released at once
// (lease cleared, no attempt) for the next claimer; running ones finish.
TEST_F(PipelineTest, StopSendingReleasesUnstartedClaims) {
  PipelineOptions o;
  o.admission = {.max_per_host = 1, .max_queued_per_host = 10};
  Reset(o);
  std::vector<ClaimedDelivery> batch;
  for (int i = 1; i <= 5; ++i) batch.push_back(TestDelivery(i, kUrl));
  pipeline_->Dispatch(Claims(batch));
  ASSERT_EQ(transport_.running().size(), 1u);
  pipeline_->StopSending();
  std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 4u);
  for (const DeliveryResult& x : r) {
    EXPECT_EQ(x.action, DeliveryResult::Action::kRelease);
    EXPECT_EQ(x.decision.retry_delay, absl::ZeroDuration());
  }
  ASSERT_TRUE(transport_.Complete(transport_.running()[0], Answered(200)));
  EXPECT_EQ(transport_.submitted().size(), 1u);  // nothing more started
  r = Record();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].action, DeliveryResult::Action::kAttempt);
  EXPECT_EQ(pipeline_->Outstanding(), 0u);
}

// After StopSending nothing starts: a request that would start is released,
// and so is each one its freed slot promotes from the line, until none is
// left (none keeps its claim slot without a result).
TEST_F(PipelineTest, AfterStopSendingWhatAFreedSlotPromotesIsReleasedToo) {
  PipelineOptions o;
  o.admission = {.max_per_host = 1, .max_queued_per_host = 10};
  Reset(o);
  pipeline_->StopSending();
  pipeline_->Dispatch(Claims({TestDelivery(1, kUrl), TestDelivery(2, kUrl), TestDelivery(3, kUrl)}));
  EXPECT_TRUE(transport_.submitted().empty());
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 3u);
  for (const DeliveryResult& x : r) EXPECT_EQ(x.action, DeliveryResult::Action::kRelease);
  EXPECT_EQ(pipeline_->Outstanding(), 0u);
}

// A request waiting for its destination longer than max_queue_wait is
// released before the lease it holds could expire while it waits.
TEST_F(PipelineTest, ARequestWaitingPastItsQueueWaitIsReleased) {
  PipelineOptions o;
  o.admission = {.max_per_host = 1, .max_queued_per_host = 10, .max_queue_wait = absl::Seconds(7)};
  Reset(o);
  pipeline_->Dispatch(Claims({TestDelivery(1, kUrl), TestDelivery(2, kUrl)}));
  clock_.Advance(absl::Seconds(7) + absl::Milliseconds(1));
  pipeline_->ExpireWaiting();
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].delivery_id, TestDelivery(2, kUrl).id);
  EXPECT_EQ(r[0].action, DeliveryResult::Action::kRelease);
  EXPECT_EQ(transport_.submitted().size(), 1u);
}

// A suspect is sent at once, past its destination's line (here full: one
// running, one waiting): were it left to wait there, its claim could be
// released unsent, and whether it crashes the process would stay open (a
// restarted process's first claims fill the line while the suspect's old
// lease runs out). The delivery that waited is not held back by it.
TEST_F(PipelineTest, ASuspectIsSentAtOncePastItsDestinationsLine) {
  PipelineOptions o;
  o.admission = {.max_per_host = 1, .max_queued_per_host = 1, .max_queue_wait = absl::Seconds(7)};
  Reset(o);
  const ClaimedDelivery running = TestDelivery(1, kUrl);
  const ClaimedDelivery waiting = TestDelivery(2, kUrl);
  pipeline_->Dispatch(Claims({running, waiting}));
  ASSERT_EQ(transport_.submitted().size(), 1u);
  ClaimedDelivery suspect = TestDelivery(3, kUrl);
  suspect.suspect = true;
  pipeline_->Dispatch(Claims({suspect}));
  ASSERT_EQ(transport_.submitted().size(), 2u);
  EXPECT_NE(TagOf(suspect.id), 0u);
  EXPECT_TRUE(Record().empty());  // nothing released
  ASSERT_TRUE(transport_.Complete(TagOf(suspect.id), Answered(204)));
  EXPECT_FALSE(pipeline_->SuspectInFlight());
  ASSERT_TRUE(transport_.Complete(TagOf(running.id), Answered(204)));
  EXPECT_NE(TagOf(waiting.id), 0u);  // its line moved on as before
  const std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 2u);
  for (const DeliveryResult& x : r) EXPECT_EQ(x.action, DeliveryResult::Action::kAttempt) << x.delivery_id;
}

// A slot freed after the next request in line waited past max_queue_wait
// does not start it (it could outlive its lease): it is released, and the
// running one's result is recorded.
TEST_F(PipelineTest, AFreedSlotDoesNotStartARequestThatWaitedTooLong) {
  PipelineOptions o;
  o.admission = {.max_per_host = 1, .max_queued_per_host = 10, .max_queue_wait = absl::Seconds(7)};
  Reset(o);
  const ClaimedDelivery first = TestDelivery(1, kUrl);
  const ClaimedDelivery second = TestDelivery(2, kUrl);
  pipeline_->Dispatch(Claims({first, second}));
  ASSERT_EQ(transport_.submitted().size(), 1u);
  clock_.Advance(absl::Seconds(7) + absl::Milliseconds(1));
  ASSERT_TRUE(transport_.Complete(TagOf(first.id), Answered(200)));
  EXPECT_EQ(transport_.submitted().size(), 1u);  // the second was not started
  std::vector<DeliveryResult> r = Record();
  ASSERT_EQ(r.size(), 2u);
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.delivery_id < b.delivery_id; });
  EXPECT_EQ(r[0].action, DeliveryResult::Action::kAttempt);
  EXPECT_EQ(r[1].delivery_id, second.id);
  EXPECT_EQ(r[1].action, DeliveryResult::Action::kRelease);
  EXPECT_EQ(pipeline_->Outstanding(), 0u);
}

// The same when the expiry scan ran less than 100 ms before: the slot's
// promotion checks the age itself.
TEST_F(PipelineTest, AFreedSlotChecksTheAgeEvenRightAfterAnExpiryScan) {
  PipelineOptions o;
  o.admission = {.max_per_host = 1, .max_queued_per_host = 10, .max_queue_wait = absl::Seconds(7)};
  Reset(o);
  const ClaimedDelivery first = TestDelivery(1, kUrl);
  pipeline_->Dispatch(Claims({first, TestDelivery(2, kUrl)}));
  clock_.Advance(absl::Seconds(7));
  pipeline_->ExpireWaiting();  // exactly 7 s: not yet
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(transport_.Complete(TagOf(first.id), Answered(200)));
  EXPECT_EQ(transport_.submitted().size(), 1u);
  EXPECT_EQ(Record().size(), 2u);
  EXPECT_EQ(pipeline_->Outstanding(), 0u);
}

// A rotated secret in its grace period signs too (two signatures).
TEST_F(PipelineTest, ARotatedSecretStillSignsDuringItsGracePeriod) {
  ClaimedDelivery d = TestDelivery(1, kUrl);
  d.previous_secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
  pipeline_->Dispatch(Claims({d}));
  ASSERT_EQ(transport_.submitted().size(), 1u);
  std::string signature;
  const OutgoingRequest sent = transport_.submitted()[0];
  for (const std::string& h : sent.headers) {
    if (h.rfind("webhook-signature: ", 0) == 0) signature = h;
  }
  EXPECT_EQ(std::count(signature.begin(), signature.end(), ','), 2) << signature;  // "v1,... v1,..."
}

}  // namespace
}  // namespace octo::delivery
