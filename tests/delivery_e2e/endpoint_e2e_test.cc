// Endpoint behaviour end to end: redirects to loopback are not
// followed (requirement 6), both signatures during a secret rotation's grace
// period (4), endpoint health: automatic disabling after continuous failure
// with a millisecond-scale limit (5), and per-endpoint rate and concurrency
// limits (7). The columns the API side sets (previous_secret, limits) are
// set here with SQL.
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/crypto.h"
#include "tests/delivery_e2e/delivery_fixture.h"

namespace octo::delivery_e2e {
namespace {

using testing::Reply;

constexpr const char* kBooking =
    R"({"id":"bk-o","uuid":"{uuid}","status":"CONFIRMED","contact":{"fullName":"Ada","locales":["en"]}})";

// A webhook failing continuously for longer than this is disabled.
constexpr int kDisableAfterMs = 700;
// Transfers at once per destination (host:port).
constexpr int kMaxPerHost = 4;

class EndpointE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() {
    // Six attempts about 200, 300, 300, 300, 300 ms apart: a run of failures
    // outlasts kDisableAfterMs.
    StartStack({.retry_schedule = "200ms,300ms,300ms,300ms,300ms",
                .request_timeout = "3s",
                .connect_timeout = "1s",
                .lease_margin = "1s",
                .poll_interval = "100ms",
                .min_retry_after = "1s",
                .max_retry_after = "2500ms",
                // A small per-destination share, so that one slow endpoint
                // has a backlog in the isolation test.
                .extra_args = {absl::StrCat("--disable_after_failing_for=", kDisableAfterMs, "ms"),
                               absl::StrCat("--max_per_host=", kMaxPerHost)}});
  }
  static void TearDownTestSuite() { StopStack(); }

  void PublishBooking(const std::string& key_prefix) {
    MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey(key_prefix)));
  }

  void Sql(const std::string& sql) { db().Rows(sql); }

  // Once every result is written: `n` deliveries, all succeeded, each with
  // exactly one attempt (deferrals by the limits are not attempts).
  ::testing::AssertionResult AllSucceededWithOneAttemptEach(const CreatedWebhook& hook, int n) {
    const std::string want = absl::StrCat(n, " ", n, " ", n);
    std::string got;
    if (Eventually(
            [&] {
              got = db().Scalar(absl::StrCat(
                  "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'succeeded') || ' ' || "
                  "coalesce(sum(attempt_count), 0) FROM deliveries WHERE webhook_id = ",
                  SqlQuote(hook.id)));
              return got == want;
            },
            10s, 50ms)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "deliveries / succeeded / attempts: " << got << ", want " << want;
  }

  std::string WebhookField(const CreatedWebhook& hook, const std::string& expression) {
    return db().Scalar(absl::StrCat("SELECT ", expression, " FROM webhooks WHERE id = ", SqlQuote(hook.id)));
  }
};

// ------------------------------------------------------------ redirects --

TEST_F(EndpointE2eTest, ARedirectToLoopbackIsRecordedAsItsStatusAndNotFollowed) {
  auto internal = testing::HttpReceiver::Start();
  ASSERT_TRUE(internal.ok());
  // The Location header of a 302: the receiver's answer headers.
  testing::ReceiverAnswer redirect = Reply(302);
  redirect.headers = {{"Location", (*internal)->Url("/admin/secrets")}};
  receiver_->SetPlan("/hook", {}, redirect);
  testing::ReceiverAnswer metadata = Reply(307);
  metadata.headers = {{"Location", "http://169.254.169.254/latest/meta-data/"}};
  receiver_->SetPlan("/meta", {}, metadata);
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/hook"), R"("retryOnError":false)");
  const CreatedWebhook meta = Hook("booking_update", receiver_->Url("/meta"), R"("retryOnError":false)");
  PublishBooking("redirect");
  for (const auto& [h, status] : std::vector<std::pair<CreatedWebhook, std::string>>{{hook, "302"}, {meta, "307"}}) {
    const CreatedWebhook& w = h;
    std::string state;
    ASSERT_TRUE(Eventually(
        [&] {
          state = db().Scalar(absl::StrCat("SELECT state || ' ' || coalesce(last_http_status::text, '-') || ' ' || "
                                           "coalesce(last_error_class, '-') FROM deliveries WHERE webhook_id = ",
                                           SqlQuote(w.id)));
          return state != "pending - -" && !state.empty();
        },
        15s, 50ms))
        << stack_->LogTails();
    EXPECT_EQ(state, "failed " + status + " -");
  }
  EXPECT_EQ(receiver_->Count("/hook"), 1u);
  EXPECT_EQ(receiver_->Count("/meta"), 1u);
  EXPECT_EQ((*internal)->Count(), 0u);  // never fetched
}

// ----------------------------------------------------- secret rotation --

TEST_F(EndpointE2eTest, BothSignaturesVerifyDuringTheGracePeriodOnlyTheNewOneAfter) {
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/rotated"));
  const std::string old_secret = hook.secret;
  const std::string new_secret = crypto::NewSigningSecret();
  // What the rotation RPC stores: the new secret, the old one until the
  // grace period ends.
  Sql(absl::StrCat("UPDATE webhooks SET previous_secret = secret, secret = ", SqlQuote(new_secret),
                   ", previous_secret_expires_at = now() + interval '1 hour' WHERE id = ", SqlQuote(hook.id)));
  PublishBooking("rotation-grace");
  ASSERT_TRUE(receiver_->WaitFor("/rotated", 1, 15s)) << stack_->LogTails();
  const ReceivedRequest during = receiver_->Requests("/rotated").front();
  const std::string header = during.Header("webhook-signature").value_or("");
  const std::vector<std::string> signatures = absl::StrSplit(header, ' ');
  ASSERT_EQ(signatures.size(), 2u) << header;
  EXPECT_TRUE(absl::StartsWith(signatures[0], "v1,") && absl::StartsWith(signatures[1], "v1,")) << header;
  EXPECT_NE(signatures[0], signatures[1]);
  for (const std::string& secret : {new_secret, old_secret}) {
    auto verified = VerifyWithNode(during, secret);
    ASSERT_TRUE(verified.ok()) << verified.status();
    EXPECT_EQ(verified->exit_code, 0) << verified->output;
  }
  // The new signature comes first ("v1,<new> v1,<old>").
  ReceivedRequest first_only = during;
  for (auto& [name, value] : first_only.headers) {
    if (absl::EqualsIgnoreCase(name, "webhook-signature")) value = signatures[0];
  }
  EXPECT_TRUE(SignatureVerifies(first_only, new_secret));

  // The grace period is over: only the new secret signs.
  Sql(absl::StrCat("UPDATE webhooks SET previous_secret_expires_at = now() - interval '1 second' WHERE id = ",
                   SqlQuote(hook.id)));
  PublishBooking("rotation-after");
  ASSERT_TRUE(receiver_->WaitFor("/rotated", 2, 15s)) << stack_->LogTails();
  const ReceivedRequest after = receiver_->Requests("/rotated")[1];
  const std::string after_header = after.Header("webhook-signature").value_or("");
  EXPECT_EQ(std::count(after_header.begin(), after_header.end(), ','), 1) << after_header;
  auto with_new = VerifyWithNode(after, new_secret);
  ASSERT_TRUE(with_new.ok()) << with_new.status();
  EXPECT_EQ(with_new->exit_code, 0) << with_new->output;
  auto with_old = VerifyWithNode(after, old_secret);
  ASSERT_TRUE(with_old.ok()) << with_old.status();
  EXPECT_EQ(with_old->exit_code, 1) << with_old->output;
}

// ------------------------------------------------------ endpoint health --

TEST_F(EndpointE2eTest, AWebhookFailingLongerThanTheLimitIsDisabledAndItsDeliveriesStop) {
  receiver_->SetPlan("/down", {}, Reply(503));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/down"));
  PublishBooking("down-1");
  PublishBooking("down-2");
  std::string status;
  ASSERT_TRUE(Eventually([&] { return (status = WebhookField(hook, "status")) == "disabled"; }, 15s, 50ms))
      << status << "\n" << stack_->LogTails();
  const std::string reason = WebhookField(hook, "disabled_reason");
  EXPECT_TRUE(absl::StartsWith(reason, "failing since 20")) << reason;
  EXPECT_TRUE(absl::EndsWith(reason, ": last attempt HTTP 503")) << reason;
  EXPECT_EQ(WebhookField(hook, "disabled_at IS NOT NULL"), "t");
  // The run began with the first attempt and lasted longer than the limit.
  EXPECT_EQ(WebhookField(hook, absl::StrCat("(disabled_at - failing_since) >= interval '", kDisableAfterMs,
                                            " milliseconds'")),
            "t");
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT min(a.started_at) = (SELECT failing_since FROM webhooks WHERE id = ",
                                     SqlQuote(hook.id), ") FROM delivery_attempts a JOIN deliveries d ON "
                                     "d.id = a.delivery_id WHERE d.webhook_id = ", SqlQuote(hook.id))),
            "t");
  // Pending deliveries stop: none is left pending (cancelled), and nothing
  // more reaches the endpoint.
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE state = 'pending' AND webhook_id = ",
                                     SqlQuote(hook.id))),
            "0");
  const std::size_t seen = receiver_->Count("/down");
  std::this_thread::sleep_for(1500ms);  // longer than the remaining retry delays
  EXPECT_EQ(receiver_->Count("/down"), seen);
  // A new event is not even queued for it.
  PublishBooking("down-3");
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id))),
            "2");
}

TEST_F(EndpointE2eTest, ASuccessResetsTheRunOfFailures) {
  receiver_->SetPlan("/flaky", {Reply(503), Reply(503)}, Reply(200));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/flaky"));
  PublishBooking("flaky");
  ASSERT_TRUE(receiver_->WaitFor("/flaky", 1, 15s));
  std::string since;
  ASSERT_TRUE(Eventually([&] { return (since = WebhookField(hook, "failing_since IS NOT NULL")) == "t"; }, 5s, 20ms))
      << stack_->LogTails();
  ASSERT_TRUE(Eventually(
      [&] {
        return db().Scalar(absl::StrCat("SELECT state FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id))) ==
               "succeeded";
      },
      15s, 50ms))
      << stack_->LogTails();
  EXPECT_EQ(WebhookField(hook, "failing_since IS NULL"), "t");
  EXPECT_EQ(WebhookField(hook, "status"), "enabled");
  EXPECT_EQ(receiver_->Count("/flaky"), 3u);
}

// ---------------------------------------------------- per-endpoint limits --

TEST_F(EndpointE2eTest, TheRateLimitSpacesRequestsWithoutSlowingOtherEndpoints) {
  constexpr int kEvents = 12;
  constexpr double kRate = 8;  // requests per second
  const CreatedWebhook limited = Hook("booking_update", receiver_->Url("/limited"));
  const CreatedWebhook free = Hook("booking_update", receiver_->Url("/free"));
  Sql(absl::StrCat("UPDATE webhooks SET rate_limit_per_second = ", kRate, " WHERE id = ", SqlQuote(limited.id)));
  webhooks::v1::PublishEventsRequest batch;
  for (int i = 0; i < kEvents; ++i) {
    *batch.add_events() = Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("rate"))
                              ;
  }
  ASSERT_TRUE(stack_->PublishBatch(batch).ok());
  // The unlimited endpoint gets everything at once...
  ASSERT_TRUE(receiver_->WaitFor("/free", kEvents, 5s)) << stack_->LogTails();
  // ...while the limited one is still receiving.
  EXPECT_LT(receiver_->Count("/limited"), static_cast<std::size_t>(kEvents));
  ASSERT_TRUE(receiver_->WaitFor("/limited", kEvents, 20s)) << stack_->LogTails();
  std::vector<ReceivedRequest> got = receiver_->Requests("/limited");
  std::sort(got.begin(), got.end(),
            [](const ReceivedRequest& a, const ReceivedRequest& b) { return a.received_steady < b.received_steady; });
  const double interval_ms = 1000 / kRate;
  double span_ms = GapMs(got.front(), got.back());
  // kEvents requests at most kRate per second take (kEvents - 1) intervals;
  // each gap is an interval, less the sender's own jitter.
  EXPECT_GE(span_ms, (kEvents - 1) * interval_ms * 0.9);
  for (std::size_t i = 1; i < got.size(); ++i) EXPECT_GE(GapMs(got[i - 1], got[i]), interval_ms * 0.6) << i;
  // No attempt was counted for the deferrals.
  EXPECT_TRUE(AllSucceededWithOneAttemptEach(limited, kEvents));
}

TEST_F(EndpointE2eTest, TheConcurrencyCapHoldsAtTheReceiver) {
  constexpr int kEvents = 8;
  constexpr int kCap = 2;
  constexpr auto kAnswerAfter = 300ms;
  receiver_->SetPlan("/capped", {}, Reply(200).Delay(kAnswerAfter));
  const CreatedWebhook capped = Hook("booking_update", receiver_->Url("/capped"));
  Sql(absl::StrCat("UPDATE webhooks SET max_concurrency = ", kCap, " WHERE id = ", SqlQuote(capped.id)));
  webhooks::v1::PublishEventsRequest batch;
  for (int i = 0; i < kEvents; ++i) {
    *batch.add_events() = Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("cap"))
                              ;
  }
  ASSERT_TRUE(stack_->PublishBatch(batch).ok());
  ASSERT_TRUE(receiver_->WaitFor("/capped", kEvents, 20s)) << stack_->LogTails();
  const std::vector<ReceivedRequest> got = receiver_->Requests("/capped");
  // Requests being answered at the same time: each occupies
  // [received, received + kAnswerAfter) at the receiver.
  int most = 0;
  for (const ReceivedRequest& r : got) {
    int overlapping = 0;
    for (const ReceivedRequest& other : got) {
      if (other.received_steady <= r.received_steady && r.received_steady < other.received_steady + kAnswerAfter) {
        ++overlapping;
      }
    }
    most = std::max(most, overlapping);
  }
  EXPECT_LE(most, kCap);
  EXPECT_EQ(most, kCap);  // and the cap is used, not undercut
  EXPECT_TRUE(AllSucceededWithOneAttemptEach(capped, kEvents));
}

// ------------------------------------------------------------ isolation --

// One slow endpoint (another host:port answering after 1.5 s) with a
// backlog does not hold up an endpoint beside it: the fast one gets all of
// its deliveries while the slow one is still working through its own.
TEST_F(EndpointE2eTest, ASlowEndpointDoesNotHoldUpTheOthers) {
  constexpr int kEvents = 24;  // the slow endpoint needs 24 / 4 x 1.5 s = 9 s for them
  auto slow = testing::HttpReceiver::Start();
  ASSERT_TRUE(slow.ok());
  (*slow)->SetPlan("/slow", {}, Reply(200).Delay(1500ms));
  const CreatedWebhook slow_hook = Hook("booking_update", (*slow)->Url("/slow"));
  const CreatedWebhook fast_hook = Hook("booking_update", receiver_->Url("/fast"));
  webhooks::v1::PublishEventsRequest batch;
  for (int i = 0; i < kEvents; ++i) {
    *batch.add_events() = Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("iso"));
  }
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(stack_->PublishBatch(batch).ok());
  ASSERT_TRUE(receiver_->WaitFor("/fast", kEvents, 5s)) << stack_->LogTails();
  const double fast_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(fast_ms, 4000);
  // Meanwhile the slow endpoint is at its share of the transfers, far from done.
  EXPECT_LT((*slow)->Count("/slow"), static_cast<std::size_t>(kEvents));
  EXPECT_GE((*slow)->Count("/slow"), static_cast<std::size_t>(kMaxPerHost));
}

}  // namespace
}  // namespace octo::delivery_e2e
