// OperatorStore on a real, migrated database: operators and their logins,
// sessions (expiry, logout, deletion of the operator), the supplier
// scoping of connections and webhooks, and the 24-hour health.
#include "services/subscription/operator_store.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/common/crypto.h"
#include "services/subscription/operator_service.h"
#include "tests/integration/pg_fixture.h"

namespace octo::testing {
namespace {

using subscription::OperatorStore;
using ::octo::kHealthLookbackHours;
using ::octo::kHealthWindowHours;
using ::testing::SizeIs;

class OperatorStorePgTest : public PgRepositoryTest {
 protected:
  void SetUp() override {
    PgRepositoryTest::SetUp();
    store_ = std::make_unique<OperatorStore>(pool_.get());
    for (std::string* id : {&supplier_, &other_}) {
      auto s = repo_->CreateSupplier({id == &supplier_ ? "Mine Ltd" : "Theirs Ltd", "https://api.example.com/octo", {}});
      ASSERT_THAT(s, IsOk());
      *id = s->id;
    }
    auto c = repo_->CreateConnection(supplier_, "partner", 10);
    ASSERT_THAT(c, IsOk());
    connection_ = c->id;
    webhook_ = AddWebhook(connection_, "booking_update");
  }
  std::string AddWebhook(const std::string& connection, const std::string& event) {
    auto w = repo_->CreateWebhook({connection, event, "https://x.example/h", true, true, {}, {},
                                   crypto::NewSigningSecret(), std::nullopt, std::nullopt,
                                   std::string(subscription::kWebhookDialect), {}, true});
    EXPECT_THAT(w, IsOk());
    return w.ok() ? w->id : std::string();
  }
  void TearDown() override {
    store_.reset();
    PgRepositoryTest::TearDown();
  }

  struct Attempt {
    int minutes_ago;
    int http_status;  // 0: a transport error
  };
  // A delivery of webhook_ created `created_minutes_ago`, requeued
  // (redelivered or replayed) `requeued_minutes_ago` unless nullopt, in
  // `state`, with `attempts` (numbered in order).
  void AddDelivery(int created_minutes_ago, const std::string& state, const std::vector<Attempt>& attempts,
                   std::optional<int> requeued_minutes_ago = std::nullopt) {
    auto conn = Raw();
    pqxx::work txn(*conn);
    const std::string ago = std::to_string(created_minutes_ago) + " minutes";
    // The week's partitions (migration 0013), for rows written in the past.
    txn.exec_params("SELECT octo_retention_create_partitions(now() - $1::interval, now() - $1::interval)", ago);
    const std::string event = txn.exec_params1(
        "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource, "
        "occurred_at, created_at) VALUES ($1, gen_random_uuid()::text, 'booking_update', 'booking', 'b1', '{}', "
        "now() - $2::interval, now() - $2::interval) RETURNING id::text",
        supplier_, ago)[0].as<std::string>();
    const bool finished = state != "pending";
    const int last = attempts.empty() ? 0 : attempts.back().http_status;
    const std::string delivery = txn.exec_params1(
        "INSERT INTO deliveries (event_id, webhook_id, state, attempt_count, created_at, completed_at, "
        "last_http_status, last_error_class, requeued_at) VALUES ($1, $2, $3, $4, now() - $5::interval, "
        "CASE WHEN $6 THEN now() END, $7, $8, now() - make_interval(mins => $9)) RETURNING id::text",
        event, webhook_, state, static_cast<int>(attempts.size()), ago, finished,
        attempts.empty() || last == 0 ? std::optional<int>() : std::optional<int>(last),
        attempts.empty() || last != 0 ? std::optional<std::string>() : std::optional<std::string>("timeout"),
        requeued_minutes_ago)[0]
        .as<std::string>();
    int number = 0;
    for (const Attempt& a : attempts) {
      txn.exec_params("INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, "
                      "http_status, error_class, delivery_created_at) VALUES ($1, $2, now() - $3::interval, 1, $4, $5,"
                      " (SELECT created_at FROM deliveries WHERE id = $1::uuid))",
                      delivery, ++number, std::to_string(a.minutes_ago) + " minutes",
                      a.http_status == 0 ? std::optional<int>() : std::optional<int>(a.http_status),
                      a.http_status == 0 ? std::optional<std::string>("timeout") : std::optional<std::string>());
    }
    txn.commit();
  }

  std::unique_ptr<OperatorStore> store_;
  std::string supplier_, other_, connection_, webhook_;
};

TEST_F(OperatorStorePgTest, LoginNeedsTheRightNameAndPassword) {
  ASSERT_THAT(store_->CreateOperator(supplier_, "alice", crypto::Sha256("pw")), IsOk());
  EXPECT_THAT(store_->CreateOperator(other_, "alice", crypto::Sha256("x")), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->CreateOperator("00000000-0000-4000-8000-000000000000", "bob", crypto::Sha256("x")),
              StatusIs(absl::StatusCode::kNotFound));
  auto ok = store_->CheckLogin("alice", crypto::Sha256("pw"));
  ASSERT_THAT(ok, IsOk());
  EXPECT_EQ(ok->supplier_id, supplier_);
  EXPECT_THAT(store_->CheckLogin("alice", crypto::Sha256("wrong")), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(store_->CheckLogin("nobody", crypto::Sha256("pw")), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(Count("SELECT count(*) FROM operators WHERE password_hash = decode('" +
                  crypto::HexEncode(crypto::Sha256("pw")) + "', 'hex')"),
            1);
}

TEST_F(OperatorStorePgTest, SessionsExpireEndAtLogoutAndWithTheOperator) {
  auto op = store_->CreateOperator(supplier_, "alice", crypto::Sha256("pw"));
  ASSERT_THAT(op, IsOk());
  const std::string csrf(43, 'a');
  ASSERT_THAT(store_->CreateSession(op->id, crypto::Sha256("live"), csrf, absl::Now() + absl::Hours(1)), IsOk());
  {  // a session that expired an hour ago
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec_params("INSERT INTO operator_sessions (token_hash, operator_id, csrf_token, created_at, expires_at) "
                    "VALUES (decode($1, 'hex'), $2, $3, now() - interval '2 hours', now() - interval '1 hour')",
                    crypto::HexEncode(crypto::Sha256("old")), op->id, csrf);
    txn.commit();
  }
  auto live = store_->GetSession(crypto::Sha256("live"));
  ASSERT_THAT(live, IsOk());
  EXPECT_EQ(live->op.name, "alice");
  EXPECT_EQ(live->csrf_token, csrf);
  EXPECT_THAT(store_->GetSession(crypto::Sha256("old")), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(store_->DeleteSession(crypto::Sha256("live")), IsOk());
  EXPECT_THAT(store_->GetSession(crypto::Sha256("live")), StatusIs(absl::StatusCode::kUnauthenticated));
  ASSERT_THAT(store_->CreateSession(op->id, crypto::Sha256("again"), csrf, absl::Now() + absl::Hours(1)), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM operator_sessions"), 1);  // the expired one was removed
  ASSERT_THAT(store_->DeleteOperator(op->id), IsOk());
  EXPECT_THAT(store_->GetSession(crypto::Sha256("again")), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(OperatorStorePgTest, EverythingIsScopedBySupplier) {
  auto mine = store_->ListConnections(supplier_);
  ASSERT_THAT(mine, IsOk());
  ASSERT_THAT(*mine, SizeIs(1));
  EXPECT_EQ((*mine)[0].webhook_count, 1);
  EXPECT_THAT(*store_->ListConnections(other_), SizeIs(0));
  EXPECT_THAT(*store_->ListWebhooks(supplier_, {}), SizeIs(1));
  EXPECT_THAT(*store_->ListWebhooks(supplier_, {"", "order_update", ""}), SizeIs(0));
  EXPECT_THAT(*store_->ListWebhooks(supplier_, {"", "", "disabled"}), SizeIs(0));
  EXPECT_THAT(*store_->ListWebhooks(other_, {}), SizeIs(0));
  EXPECT_THAT(*store_->ListWebhooks(other_, {connection_, "", ""}), SizeIs(0));
  auto ref = store_->ResolveWebhook(supplier_, webhook_);
  ASSERT_THAT(ref, IsOk());
  EXPECT_EQ(ref->connection_id, connection_);
  const absl::Status foreign = store_->ResolveWebhook(other_, webhook_).status();
  const absl::Status unknown = store_->ResolveWebhook(other_, "00000000-0000-4000-8000-000000000000").status();
  EXPECT_EQ(foreign, unknown);  // the same answer, message included
  auto health = store_->Health({webhook_});
  ASSERT_THAT(health, IsOk());
  EXPECT_EQ(health->at(webhook_).succeeded[0], 0);
}

TEST_F(OperatorStorePgTest, HealthCountsTheLastDaysAttemptsByHour) {
  // Created 30 minutes ago: a failure 20 minutes ago, then a success.
  AddDelivery(30, "succeeded", {{20, 500}, {10, 200}});
  // Created two days ago on the retry schedule: attempts 47 h and 26 h ago
  // are outside the window, the last one, 20 hours ago, is inside.
  AddDelivery(48 * 60, "failed", {{47 * 60, 0}, {26 * 60, 503}, {20 * 60 + 5, 503}});
  // Created ten days ago and redelivered 3 hours ago: pending again after a
  // failed attempt 2 hours ago.
  AddDelivery(240 * 60, "pending", {{240 * 60 - 1, 404}, {125, 0}}, 3 * 60);
  // Pending, never attempted; and the other supplier's webhook sees none of it.
  AddDelivery(60, "pending", {});
  auto theirs_connection = repo_->CreateConnection(other_, "theirs", 10);
  ASSERT_THAT(theirs_connection, IsOk());
  const std::string theirs = AddWebhook(theirs_connection->id, "booking_update");
  auto health = store_->Health({webhook_, theirs});
  ASSERT_THAT(health, IsOk());
  const auto& t = health->at(theirs);
  EXPECT_EQ(t.pending, 0);
  for (int i = 0; i < kHealthWindowHours; ++i) {
    EXPECT_EQ(t.succeeded[i], 0) << i;
    EXPECT_EQ(t.failed[i], 0) << i;
  }
  const auto& h = health->at(webhook_);
  EXPECT_EQ(h.succeeded[0], 1);
  EXPECT_EQ(h.failed[0], 1);
  EXPECT_EQ(h.failed[20], 1);
  EXPECT_EQ(h.failed[2], 1);
  EXPECT_EQ(h.pending, 2);
  int succeeded = 0, failed = 0;
  for (int i = 0; i < 24; ++i) succeeded += h.succeeded[i], failed += h.failed[i];
  EXPECT_EQ(succeeded, 1);
  EXPECT_EQ(failed, 3);
}

TEST_F(OperatorStorePgTest, HealthCountsReplayedDeliveriesAfterTheyFinish) {
  // Created ten days ago, failed then; replayed 5 hours ago, succeeded 4
  // hours ago, and redelivered a day and a half ago, failed 30 hours ago.
  AddDelivery(240 * 60, "succeeded", {{240 * 60 - 1, 500}, {4 * 60 + 10, 200}}, 5 * 60);
  AddDelivery(200 * 60, "failed", {{200 * 60 - 1, 500}, {30 * 60, 500}}, 36 * 60);
  // Requeued before the lookback: its (older) attempts are not read.
  AddDelivery(300 * 60, "failed", {{300 * 60 - 1, 500}}, (kHealthLookbackHours + 1) * 60);
  auto health = store_->Health({webhook_});
  ASSERT_THAT(health, IsOk());
  const auto& h = health->at(webhook_);
  EXPECT_EQ(h.succeeded[4], 1);
  int succeeded = 0, failed = 0;
  for (int i = 0; i < kHealthWindowHours; ++i) succeeded += h.succeeded[i], failed += h.failed[i];
  EXPECT_EQ(succeeded, 1);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(h.pending, 0);
}

TEST_F(OperatorStorePgTest, RequeuedDeliveriesHaveAPartialIndex) {
  // Only requeued deliveries are in it: a delivery never requeued writes nothing to it.
  EXPECT_EQ(Count("SELECT count(*) FROM pg_indexes WHERE indexname = 'deliveries_webhook_requeued_idx' "
                  "AND indexdef LIKE '%(webhook_id, requeued_at) WHERE (requeued_at IS NOT NULL)'"),
            1);
}

TEST_F(OperatorStorePgTest, GetWebhooksByIdReadsOnlyTheSuppliersWebhooks) {
  const std::string second = AddWebhook(connection_, "order_update");
  auto theirs_connection = repo_->CreateConnection(other_, "theirs", 10);
  ASSERT_THAT(theirs_connection, IsOk());
  const std::string theirs = AddWebhook(theirs_connection->id, "booking_update");
  auto mine = repo_->GetWebhooksById(supplier_, {webhook_, second, theirs, "00000000-0000-4000-8000-000000000000"});
  ASSERT_THAT(mine, IsOk());
  ASSERT_THAT(*mine, SizeIs(2));
  std::set<std::string> events;
  for (const auto& w : *mine) events.insert(w.event);
  EXPECT_EQ(events, (std::set<std::string>{"booking_update", "order_update"}));
  // The other supplier's webhook (and its secret) is not read for us, nor ours for them.
  auto foreign = repo_->GetWebhooksById(other_, {webhook_, second});
  ASSERT_THAT(foreign, IsOk());
  EXPECT_THAT(*foreign, SizeIs(0));
  EXPECT_THAT(*repo_->GetWebhooksById(other_, {theirs}), SizeIs(1));
  EXPECT_THAT(*repo_->GetWebhooksById(supplier_, {}), SizeIs(0));
  EXPECT_THAT(repo_->GetWebhooksById(supplier_, {"not-a-uuid"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(OperatorStorePgTest, ListSupplierWebhooksListsTheSuppliersExistingWebhooks) {
  subscription::OperatorServiceImpl service(store_.get(), repo_.get(), absl::Hours(1));
  const std::string second = AddWebhook(connection_, "order_update");
  auto theirs_connection = repo_->CreateConnection(other_, "theirs", 10);
  ASSERT_THAT(theirs_connection, IsOk());
  const std::string theirs = AddWebhook(theirs_connection->id, "booking_update");
  AddDelivery(30, "succeeded", {{20, 200}});
  // supplier -> {webhook id -> attempts succeeded in 24 h}
  auto list = [&](const std::string& supplier) {
    webhooks::v1::ListSupplierWebhooksRequest request;
    request.set_supplier_id(supplier);
    webhooks::v1::ListSupplierWebhooksResponse response;
    const grpc::Status status = service.ListSupplierWebhooks(nullptr, &request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<std::string, int> out;
    for (const auto& w : response.webhooks()) out[w.webhook().id()] = w.health().attempts_succeeded_24h();
    return out;
  };
  using Listed = std::map<std::string, int>;
  EXPECT_EQ(list(supplier_), (Listed{{webhook_, 1}, {second, 0}}));
  EXPECT_EQ(list(other_), (Listed{{theirs, 0}}));
  ASSERT_THAT(repo_->DeleteWebhook(connection_, second), IsOk());
  EXPECT_EQ(list(supplier_), (Listed{{webhook_, 1}}));
  EXPECT_EQ(list(other_), (Listed{{theirs, 0}}));
}

TEST_F(OperatorStorePgTest, AttemptsHaveNoIndexBesideTheirPrimaryKey) {
  // Every delivery writes an attempt; the health reads them through their
  // deliveries instead of an index on started_at.
  EXPECT_EQ(Count("SELECT count(*) FROM pg_indexes WHERE tablename = 'delivery_attempts'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM pg_indexes WHERE indexname = 'delivery_attempts_pkey'"), 1);
}

}  // namespace
}  // namespace octo::testing
