// What the claim returns beside each delivery, against a real PostgreSQL
// (OCTO_TEST_PG): the supplier comes through the webhook's connection (the
// claim reads no events), so a delivery is claimed and returned whole
// whatever the week of its event, and a delivery whose event row is gone is
// returned too (its event missing from the batch: the pipeline records an
// internal error) instead of being leased and never sent.
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/faults/dispatch_store_faults_fixture.h"

namespace octo::delivery {
namespace {

class ClaimJoinsTest : public DispatchStoreFaultsTest {
 protected:
  // A second supplier with a connection, a webhook and one due delivery of
  // its own event: a claim of both suppliers' deliveries must not mix them.
  std::string AddOtherSupplierDelivery() {
    Exec("INSERT INTO suppliers (name, endpoint, contact) VALUES ('T', 'https://t.example/octo',"
         " '{\"email\": \"t@example.com\"}')");
    Exec("INSERT INTO connections (supplier_id, name, max_webhooks) SELECT id, 'c', 100 FROM suppliers"
         " WHERE name = 'T'");
    const std::string hook = Scalar(
        "INSERT INTO webhooks (connection_id, event, url, secret) SELECT c.id, 'booking_update',"
        " 'http://127.0.0.1:9/t', 'whsec_' || repeat('B', 43) || '=' FROM connections c"
        " JOIN suppliers s ON s.id = c.supplier_id WHERE s.name = 'T' RETURNING id::text");
    const std::string event = Scalar(
        "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource, occurred_at)"
        " SELECT id, 'kt', 'booking_update', 'booking', 'bt', '{}', now() FROM suppliers WHERE name = 'T'"
        " RETURNING id::text");
    return Scalar(absl::StrCat("INSERT INTO deliveries (event_id, webhook_id) VALUES ('", event, "', '", hook,
                               "') RETURNING id::text"));
  }

  ClaimBatch ClaimAll() {
    absl::StatusOr<ClaimBatch> batch = store_->Claim(10, absl::Seconds(30));
    EXPECT_TRUE(batch.ok()) << batch.status();
    return batch.ok() ? *batch : ClaimBatch{};
  }
};

// The services store an event only for webhooks whose connection belongs to
// the event's supplier, so the two agree for every row here: what this shows
// is that a batch of two suppliers' deliveries never mixes their profiles.
TEST_F(ClaimJoinsTest, ABatchOfTwoSuppliersKeepsEachDeliverysOwnSupplier) {
  const std::string other = AddOtherSupplierDelivery();
  const ClaimBatch batch = ClaimAll();
  ASSERT_EQ(batch.deliveries.size(), 3u);
  for (const ClaimedDelivery& d : batch.deliveries) {
    const std::string want = d.id == other ? "T" : "S";
    EXPECT_EQ(d.supplier_name, want) << d.id;
    EXPECT_EQ(d.supplier_id, Scalar(absl::StrCat("SELECT id::text FROM suppliers WHERE name = '", want, "'")));
    EXPECT_EQ(d.supplier_endpoint, d.id == other ? "https://t.example/octo" : "https://s.example/octo");
    EXPECT_TRUE(batch.events.contains(d.event_id)) << d.id;
  }
}

// Rows written before migration 0013 or by hand may sit in another week than
// their event: claimed and returned with their event all the same.
TEST_F(ClaimJoinsTest, ADeliveryInAnotherWeekThanItsEventIsClaimedWithIt) {
  Exec("SELECT octo_retention_create_partitions(now() - interval '21 days', now())");
  Exec(absl::StrCat("UPDATE deliveries SET created_at = now() - interval '14 days' WHERE id = '", ids_[0], "'"));
  const ClaimedDelivery d = ClaimOne(ids_[0]);
  EXPECT_EQ(d.supplier_name, "S");
  ASSERT_TRUE(!d.event_id.empty());
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM events WHERE id = '", d.event_id,
                                "' AND created_at > now() - interval '1 day'")),
            "1");
}

// Deleting events deletes their deliveries (a trigger on the parent); a row
// deleted by hand from a week's partition does not. Its delivery used to be
// leased by the claim and dropped from the answer by the join of events, so
// it was never sent nor reported until three claims quarantined it.
TEST_F(ClaimJoinsTest, ADeliveryWhoseEventRowIsGoneIsReturnedWithoutItsEvent) {
  const std::string event = Scalar(absl::StrCat("SELECT event_id::text FROM deliveries WHERE id = '", ids_[0], "'"));
  const std::string part = Scalar(absl::StrCat("SELECT tableoid::regclass::text FROM events WHERE id = '", event, "'"));
  Exec(absl::StrCat("DELETE FROM ", part, " WHERE id = '", event, "'"));
  ASSERT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE id = '", ids_[0], "'")), "1");
  const ClaimBatch batch = ClaimAll();
  ASSERT_EQ(batch.deliveries.size(), 2u);
  bool found = false;
  for (const ClaimedDelivery& d : batch.deliveries) {
    if (d.id != ids_[0]) continue;
    found = true;
    EXPECT_EQ(d.supplier_name, "S");
    EXPECT_FALSE(batch.events.contains(d.event_id));
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace octo::delivery
