// Migration 0020: deliveries reference their webhook without a foreign key,
// and deleting webhooks deletes their deliveries (and their attempts) by a
// statement trigger. On a database filled under the schema before it, then
// migrated: the rows come through unchanged and every way a webhook goes
// (its own delete, its connection's, its supplier's) still takes its
// deliveries. And the guarantee the foreign key gave at insert, now the
// enqueue's lock: a webhook deleted while an enqueue holds it waits, then
// takes the deliveries that enqueue committed; none is left without its
// webhook.
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {
namespace {

constexpr int kBeforeCascade = 19;  // every migration before 0020

constexpr char kOrphans[] =
    "SELECT count(*) FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id)";

// Every delivery and attempt column, one text.
constexpr char kFingerprint[] =
    "SELECT (SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT * FROM deliveries) x)"
    " || (SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (SELECT * FROM delivery_attempts) x)";

class WebhookCascadeMigrationTest : public DeliveryTest {
 protected:
  int MigrateUpTo() const override { return kBeforeCascade; }

  long long DeliveriesOf(const std::string& webhook) const {
    return Count(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = '", webhook, "'"));
  }
  // Runs `sql` in a transaction of its own and commits it.
  void Commit(const std::string& sql) const {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec(sql);
    txn.commit();
  }
  long long AttemptsOf(const std::string& webhook) const {
    return Count(absl::StrCat("SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
                              " WHERE d.webhook_id = '", webhook, "'"));
  }
};

TEST_F(WebhookCascadeMigrationTest, OldRowsStayAndEveryDeleteStillTakesItsWebhooksDeliveries) {
  ASSERT_LT(Count("SELECT max(version) FROM schema_migrations"), 20);
  const std::string deleted = NewWebhook(connection_a_);
  const std::string kept = NewWebhook(connection_a_);
  const std::string of_connection = NewWebhook(connection_b_);
  for (const char* key : {"old-1", "old-2"}) {
    pb::PublishEventResponse r;
    ASSERT_THAT(EnqueueOne(Booking(key, absl::StrCat(R"({"uuid":")", key, R"("})")), &r), GrpcIsOk());
    ASSERT_EQ(r.delivery_count(), 3);
  }
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec("INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, http_status,"
             " delivery_created_at) SELECT id, 1, now(), 3.5, 503, created_at FROM deliveries");
    txn.commit();
  }
  const std::string before = Text(kFingerprint);

  ASSERT_THAT(ApplyMigrations(db_->conninfo(), schema::Migrations(), schema::kMigrationLockKey), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM pg_constraint WHERE conrelid = 'deliveries'::regclass"
                  " AND confrelid = 'webhooks'::regclass"),
            0);
  EXPECT_EQ(Text(kFingerprint), before);

  // The subscription service's delete.
  ASSERT_THAT(repo_->DeleteWebhook(connection_a_, deleted), IsOk());
  EXPECT_EQ(DeliveriesOf(deleted), 0);
  EXPECT_EQ(AttemptsOf(deleted), 0);
  EXPECT_EQ(DeliveriesOf(kept), 2);
  EXPECT_EQ(AttemptsOf(kept), 2);

  // A connection's delete cascades to its webhooks, and on to their deliveries.
  Commit(absl::StrCat("DELETE FROM connections WHERE id = '", connection_b_, "'"));
  EXPECT_EQ(Count("SELECT count(*) FROM webhooks"), 1);
  EXPECT_EQ(DeliveriesOf(of_connection), 0);
  EXPECT_EQ(AttemptsOf(of_connection), 0);
  EXPECT_EQ(DeliveriesOf(kept), 2);

  // A delete under REPEATABLE READ could miss an enqueue committed meanwhile:
  // refused, nothing deleted.
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    try {
      txn.exec(absl::StrCat("DELETE FROM webhooks WHERE id = '", kept, "'"));
      ADD_FAILURE() << "a REPEATABLE READ delete of a webhook was not refused";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "55000");
    }
  }
  EXPECT_EQ(DeliveriesOf(kept), 2);

  // The supplier's delete takes the rest.
  Commit(absl::StrCat("DELETE FROM suppliers WHERE id = '", supplier_id_, "'"));
  EXPECT_EQ(Count("SELECT count(*) FROM webhooks"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_attempts"), 0);
}

// What the foreign key's check at insert guaranteed, now held by the
// enqueue's lock on the webhooks it resolves: a delete of a webhook waits for
// the enqueue holding it and then deletes the deliveries it committed. The
// session below does what the enqueue does (kResolveWebhooks' lock, then the
// insert) and commits only once the delete is seen waiting.
TEST_F(DeliveryTest, AWebhookDeletedDuringAnEnqueueTakesTheDeliveriesItCommitted) {
  const std::string webhook = NewWebhook(connection_a_);
  const std::string other = NewWebhook(connection_a_);
  pb::PublishEventResponse r;
  ASSERT_THAT(EnqueueOne(Booking("before", R"({"uuid":"b-1"})"), &r), GrpcIsOk());
  ASSERT_EQ(r.delivery_count(), 2);

  auto enqueuer = Raw();
  pqxx::work txn(*enqueuer);
  txn.exec(absl::StrCat("SELECT id FROM webhooks WHERE id IN ('", webhook, "', '", other,
                        "') ORDER BY id FOR KEY SHARE"));
  // A second event, with a delivery to each.
  txn.exec(absl::StrCat("WITH e AS (INSERT INTO events (supplier_id, idempotency_key, event, resource_kind,"
                        " resource_key, resource, occurred_at, delivery_count) VALUES ('", supplier_id_,
                        "', 'during', 'booking_update', 'booking', 'b-2', '{\"uuid\":\"b-2\"}', now(), 2)"
                        " RETURNING id, created_at)"
                        " INSERT INTO deliveries (event_id, webhook_id, created_at)"
                        " SELECT e.id, w, e.created_at FROM e, unnest(ARRAY['", webhook, "', '", other,
                        "']::uuid[]) AS w"));

  std::optional<absl::StatusOr<subscription::WebhookRecord>> deleted;
  std::atomic<bool> done{false};
  std::thread deleter([&] {
    deleted = repo_->DeleteWebhook(connection_a_, webhook);
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
               " AND datname = current_database()") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(done) << "the delete did not wait for the enqueue holding the webhook";
  txn.commit();
  deleter.join();
  ASSERT_TRUE(deleted.has_value());
  EXPECT_THAT(*deleted, IsOk());
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = '", webhook, "'")), 0);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = '", other, "'")), 2);
  EXPECT_EQ(Count(kOrphans), 0);
}

}  // namespace
}  // namespace octo::testing
