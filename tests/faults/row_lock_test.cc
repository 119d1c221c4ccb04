// A row lock held for 40 s on one webhook's delivery (another session's
// SELECT ... FOR UPDATE, taken while that delivery's request is being
// answered, so its result write meets the lock): the results of other
// webhooks and tenants keep committing meanwhile, and the 410 the locked
// delivery got still disables its webhook once the lock is gone.
// octo-delivery's connections wait at most 2 s for a row lock (its
// lock_timeout); the results that do not need the locked row are written
// without it.
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "tests/faults/fault_fixture.h"

namespace octo::faults {
namespace {

using testing::Reply;

class RowLockFaultTest : public FaultTest {};

TEST_F(RowLockFaultTest, OtherResultsCommitAndGoneStillDisables) {
  constexpr auto kLockHeld = 40s;
  ASSERT_TRUE(StartStack({.retry_schedule = "200ms,300ms,300ms",
                          .request_timeout = "2s",
                          .connect_timeout = "500ms",
                          .lease_margin = "1s",
                          .poll_interval = "100ms",
                          .min_retry_after = "1s",
                          .max_retry_after = "2s",
                          .allow_destination_cidrs = "127.0.0.0/8,::1/128",
                          .extra_args = {}}));
  // The locked delivery's endpoint answers 410 after a second: time to
  // take the lock while the request is in flight.
  receiver_->SetPlan("/gone", {}, Reply(410).Delay(1s));
  const e2e::Tenant tenant_a = NewTenant();
  const e2e::Tenant tenant_b = NewTenant();
  const CreatedWebhook gone = Hook(tenant_a, "order_update", receiver_->Url("/gone"));
  const CreatedWebhook same_tenant = Hook(tenant_a, "booking_update", receiver_->Url("/a"));
  const CreatedWebhook other_tenant = Hook(tenant_b, "booking_update", receiver_->Url("/b"));

  ASSERT_EQ(Publish(tenant_a, 1, "locked", "order_update"), 1);
  ASSERT_TRUE(receiver_->WaitFor("/gone", 1, 20s)) << stack_->LogTails();
  pqxx::connection locker(stack_->database_url());
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec(absl::StrCat("SELECT id FROM deliveries WHERE webhook_id = ", SqlQuote(gone.id), " FOR UPDATE"));
  const auto locked_at = std::chrono::steady_clock::now();

  // While it is held: batches for both other webhooks, each fully recorded
  // (delivered and committed) long before the lock goes.
  int published = 0;
  int rounds = 0;
  while (std::chrono::steady_clock::now() - locked_at < kLockHeld - 8s) {
    published += Publish(tenant_a, 3, absl::StrCat("a-", rounds));
    Publish(tenant_b, 3, absl::StrCat("b-", rounds));
    ++rounds;
    const bool committed = Eventually(
        [&] {
          return CountInState(same_tenant, "succeeded") == published &&
                 CountInState(other_tenant, "succeeded") == published;
        },
        6s, 100ms);
    EXPECT_TRUE(committed) << "round " << rounds << ": results stopped committing while a row lock was held ("
                           << CountInState(same_tenant, "succeeded") << " and "
                           << CountInState(other_tenant, "succeeded") << " of " << published << ")";
    if (!committed) break;
    std::this_thread::sleep_for(1s);
  }
  EXPECT_GE(rounds, 5);
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = ", SqlQuote(gone.id))), "enabled");
  std::this_thread::sleep_until(locked_at + kLockHeld);
  lock->commit();
  lock.reset();

  // The 410 is recorded once the lock is gone: the webhook is disabled.
  const bool disabled = Eventually(
      [&] { return db().Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = ", SqlQuote(gone.id))) == "disabled"; },
      20s, 200ms);
  EXPECT_TRUE(disabled) << stack_->LogTails();
  EXPECT_EQ(CountInState(gone, "failed"), 1);
}

}  // namespace
}  // namespace octo::faults
