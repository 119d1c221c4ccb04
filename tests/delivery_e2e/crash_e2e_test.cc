// Crash safety: octo-delivery is killed with SIGKILL while deliveries are in
// flight and restarted; leases expire (short --request_timeout and
// --lease_margin) and are reclaimed. Every accepted delivery arrives at least
// once, and a delivery sent twice carries the same webhook-id and body.
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/delivery_e2e/delivery_fixture.h"

namespace octo::delivery_e2e {
namespace {

namespace v1 = ::octo::webhooks::v1;
using testing::Hangup;
using testing::Reply;

constexpr const char* kBooking = R"({"id":"bk-c{n}","uuid":"{uuid}","status":"CONFIRMED","notes":"crash {n}"})";

class CrashE2eTest : public DeliveryTest {
 protected:
  // Lease = 1.5 s + 0.5 s: a dead dispatcher's claims come back after 2 s.
  static void SetUpTestSuite() {
    StartStack({.retry_schedule = "200ms,300ms,300ms",
                .request_timeout = "1500ms",
                .connect_timeout = "500ms",
                .lease_margin = "500ms",
                .poll_interval = "100ms",
                .min_retry_after = "1s",
                .max_retry_after = "2s",
                .extra_args = {}});
  }
  static void TearDownTestSuite() { StopStack(); }
};

TEST_F(CrashE2eTest, KillNineWhileInFlightLosesNothing) {
  constexpr int kEvents = 200;
  // Slow answers (but within the request timeout): many transfers are in
  // flight at any moment.
  receiver_->SetPlan("/slow", {}, Reply(200).Delay(400ms));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/slow"));

  v1::PublishEventsRequest batch;
  for (int i = 0; i < kEvents; ++i) {
    *batch.add_events() = Event(tenant_, "booking_update",
                                Fill(kBooking, {{"{n}", std::to_string(i)}, {"{uuid}", NewUuid()}}),
                                NewKey(absl::StrCat("crash-", i)));
  }
  auto published = stack_->PublishBatch(batch);
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_EQ(published->results_size(), kEvents);
  for (const auto& r : published->results()) ASSERT_EQ(r.delivery_count(), 1);

  // Kill as soon as a first wave is being answered (slowly): those requests
  // have been received, their results not recorded.
  ASSERT_TRUE(receiver_->WaitFor("/slow", 30, 20s)) << stack_->LogTails();
  const testing::ExitInfo killed = stack_->KillDelivery();
  EXPECT_EQ(killed.signal, SIGKILL) << killed.ToString();
  const std::size_t before_restart = receiver_->Count("/slow");
  EXPECT_LT(before_restart, static_cast<std::size_t>(kEvents)) << "the crash came too late to matter";
  const std::string unfinished = db().Scalar(absl::StrCat(
      "SELECT count(*) FROM deliveries WHERE state = 'pending' AND webhook_id = ", SqlQuote(hook.id)));
  EXPECT_NE(unfinished, "0");

  ASSERT_TRUE(stack_->StartDelivery().ok()) << stack_->LogTails();

  // Every accepted delivery arrives: 200 distinct webhook-ids, the very
  // ids of the stored deliveries.
  std::set<std::string> expected_ids;
  for (const auto& row : db().Rows(absl::StrCat("SELECT 'msg_' || replace(id::text, '-', '') FROM deliveries "
                                                "WHERE webhook_id = ",
                                                SqlQuote(hook.id)))) {
    expected_ids.insert(row[0]);
  }
  ASSERT_EQ(expected_ids.size(), static_cast<std::size_t>(kEvents));
  std::map<std::string, std::vector<ReceivedRequest>> by_id;
  const bool all_arrived = Eventually(
      [&] {
        by_id.clear();
        for (ReceivedRequest& r : receiver_->Requests("/slow")) by_id[WebhookId(r)].push_back(std::move(r));
        return by_id.size() >= static_cast<std::size_t>(kEvents);
      },
      40s, 100ms);
  ASSERT_TRUE(all_arrived) << by_id.size() << " of " << kEvents << " deliveries arrived\n" << stack_->LogTails();
  std::set<std::string> got_ids;
  for (const auto& [id, requests] : by_id) got_ids.insert(id);
  EXPECT_EQ(got_ids, expected_ids);

  // Duplicates (at-least-once) are the same delivery: same id, same body,
  // each correctly signed. One body per id, one id per body.
  std::set<std::string> bodies;
  std::size_t duplicates = 0;
  for (const auto& [id, requests] : by_id) {
    bodies.insert(requests.front().body);
    duplicates += requests.size() - 1;
    for (const ReceivedRequest& r : requests) {
      EXPECT_EQ(r.body, requests.front().body) << id;
      EXPECT_TRUE(SignatureVerifies(r, hook.secret)) << id;
    }
  }
  EXPECT_EQ(bodies.size(), static_cast<std::size_t>(kEvents));
  // The crash hit deliveries in flight: they were sent again.
  EXPECT_GT(duplicates, 0u);

  // And the database agrees: all succeeded, every attempt recorded.
  EXPECT_TRUE(Eventually(
      [&] {
        return db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE state = 'succeeded' AND webhook_id = ",
                                        SqlQuote(hook.id))) == std::to_string(kEvents);
      },
      20s, 100ms))
      << stack_->LogTails();
  std::cerr << "crash test: " << before_restart << " requests before the kill, " << duplicates
            << " duplicates after the restart, " << receiver_->Count("/slow") << " requests in all\n";
}

}  // namespace
}  // namespace octo::delivery_e2e
