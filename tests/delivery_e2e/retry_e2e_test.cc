// Outcomes of an attempt (docs/delivery.md, "Outcomes"), against real
// failures: 5xx, timeouts, refused connections, closed connections,
// Retry-After on 429/503, 410 Gone, and retryOnError false. The retry
// schedule is in milliseconds (flags), so the timings are checked too.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/delivery_e2e/delivery_fixture.h"

namespace octo::delivery_e2e {
namespace {

using testing::Hangup;
using testing::Reply;

constexpr const char* kBooking =
    R"({"id":"bk-r","uuid":"{uuid}","status":"CONFIRMED","contact":{"fullName":"Ada","locales":["en"]}})";

// The flags of this suite: 4 attempts, 200/300/300 ms apart (+-20 %).
constexpr int kAttempts = 4;
constexpr double kFirstDelayMs = 200;
constexpr double kLaterDelayMs = 300;
// Scheduling slack on top of a delay: the poll interval (100 ms), claiming
// and writing results, on a busy 2-core machine.
constexpr double kSlackMs = 1200;

class RetryE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() {
    StartStack({.retry_schedule = "200ms,300ms,300ms",
                .request_timeout = "1s",
                .connect_timeout = "500ms",
                .lease_margin = "1s",
                .poll_interval = "100ms",
                .min_retry_after = "1s",
                .max_retry_after = "2500ms",
                .extra_args = {}});
  }
  static void TearDownTestSuite() { StopStack(); }

  webhooks::v1::PublishEventResponse PublishBooking() {
    return MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("retry")));
  }

  // (attempt_number, http_status or "", error_class or "") of the
  // webhook's one delivery.
  std::vector<std::vector<std::string>> Attempts(const CreatedWebhook& hook) {
    return db().Rows(absl::StrCat(
        "SELECT a.attempt_number::text, coalesce(a.http_status::text, ''), coalesce(a.error_class, '') "
        "FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = ",
        SqlQuote(hook.id), " ORDER BY a.attempt_number"));
  }
  // "state attempt_count" of the webhook's one delivery.
  std::string DeliveryState(const CreatedWebhook& hook) {
    return db().Scalar(absl::StrCat("SELECT state || ' ' || attempt_count FROM deliveries WHERE webhook_id = ",
                                    SqlQuote(hook.id)));
  }
  // Waits until the delivery is in `state` (e.g. "succeeded 3").
  ::testing::AssertionResult ReachesState(const CreatedWebhook& hook, const std::string& state,
                                          std::chrono::milliseconds timeout = 15s) {
    std::string last;
    if (Eventually([&] { return (last = DeliveryState(hook)) == state; }, timeout, 50ms)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "delivery of webhook " << hook.id << " is \"" << last
                                         << "\", expected \"" << state << "\"\n"
                                         << stack_->LogTails();
  }

  // Every request on `path` is the same delivery: same webhook-id and
  // body, each signed afresh.
  void ExpectSameDelivery(const std::vector<ReceivedRequest>& got, const CreatedWebhook& hook) {
    ASSERT_FALSE(got.empty());
    for (const ReceivedRequest& r : got) {
      EXPECT_EQ(WebhookId(r), WebhookId(got.front()));
      EXPECT_EQ(r.body, got.front().body);
      EXPECT_TRUE(HasDeliveryHeaders(r, hook));
    }
  }
};

TEST_F(RetryE2eTest, ServerErrorsAreRetriedWithBackoffUntilSuccess) {
  receiver_->SetPlan("/flaky", {Reply(500), Reply(502).Body("bad gateway")});
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/flaky"));
  PublishBooking();
  ASSERT_TRUE(receiver_->WaitFor("/flaky", 3, 15s)) << stack_->LogTails();
  ASSERT_TRUE(ReachesState(hook, "succeeded 3"));
  const auto got = receiver_->Requests("/flaky");
  ASSERT_EQ(got.size(), 3u);
  ExpectSameDelivery(got, hook);
  EXPECT_EQ(got[2].answered_status, 200);
  // Exponential schedule with +-20 % jitter: 200 ms, then 300 ms.
  EXPECT_GE(GapMs(got[0], got[1]), kFirstDelayMs * 0.8);
  EXPECT_LE(GapMs(got[0], got[1]), kFirstDelayMs * 1.2 + kSlackMs);
  EXPECT_GE(GapMs(got[1], got[2]), kLaterDelayMs * 0.8);
  EXPECT_LE(GapMs(got[1], got[2]), kLaterDelayMs * 1.2 + kSlackMs);

  const std::vector<std::vector<std::string>> expected = {{"1", "500", ""}, {"2", "502", ""}, {"3", "200", ""}};
  EXPECT_EQ(Attempts(hook), expected);
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT a.response_snippet FROM delivery_attempts a JOIN deliveries d ON "
                                     "d.id = a.delivery_id WHERE a.attempt_number = 2 AND d.webhook_id = ",
                                     SqlQuote(hook.id))),
            "bad gateway");
  // Succeeded: nothing more arrives.
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(receiver_->Count("/flaky"), 3u);
}

TEST_F(RetryE2eTest, TimeoutsAndClosedConnectionsAreRetried) {
  // Answers after the 1 s request timeout: the sender gives up first.
  receiver_->SetPlan("/slow", {Reply(200).Delay(1800ms)});
  receiver_->SetPlan("/hangup", {Hangup()});
  const CreatedWebhook slow = Hook("booking_update", receiver_->Url("/slow"));
  const CreatedWebhook hangup = Hook("booking_update", receiver_->Url("/hangup"));
  PublishBooking();
  ASSERT_TRUE(receiver_->WaitFor("/slow", 2, 15s)) << stack_->LogTails();
  ASSERT_TRUE(receiver_->WaitFor("/hangup", 2, 15s)) << stack_->LogTails();
  ASSERT_TRUE(ReachesState(slow, "succeeded 2"));
  ASSERT_TRUE(ReachesState(hangup, "succeeded 2"));

  const auto got_slow = receiver_->Requests("/slow");
  ExpectSameDelivery(got_slow, slow);
  // The timeout (1 s) is reached before the retry (200 ms later).
  EXPECT_GE(GapMs(got_slow[0], got_slow[1]), 1000 + kFirstDelayMs * 0.8 - 50);
  const std::vector<std::vector<std::string>> expected_slow = {{"1", "", "timeout"}, {"2", "200", ""}};
  EXPECT_EQ(Attempts(slow), expected_slow);

  ExpectSameDelivery(receiver_->Requests("/hangup"), hangup);
  // A connection closed without a response is a broken exchange.
  const std::vector<std::vector<std::string>> expected_hangup = {{"1", "", "http"}, {"2", "200", ""}};
  EXPECT_EQ(Attempts(hangup), expected_hangup);
}

TEST_F(RetryE2eTest, RefusedConnectionsAreRetriedUntilTheScheduleEnds) {
  // A port where nothing listens: bind one, then close it.
  int closed_port = 0;
  {
    auto probe = testing::HttpReceiver::Start();
    ASSERT_TRUE(probe.ok()) << probe.status();
    closed_port = (*probe)->port();
  }
  const CreatedWebhook hook =
      Hook("booking_update", absl::StrCat("http://127.0.0.1:", closed_port, "/refused"));
  PublishBooking();
  ASSERT_TRUE(ReachesState(hook, absl::StrCat("failed ", kAttempts)));
  const auto attempts = Attempts(hook);
  ASSERT_EQ(attempts.size(), static_cast<std::size_t>(kAttempts));
  for (int i = 0; i < kAttempts; ++i) {
    EXPECT_EQ(attempts[i], (std::vector<std::string>{std::to_string(i + 1), "", "connect"}));
  }
  // Spaced by the schedule: started_at of consecutive attempts.
  const auto gaps = db().Rows(absl::StrCat(
      "SELECT (extract(epoch FROM a.started_at - lag(a.started_at) OVER (ORDER BY a.attempt_number)) * 1000)::text "
      "FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = ",
      SqlQuote(hook.id), " ORDER BY a.attempt_number"));
  ASSERT_EQ(gaps.size(), static_cast<std::size_t>(kAttempts));
  for (int i = 1; i < kAttempts; ++i) {
    const double gap = std::stod(gaps[i][0]);
    const double delay = i == 1 ? kFirstDelayMs : kLaterDelayMs;
    EXPECT_GE(gap, delay * 0.8 - 5) << "attempt " << i + 1;
    EXPECT_LE(gap, delay * 1.2 + kSlackMs) << "attempt " << i + 1;
  }
}

TEST_F(RetryE2eTest, RetryAfterIsHonouredOn429And503WithinBounds) {
  const std::string in_three_seconds = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::Now() + absl::Seconds(3),
                                                      absl::UTCTimeZone());
  receiver_->SetPlan("/seconds", {Reply(503).RetryAfter("2")});
  receiver_->SetPlan("/date", {Reply(503).RetryAfter(in_three_seconds)});
  receiver_->SetPlan("/clamped-high", {Reply(429).RetryAfter("3600")});
  receiver_->SetPlan("/clamped-low", {Reply(429).RetryAfter("0")});
  // Only 429 and 503 carry a meaningful Retry-After: a 500's is ignored.
  receiver_->SetPlan("/ignored", {Reply(500).RetryAfter("2")});
  std::vector<std::pair<std::string, CreatedWebhook>> hooks;
  for (const char* path : {"/seconds", "/date", "/clamped-high", "/clamped-low", "/ignored"}) {
    hooks.emplace_back(path, Hook("booking_update", receiver_->Url(path)));
  }
  PublishBooking();
  for (const auto& [path, hook] : hooks) {
    ASSERT_TRUE(receiver_->WaitFor(path, 2, 15s)) << path << "\n" << stack_->LogTails();
    ExpectSameDelivery(receiver_->Requests(path), hook);
  }
  auto gap = [&](const std::string& path) {
    const auto got = receiver_->Requests(path);
    return GapMs(got[0], got[1]);
  };
  // "2" seconds: not the 200 ms schedule, and not jittered below 2 s.
  EXPECT_GE(gap("/seconds"), 2000 - 50);
  EXPECT_LE(gap("/seconds"), 2000 + kSlackMs);
  // An HTTP date about 3 s ahead of the plan (whole seconds).
  EXPECT_GE(gap("/date"), 1000);
  EXPECT_LE(gap("/date"), 3000 + kSlackMs);
  // 3600 s clamped to --max_retry_after (2.5 s).
  EXPECT_GE(gap("/clamped-high"), 2500 - 50);
  EXPECT_LE(gap("/clamped-high"), 2500 + kSlackMs);
  // 0 s raised to --min_retry_after (1 s).
  EXPECT_GE(gap("/clamped-low"), 1000 - 50);
  EXPECT_LE(gap("/clamped-low"), 1000 + kSlackMs);
  // The 500's Retry-After: the schedule (200 ms +- 20 %) applies.
  EXPECT_GE(gap("/ignored"), kFirstDelayMs * 0.8);
  EXPECT_LT(gap("/ignored"), 1000);
  for (const auto& [path, hook] : hooks) EXPECT_TRUE(ReachesState(hook, "succeeded 2")) << path;
}

TEST_F(RetryE2eTest, GoneDisablesTheWebhook) {
  receiver_->SetPlan("/gone", {Reply(410)});
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/gone"));
  PublishBooking();
  ASSERT_TRUE(receiver_->WaitFor("/gone", 1, 15s)) << stack_->LogTails();
  ASSERT_TRUE(ReachesState(hook, "failed 1"));
  const std::vector<std::vector<std::string>> expected = {{"1", "410", ""}};
  EXPECT_EQ(Attempts(hook), expected);

  // The partner sees it disabled over the REST API.
  std::string json;
  ASSERT_TRUE(Eventually(
      [&] {
        auto got = stack_->GetWebhookJson(tenant_, hook.id);
        json = got.ok() ? *got : got.status().ToString();
        return json.find(R"("status":"disabled")") != std::string::npos;
      },
      10s, 50ms))
      << json;
  // A disabled webhook receives nothing more, and is not retried.
  const auto again = PublishBooking();
  EXPECT_EQ(again.delivery_count(), 0);
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(receiver_->Count("/gone"), 1u);
}

TEST_F(RetryE2eTest, NoRetryWhenRetryOnErrorIsFalse) {
  receiver_->SetPlan("/once", {Reply(500)});
  receiver_->SetPlan("/once-503", {Reply(503).RetryAfter("1")});
  const CreatedWebhook once = Hook("booking_update", receiver_->Url("/once"), R"("retryOnError":false)");
  const CreatedWebhook once503 = Hook("booking_update", receiver_->Url("/once-503"), R"("retryOnError":false)");
  PublishBooking();
  ASSERT_TRUE(ReachesState(once, "failed 1"));
  ASSERT_TRUE(ReachesState(once503, "failed 1"));
  // Longer than the whole schedule (and the Retry-After): still one each.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(receiver_->Count("/once"), 1u);
  EXPECT_EQ(receiver_->Count("/once-503"), 1u);
  const std::vector<std::vector<std::string>> expected = {{"1", "500", ""}};
  EXPECT_EQ(Attempts(once), expected);
}

TEST_F(RetryE2eTest, GivesUpAfterTheLastScheduledAttempt) {
  receiver_->SetPlan("/down", {}, Reply(500));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/down"));
  PublishBooking();
  ASSERT_TRUE(ReachesState(hook, absl::StrCat("failed ", kAttempts)));
  std::this_thread::sleep_for(800ms);
  const auto got = receiver_->Requests("/down");
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kAttempts));
  ExpectSameDelivery(got, hook);
  EXPECT_EQ(Attempts(hook).size(), static_cast<std::size_t>(kAttempts));
}

TEST_F(RetryE2eTest, DeletingTheWebhookCancelsItsPendingDeliveries) {
  receiver_->SetPlan("/deleted", {}, Reply(500));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/deleted"));
  PublishBooking();
  ASSERT_TRUE(receiver_->WaitFor("/deleted", 1, 15s)) << stack_->LogTails();
  e2e::RestApi api(stack_->gateway_port(), tenant_.api_key);
  ASSERT_EQ(api.Delete(hook.id).status, 200);
  const std::size_t at_delete = receiver_->Count("/deleted");
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id))), "0");
  // At most a transfer already in flight completes; no retry follows.
  std::this_thread::sleep_for(1500ms);
  EXPECT_LE(receiver_->Count("/deleted"), at_delete + 1);
  EXPECT_LT(receiver_->Count("/deleted"), static_cast<std::size_t>(kAttempts));
}

}  // namespace
}  // namespace octo::delivery_e2e
