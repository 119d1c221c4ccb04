// Redeliver called 5 times within a second on a delivery whose endpoint
// takes 10 s to answer: at most one request with its webhook-id is in
// flight at any moment. The redelivers coalesce into one more send, made
// after the running one's result was recorded.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tests/faults/fault_fixture.h"

namespace octo::faults {
namespace {

using testing::Reply;

class RedeliverStormFaultTest : public FaultTest {};

TEST_F(RedeliverStormFaultTest, AtMostOneRequestInFlightPerWebhookId) {
  constexpr auto kAnswerDelay = 10s;
  ASSERT_TRUE(StartStack({.retry_schedule = "1s",
                          .request_timeout = "15s",
                          .connect_timeout = "500ms",
                          .lease_margin = "2s",
                          .poll_interval = "100ms",
                          .min_retry_after = "1s",
                          .max_retry_after = "2s",
                          .allow_destination_cidrs = "127.0.0.0/8,::1/128",
                          .extra_args = {}}));
  receiver_->SetPlan("/slow", {}, Reply(200).Delay(kAnswerDelay));
  const e2e::Tenant tenant = NewTenant();
  const CreatedWebhook hook = Hook(tenant, "booking_update", receiver_->Url("/slow"));
  ASSERT_EQ(Publish(tenant, 1, "storm"), 1);
  ASSERT_TRUE(receiver_->WaitFor("/slow", 1, 20s)) << stack_->LogTails();
  const std::string delivery_id =
      db().Scalar(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id)));

  // Five redelivers within a second, while the first send waits for its answer.
  e2e::RestApi api(stack_->gateway_port(), tenant.api_key, stack_->base().options().base_path);
  for (int i = 0; i < 5; ++i) {
    testing::HttpRequest post{
        .method = "POST",
        .target = absl::StrCat(api.base(), "/ext/webhooks/", hook.id, "/deliveries/", delivery_id, "/redeliver"),
        .headers = {},
        .body = std::nullopt};
    const testing::HttpResponse r = api.Send(post);
    EXPECT_EQ(r.status, 200) << r.body;
    std::this_thread::sleep_for(180ms);
  }

  // The first answer comes 10 s after it arrived; then exactly one more
  // send (the coalesced redeliver), answered 10 s later; then nothing.
  ASSERT_TRUE(receiver_->WaitFor("/slow", 2, 25s)) << stack_->LogTails();
  const bool finished = Eventually(
      [&] {
        return db().Scalar(absl::StrCat("SELECT state || ' ' || (lease_expires_at IS NULL) FROM deliveries WHERE id = ",
                                        SqlQuote(delivery_id))) == "succeeded true";
      },
      25s, 200ms);
  ASSERT_TRUE(finished) << stack_->LogTails();
  std::this_thread::sleep_for(1s);  // anything still scheduled would be claimed within the poll interval

  const std::vector<ReceivedRequest> got = receiver_->Requests("/slow");
  for (std::size_t i = 1; i < got.size(); ++i) {
    // A request may only arrive once the one before was answered.
    const double answer_ms = std::chrono::duration<double, std::milli>(kAnswerDelay).count();
    EXPECT_GE(delivery_e2e::GapMs(got[i - 1], got[i]), answer_ms)
        << "request " << i + 1 << " with the same webhook-id overlapped the one before";
    EXPECT_EQ(WebhookId(got[i]), WebhookId(got[0]));
  }
  EXPECT_EQ(got.size(), 2u) << "the five redelivers should coalesce into one more send";
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT count(*) FROM delivery_attempts WHERE delivery_id = ",
                                     SqlQuote(delivery_id))),
            std::to_string(got.size()));
}

}  // namespace
}  // namespace octo::faults
