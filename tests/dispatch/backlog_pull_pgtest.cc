// Pulling a parked backlog forward, statement by statement, against a real
// PostgreSQL (OCTO_TEST_PG): a release into a backlog slot marks the
// delivery parked (kWriteResults, act 'park'), any other result of its
// claim clears the mark, and PgDispatchStore::PullForward makes the parked
// deliveries of the given webhooks due now (unmarked), earliest slot first, leaving
// retry-scheduled, rate-limited, leased and other webhooks' deliveries as
// they were.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "services/common/migrations.h"
#include "services/delivery/dispatch_store.h"
#include "services/schema/migrations.h"
#include "tests/support/pg_test_db.h"

namespace octo::delivery {
namespace {

class BacklogPullStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<testing::TestDatabase>();
    ASSERT_TRUE(ApplyMigrations(db_->conninfo(), schema::Migrations(), schema::kMigrationLockKey).ok());
    conn_ = std::make_unique<pqxx::connection>(db_->conninfo());
    Exec("INSERT INTO suppliers (name, endpoint, contact) VALUES ('S', 'https://s.example/octo', '{}')");
    Exec("INSERT INTO connections (supplier_id, name, max_webhooks) SELECT id, 'c', 100 FROM suppliers");
    auto store = PgDispatchStore::Connect(db_->conninfo());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::string Scalar(const std::string& sql) {
    pqxx::work w(*conn_);
    const pqxx::row r = w.exec1(sql);
    w.commit();
    return r[0].is_null() ? "<null>" : r[0].as<std::string>();
  }
  void Exec(const std::string& sql) {
    pqxx::work w(*conn_);
    w.exec(sql);
    w.commit();
  }

  std::string AddWebhook(const std::string& url) {
    return Scalar(absl::StrCat("INSERT INTO webhooks (connection_id, event, url, secret)"
                               " SELECT id, 'booking_update', '", url,
                               "', 'whsec_' || repeat('A', 43) || '=' FROM connections RETURNING id::text"));
  }
  std::string AddDelivery(const std::string& webhook) {
    const std::string event = Scalar(absl::StrCat(
        "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource, "
        "occurred_at) SELECT id, 'k", ++events_, "', 'booking_update', 'booking', 'b', '{}', now() FROM suppliers "
        "RETURNING id::text"));
    return Scalar(absl::StrCat("INSERT INTO deliveries (event_id, webhook_id) VALUES ('", event, "', '", webhook,
                               "') RETURNING id::text"));
  }

  // Claims everything due; by delivery id.
  std::map<std::string, ClaimedDelivery> ClaimAll() {
    std::map<std::string, ClaimedDelivery> claimed;
    absl::StatusOr<ClaimBatch> batch = store_->Claim(100, absl::Seconds(30));
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) return claimed;
    for (ClaimedDelivery& d : batch->deliveries) claimed.emplace(d.id, std::move(d));
    return claimed;
  }

  // Released unsent, due again after `delay`: into a backlog slot
  // (`parked`) or over its webhook's limits.
  static DeliveryResult Release(const ClaimedDelivery& d, absl::Duration delay, bool parked) {
    DeliveryResult r;
    r.delivery_id = d.id;
    r.webhook_id = d.webhook_id;
    r.lease_us = d.lease_us;
    r.created_us = d.created_us;
    r.attempt_number = d.attempt_count + 1;
    r.action = DeliveryResult::Action::kRelease;
    r.decision.retry_delay = delay;
    r.parked = parked;
    return r;
  }
  // An attempt answered 503, retried after `delay`.
  static DeliveryResult Retry(const ClaimedDelivery& d, absl::Duration delay) {
    DeliveryResult r = Release(d, delay, false);
    r.action = DeliveryResult::Action::kAttempt;
    r.started_at = absl::Now();
    r.duration = absl::Milliseconds(5);
    r.attempt.http_status = 503;
    r.decision.kind = DecisionKind::kRetry;
    return r;
  }

  // Seconds until the delivery is due (negative: due), and whether it is
  // marked parked and leased: "due", "later" (over 30 s away) or "soon".
  std::string Due(const std::string& id) {
    return Scalar(absl::StrCat(
        "SELECT CASE WHEN next_attempt_at <= now() THEN 'due' WHEN next_attempt_at > now() + interval '30 seconds'"
        " THEN 'later' ELSE 'soon' END || CASE WHEN parked_backlog THEN ' parked' ELSE '' END ||"
        " CASE WHEN lease_expires_at > now() THEN ' leased' ELSE '' END FROM deliveries WHERE id = '",
        id, "'"));
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<PgDispatchStore> store_;
  int events_ = 0;
};

TEST_F(BacklogPullStoreTest, OnlyTheDestinationsParkedDeliveriesComeDue) {
  // Two webhooks at the recovered destination, one elsewhere.
  const std::string a = AddWebhook("http://127.0.0.1:9/a");
  const std::string b = AddWebhook("http://127.0.0.1:9/b");
  const std::string c = AddWebhook("http://127.0.0.1:10/c");
  const std::string parked_a = AddDelivery(a), parked_b = AddDelivery(b), parked_c = AddDelivery(c);
  const std::string retry = AddDelivery(a), limited = AddDelivery(a), leased = AddDelivery(a);
  const std::string was_parked = AddDelivery(a);
  std::map<std::string, ClaimedDelivery> claimed = ClaimAll();
  ASSERT_EQ(claimed.size(), 7u);
  ASSERT_TRUE(store_
                  ->WriteResults({Release(claimed[parked_a], absl::Seconds(60), true),
                                  Release(claimed[parked_b], absl::Seconds(60), true),
                                  Release(claimed[parked_c], absl::Seconds(60), true),
                                  Retry(claimed[retry], absl::Seconds(60)),
                                  Release(claimed[limited], absl::Seconds(60), false),
                                  Release(claimed[leased], absl::Seconds(60), true),
                                  Release(claimed[was_parked], absl::Milliseconds(1), true)})
                  .ok());
  EXPECT_EQ(Due(parked_a), "later parked");
  EXPECT_EQ(Due(retry), "later");
  EXPECT_EQ(Due(limited), "later");
  // Parked, then claimed again and retried: the retry's result clears the mark.
  absl::SleepFor(absl::Milliseconds(5));
  std::map<std::string, ClaimedDelivery> again = ClaimAll();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[was_parked].parked) << "came due at its slot: its destination may have more parked";
  ASSERT_TRUE(store_->WriteResults({Retry(again[was_parked], absl::Seconds(60))}).ok());
  EXPECT_EQ(Due(was_parked), "later");
  // Another claimer holds one of the parked deliveries.
  Exec(absl::StrCat("UPDATE deliveries SET lease_expires_at = now() + interval '30 seconds' WHERE id = '", leased,
                    "'"));

  absl::StatusOr<int> pulled = store_->PullForward({a, b}, 100);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(*pulled, 2);
  EXPECT_EQ(Due(parked_a), "due") << "pulled: no longer parked";
  EXPECT_EQ(Due(parked_b), "due");
  EXPECT_EQ(Due(parked_c), "later parked") << "another destination's webhook";
  EXPECT_EQ(Due(retry), "later") << "a retry keeps its backoff";
  EXPECT_EQ(Due(was_parked), "later") << "a retry keeps its backoff";
  EXPECT_EQ(Due(limited), "later") << "a rate-limit deferral keeps its time";
  EXPECT_EQ(Due(leased), "later parked leased") << "a leased delivery is untouched";
  // Pulled deliveries are claimed like any due one; sent, the mark goes.
  std::map<std::string, ClaimedDelivery> pulled_claims = ClaimAll();
  ASSERT_EQ(pulled_claims.size(), 2u);
  ASSERT_TRUE(pulled_claims.contains(parked_a) && pulled_claims.contains(parked_b));
  EXPECT_FALSE(pulled_claims[parked_a].parked);
  DeliveryResult sent = Retry(pulled_claims[parked_a], absl::Seconds(60));
  sent.attempt.http_status = 200;
  sent.decision.kind = DecisionKind::kSucceeded;
  ASSERT_TRUE(store_->WriteResults({sent}).ok());
  EXPECT_EQ(Scalar(absl::StrCat("SELECT state || ' ' || COALESCE(parked_backlog::text, '-') FROM deliveries"
                                " WHERE id = '", parked_a, "'")),
            "succeeded -");
  // Nothing parked is left for them: a second pull finds nothing.
  pulled = store_->PullForward({a, b}, 100);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(*pulled, 0);
}

TEST_F(BacklogPullStoreTest, AtMostTheLimitEarliestSlotFirst) {
  const std::string a = AddWebhook("http://127.0.0.1:9/a");
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(AddDelivery(a));
  std::map<std::string, ClaimedDelivery> claimed = ClaimAll();
  ASSERT_EQ(claimed.size(), 4u);
  std::vector<DeliveryResult> results;
  for (int i = 0; i < 4; ++i) results.push_back(Release(claimed[ids[i]], absl::Seconds(40 + 10 * (3 - i)), true));
  ASSERT_TRUE(store_->WriteResults(results).ok());
  absl::StatusOr<int> pulled = store_->PullForward({a}, 2);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(*pulled, 2);
  // The latest-inserted ones hold the earliest slots (40 s, 50 s).
  EXPECT_EQ(Due(ids[3]), "due");
  EXPECT_EQ(Due(ids[2]), "due");
  EXPECT_EQ(Due(ids[1]), "later parked");
  EXPECT_EQ(Due(ids[0]), "later parked");
  // A webhook id list may be empty: nothing to do.
  pulled = store_->PullForward({}, 2);
  ASSERT_TRUE(pulled.ok());
  EXPECT_EQ(*pulled, 0);
}

}  // namespace
}  // namespace octo::delivery
