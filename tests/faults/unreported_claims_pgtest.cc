// Claims that end without a send, against a real PostgreSQL (OCTO_TEST_PG).
// A suspect's claim (two claims in a row ended without a result) released
// unsent says nothing about whether sending it crashes the process: it
// neither adds to its count of claims without a result (unreported_claims)
// nor starts that count again, so it stays a suspect; only an attempt's
// result does. Before, any release reset the count: a delivery that crashed
// the process twice, was then released once from its destination's line and
// crashed it again needed five crashes instead of three to be quarantined
// (QuarantineFaultTest, once, in the sanitized build, where a restarted
// process's line was slow). Before suspicion a release still resets
// (docs/decisions.md, 117).
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/delivery/dispatch_store.h"
#include "tests/faults/dispatch_store_faults_fixture.h"

namespace octo::delivery {
namespace {

class UnreportedClaimsTest : public DispatchStoreFaultsTest {
 protected:
  // What the pipeline writes for a claimed delivery it did not send: a
  // release, at once (a shutdown), or into a later backlog slot (`parked`:
  // its destination could not start it within the lease).
  static DeliveryResult Released(const ClaimedDelivery& d, bool parked) {
    DeliveryResult r;
    r.delivery_id = d.id;
    r.webhook_id = d.webhook_id;
    r.lease_us = d.lease_us;
    r.created_us = d.created_us;
    r.attempt_number = d.attempt_count + 1;
    r.action = DeliveryResult::Action::kRelease;
    r.parked = parked;
    if (parked) r.decision.retry_delay = absl::Seconds(5);
    return r;
  }

  std::string Counts(const std::string& id) {
    return Scalar(absl::StrCat("SELECT unreported_claims || ' ' || COALESCE(claimed_attempt::text, '-')"
                               " FROM deliveries WHERE id = '", id, "'"));
  }

  // The delivery crashes the process at two claims, its third claim (a
  // suspect's) is released unsent, and the claim after that crashes the
  // process again: the third crash quarantines it, and from the release on
  // it is still a suspect (claimed alone).
  void CrashTwiceReleaseCrashOnce(bool parked) {
    const std::string id = ids_[0];
    Exec(absl::StrCat("DELETE FROM deliveries WHERE id = '", ids_[1], "'"));
    for (int claim = 1; claim <= 2; ++claim) {
      ClaimOne(id);
      ExpireLeases();  // the process died while sending it
    }
    const ClaimedDelivery third = ClaimOne(id);
    EXPECT_TRUE(third.suspect);
    ASSERT_TRUE(store_->WriteResults({Released(third, parked)}).ok());
    // Neither reset nor counted: two claims without a result, none pending.
    EXPECT_EQ(Counts(id), "2 -");
    EXPECT_EQ(Attempts(id), "1:interrupted,2:interrupted");
    if (parked) Exec(absl::StrCat("UPDATE deliveries SET next_attempt_at = now() WHERE id = '", id, "'"));

    const std::string neighbour = AddDelivery("neighbour");
    absl::StatusOr<ClaimBatch> fourth = store_->Claim(10, absl::Seconds(30));
    ASSERT_TRUE(fourth.ok()) << fourth.status();
    ASSERT_EQ(fourth->deliveries.size(), 1u) << "a suspect released unsent was claimed beside another delivery";
    EXPECT_EQ(fourth->deliveries[0].id, id);
    EXPECT_TRUE(fourth->deliveries[0].suspect);
    EXPECT_EQ(fourth->deliveries[0].attempt_count, 2);  // the release's number again: nothing was sent under it
    EXPECT_EQ(Attempts(id), "1:interrupted,2:interrupted");  // the release is no lost attempt
    ExpireLeases();  // it crashed the process: the third claim without a result

    absl::StatusOr<ClaimBatch> fifth = store_->Claim(10, absl::Seconds(30));
    ASSERT_TRUE(fifth.ok()) << fifth.status();
    for (const ClaimedDelivery& d : fifth->deliveries) EXPECT_NE(d.id, id) << "not quarantined after three crashes";
    EXPECT_EQ(Row(id), "failed 3 - interrupted true");
    EXPECT_EQ(Attempts(id), "1:interrupted,2:interrupted,3:interrupted");
    absl::StatusOr<ClaimBatch> sixth = store_->Claim(10, absl::Seconds(30));  // the neighbour waited its turn
    ASSERT_TRUE(sixth.ok()) << sixth.status();
    ASSERT_EQ(sixth->deliveries.size(), 1u);
    EXPECT_EQ(sixth->deliveries[0].id, neighbour);
    EXPECT_FALSE(sixth->deliveries[0].suspect);
  }
};

TEST_F(UnreportedClaimsTest, AReleaseAtOnceNeitherResetsNorAddsToTheCount) { CrashTwiceReleaseCrashOnce(false); }

TEST_F(UnreportedClaimsTest, AReleaseIntoABacklogSlotNeitherResetsNorAddsToTheCount) {
  CrashTwiceReleaseCrashOnce(true);
}

// Before suspicion a release still starts the count again: after a kill -9
// hundreds of deliveries were claimed in their destinations' lines, and
// kept counts through the releases that follow would make suspects of
// them, one of which a further kill would quarantine for a kill not its own.
TEST_F(UnreportedClaimsTest, AReleaseBeforeSuspicionStartsTheCountAgain) {
  const std::string id = ids_[0];
  Exec(absl::StrCat("DELETE FROM deliveries WHERE id = '", ids_[1], "'"));
  ClaimOne(id);
  ExpireLeases();  // killed while it waited in line
  const ClaimedDelivery second = ClaimOne(id);
  EXPECT_FALSE(second.suspect);
  ASSERT_TRUE(store_->WriteResults({Released(second, true)}).ok());
  EXPECT_EQ(Counts(id), "0 -");
  Exec(absl::StrCat("UPDATE deliveries SET next_attempt_at = now() WHERE id = '", id, "'"));
  ClaimOne(id);
  ExpireLeases();  // killed again
  EXPECT_FALSE(ClaimOne(id).suspect);  // one claim without a result in a row, not two
  EXPECT_EQ(Counts(id), "1 3");
  EXPECT_EQ(Attempts(id), "1:interrupted,2:interrupted");
}

// An attempt's result is the evidence that sending it does not crash the
// process: a suspect's count starts again.
TEST_F(UnreportedClaimsTest, AnAttemptsResultStartsTheCountAgain) {
  const std::string id = ids_[0];
  Exec(absl::StrCat("DELETE FROM deliveries WHERE id = '", ids_[1], "'"));
  ClaimOne(id);
  ExpireLeases();
  ClaimOne(id);
  ExpireLeases();
  const ClaimedDelivery released = ClaimOne(id);
  ASSERT_TRUE(store_->WriteResults({Released(released, false)}).ok());
  const ClaimedDelivery sent = ClaimOne(id);
  ASSERT_TRUE(store_->WriteResults({Result(sent, 503, DecisionKind::kRetry)}).ok());
  EXPECT_EQ(Counts(id), "0 -");
  EXPECT_EQ(Attempts(id), "1:interrupted,2:interrupted,3:503");
}

}  // namespace
}  // namespace octo::delivery
