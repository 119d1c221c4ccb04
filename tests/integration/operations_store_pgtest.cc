// PgOperationsStore (services/delivery/operations_store.h) on a real
// database: scoping by connection, the cursor, redelivery of a delivery in
// flight, concurrent replays, what the test ping stores, the pages of
// failed and cancelled deliveries (their own statement and index), a
// delivery's attempts read with their partition key, and the attempt log's
// reads writing nothing (no row lock: no transaction id, no WAL flush).
#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/delivery/operations_store.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {
namespace {

using delivery::DeliveryCursor;
using delivery::DecodeDeliveryCursor;
using delivery::EncodeDeliveryCursor;
using delivery::PgOperationsStore;

class OperationsStoreTest : public DeliveryTest {
 protected:
  void SetUp() override {
    DeliveryTest::SetUp();
    if (HasFatalFailure()) return;
    auto ops = PgOperationsStore::Create(pool_.get());
    ASSERT_THAT(ops, IsOk());
    ops_ = *std::move(ops);
    webhook_ = NewWebhook(connection_a_);
  }

  // `n` booking events delivered to webhook_, then marked failed (as the
  // dispatcher leaves a delivery whose attempts ran out).
  void FailedDeliveries(int n) {
    for (int i = 0; i < n; ++i) {
      pb::PublishEventResponse result;
      ASSERT_THAT(EnqueueOne(Booking(absl::StrCat("k-", i, "-", webhook_),
                                     absl::StrCat(R"({"uuid":"b-)", i, R"("})")),
                             &result),
                  GrpcIsOk());
    }
    Exec(absl::StrCat("UPDATE deliveries SET state = 'failed', completed_at = now(), attempt_count = 1, "
                      "last_http_status = 500 WHERE webhook_id = '", webhook_, "'"));
  }

  void Exec(const std::string& sql) {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec0(sql);
    txn.commit();
  }

  std::unique_ptr<PgOperationsStore> ops_;
  std::string webhook_;
};

TEST_F(OperationsStoreTest, CursorRoundTripsAndRefusesAnythingElse) {
  const DeliveryCursor c{1764064800123456, "9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e"};
  absl::StatusOr<DeliveryCursor> back = DecodeDeliveryCursor(EncodeDeliveryCursor(c));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->create_time_micros, c.create_time_micros);
  EXPECT_EQ(back->id, c.id);
  for (const std::string& bad : {std::string(""), std::string("AAAA"), std::string("!!"),
                                 EncodeDeliveryCursor({1, "not-a-uuid"}), std::string(300, 'A'),
                                 // Forged times the query's arithmetic could not take.
                                 EncodeDeliveryCursor({-1, c.id}),
                                 EncodeDeliveryCursor({std::numeric_limits<int64_t>::max(), c.id}),
                                 EncodeDeliveryCursor({253402300800000000, c.id})}) {
    EXPECT_EQ(DecodeDeliveryCursor(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(OperationsStoreTest, AnotherConnectionFindsNothing) {
  FailedDeliveries(1);
  const std::string delivery = Text(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = '", webhook_, "'"));
  EXPECT_EQ(ops_->List(connection_b_, webhook_, 10, std::nullopt, {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ops_->Get(connection_b_, webhook_, delivery).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ops_->Redeliver(connection_b_, webhook_, delivery).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ops_->Replay(connection_b_, webhook_, absl::UnixEpoch(), 10).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ops_->SendTest(connection_b_, webhook_).status().code(), absl::StatusCode::kNotFound);
  // A delivery of another webhook of the same connection is not this one's.
  const std::string other = NewWebhook(connection_a_);
  EXPECT_EQ(ops_->Get(connection_a_, other, delivery).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Text(absl::StrCat("SELECT state FROM deliveries WHERE id = '", delivery, "'")), "failed");
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE event = 'webhook_test'"), 0);
}

TEST_F(OperationsStoreTest, RedeliveringADeliveryInFlightWaitsForItsResult) {
  FailedDeliveries(1);
  const std::string delivery = Text(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = '", webhook_, "'"));
  // A dispatcher holds it: pending, leased for a minute, due later.
  Exec(absl::StrCat("UPDATE deliveries SET state = 'pending', completed_at = NULL, "
                    "lease_expires_at = now() + interval '1 minute', next_attempt_at = now() + interval '1 hour' "
                    "WHERE id = '", delivery, "'"));
  absl::StatusOr<pb::Delivery> r = ops_->Redeliver(connection_a_, webhook_, delivery);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->state(), pb::DELIVERY_STATE_PENDING);
  // The running send keeps its lease, so nobody can claim the delivery
  // while it runs (one request in flight per webhook-id); its result write
  // makes it due again.
  EXPECT_EQ(Text(absl::StrCat("SELECT (lease_expires_at IS NULL)::text || ' ' || redeliver_requested::text"
                              " FROM deliveries WHERE id = '", delivery, "'")),
            "false true");
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = '", webhook_, "'")), 1);

  // A lease that ran out (its process died) is taken away: due now.
  Exec(absl::StrCat("UPDATE deliveries SET lease_expires_at = now() - interval '1 second' WHERE id = '", delivery, "'"));
  ASSERT_THAT(ops_->Redeliver(connection_a_, webhook_, delivery), IsOk());
  EXPECT_EQ(Text(absl::StrCat("SELECT (lease_expires_at IS NULL)::text || ' ' || (next_attempt_at <= now())::text"
                              " FROM deliveries WHERE id = '", delivery, "'")),
            "true true");
}

// A constraint our own statement breaks is our bug: INTERNAL, never a
// client-facing ALREADY_EXISTS or INVALID_ARGUMENT.
TEST_F(OperationsStoreTest, ConstraintErrorsOfItsStatementsAreInternal) {
  FailedDeliveries(1);
  const std::string delivery = Text(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = '", webhook_, "'"));
  for (const char* errcode : {"unique_violation", "check_violation", "invalid_text_representation"}) {
    Exec(absl::StrCat(
        "CREATE OR REPLACE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '", errcode, "'; END $$"));
    Exec("CREATE OR REPLACE TRIGGER test_refuse BEFORE UPDATE OR INSERT ON deliveries"
         " FOR EACH ROW EXECUTE FUNCTION test_refuse()");
    EXPECT_EQ(ops_->Redeliver(connection_a_, webhook_, delivery).status().code(),
              absl::StatusCode::kInternal) << errcode;
    EXPECT_EQ(ops_->Replay(connection_a_, webhook_, absl::Now() - absl::Hours(1), 10).status().code(),
              absl::StatusCode::kInternal) << errcode;
    EXPECT_EQ(ops_->SendTest(connection_a_, webhook_).status().code(), absl::StatusCode::kInternal)
        << errcode;
  }
}

TEST_F(OperationsStoreTest, ConcurrentReplaysNeverCountADeliveryTwice) {
  FailedDeliveries(25);
  std::atomic<int> queued{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 4; ++round) {
        absl::StatusOr<pb::ReplayDeliveriesResponse> r =
            ops_->Replay(connection_a_, webhook_, absl::Now() - absl::Hours(1), 3);
        if (r.ok()) {
          queued += r->queued_count();
        } else {
          ++errors;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  // 16 calls of at most 3 could take 48: exactly the 25 were queued, once each.
  EXPECT_EQ(queued.load(), 25);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = '", webhook_,
                               "' AND state = 'pending' AND completed_at IS NULL AND lease_expires_at IS NULL")),
            25);
  absl::StatusOr<pb::ReplayDeliveriesResponse> again =
      ops_->Replay(connection_a_, webhook_, absl::Now() - absl::Hours(1), 1000);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->queued_count(), 0);
  EXPECT_FALSE(again->more());
}

TEST_F(OperationsStoreTest, ReplayAlsoQueuesDeliveriesCancelledWhileTheWebhookWasDisabled) {
  FailedDeliveries(3);
  Exec(absl::StrCat("UPDATE deliveries SET state = 'cancelled', attempt_count = 0, last_http_status = NULL "
                    "WHERE webhook_id = '", webhook_, "' AND id = (SELECT min(id::text)::uuid FROM deliveries "
                    "WHERE webhook_id = '", webhook_, "')"));
  Exec(absl::StrCat("UPDATE deliveries SET state = 'succeeded' WHERE webhook_id = '", webhook_,
                    "' AND id = (SELECT max(id::text)::uuid FROM deliveries WHERE webhook_id = '", webhook_, "')"));
  absl::StatusOr<pb::ReplayDeliveriesResponse> r =
      ops_->Replay(connection_a_, webhook_, absl::Now() - absl::Hours(1), 1000);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->queued_count(), 2);  // the failed one and the cancelled one, not the succeeded one
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = '", webhook_,
                               "' AND state = 'pending'")),
            2);
}

TEST_F(OperationsStoreTest, RedeliverAndReplayRecordWhenTheyRequeued) {
  // The dashboard's health finds an old delivery's new attempts by requeued_at.
  FailedDeliveries(3);
  const std::string where = absl::StrCat(" FROM deliveries WHERE webhook_id = '", webhook_, "'");
  EXPECT_EQ(Count("SELECT count(*)" + where + " AND requeued_at IS NOT NULL"), 0);
  std::string first;
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    first = txn.exec1("SELECT min(id::text)" + where)[0].as<std::string>();
  }
  ASSERT_THAT(ops_->Redeliver(connection_a_, webhook_, first), IsOk());
  EXPECT_EQ(Count("SELECT count(*)" + where + " AND requeued_at > now() - interval '1 minute'"), 1);
  ASSERT_THAT(ops_->Replay(connection_a_, webhook_, absl::Now() - absl::Hours(1), 1000), IsOk());
  EXPECT_EQ(Count("SELECT count(*)" + where + " AND requeued_at > now() - interval '1 minute'"), 3);
}

TEST_F(OperationsStoreTest, TestPingStoresAnEventAndADeliveryButNoSnapshot) {
  const std::string availability = NewWebhook(connection_a_, "availability_update");
  const long long snapshots = Count("SELECT count(*) FROM resource_snapshots");
  absl::StatusOr<pb::Delivery> d = ops_->SendTest(connection_a_, availability);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->event(), "webhook_test");
  EXPECT_EQ(d->state(), pb::DELIVERY_STATE_PENDING);
  EXPECT_EQ(d->webhook_message_id().size(), 4u + 32u);
  EXPECT_EQ(Text(absl::StrCat("SELECT e.resource_kind || ' ' || e.connection_id || ' ' || "
                              "(e.resource->>'test') FROM events e JOIN deliveries d ON d.event_id = e.id "
                              "WHERE d.id = '", d->id(), "'")),
            absl::StrCat("availability ", connection_a_, " true"));
  EXPECT_EQ(Count("SELECT count(*) FROM resource_snapshots"), snapshots);
  // Twice: two pings, two events.
  ASSERT_THAT(ops_->SendTest(connection_a_, availability), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE event = 'webhook_test'"), 2);
}

// The "failed" and "cancelled" pages are answered by their own statement
// (kListUnsent, along deliveries_unsent_idx): the same rows, order and
// cursor as the general one, never a delivery of another state.
TEST_F(OperationsStoreTest, FailedAndCancelledPagesListOnlyThoseNewestFirst) {
  FailedDeliveries(7);
  const std::string where = absl::StrCat(" FROM deliveries WHERE webhook_id = '", webhook_, "'");
  // 7 deliveries created a second apart: 2 succeeded, 2 cancelled, 3 failed.
  Exec(absl::StrCat("UPDATE deliveries d SET created_at = now() - n * interval '1 second',"
                    " state = CASE WHEN n < 2 THEN 'succeeded' WHEN n < 4 THEN 'cancelled' ELSE 'failed' END,"
                    " last_http_status = CASE WHEN n < 4 AND n >= 2 THEN NULL ELSE d.last_http_status END,"
                    " last_error_class = CASE WHEN n < 4 AND n >= 2 THEN 'http' END,"
                    " attempt_count = 1"
                    " FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n", where, ") o WHERE d.id = o.id"));
  ASSERT_EQ(Count("SELECT count(*)" + where + " AND state = 'failed'"), 3);
  const auto ids = [&](const std::string& state) {
    std::vector<std::string> out;
    auto conn = Raw();
    pqxx::work txn(*conn);
    for (const auto& r : txn.exec("SELECT id::text" + where + " AND state = '" + state +
                                  "' ORDER BY created_at DESC, id DESC")) {
      out.push_back(r[0].as<std::string>());
    }
    return out;
  };
  for (const std::string state : {"failed", "cancelled", "succeeded"}) {
    std::vector<std::string> listed;
    std::optional<DeliveryCursor> after;
    for (int page = 0; page < 5; ++page) {  // pages of 2
      absl::StatusOr<pb::ListDeliveriesResponse> r =
          ops_->List(connection_a_, webhook_, 2, after, {.state = state, .event = ""});
      ASSERT_THAT(r, IsOk());
      for (const pb::Delivery& d : r->deliveries()) listed.push_back(d.id());
      if (r->next_page_token().empty()) break;
      absl::StatusOr<DeliveryCursor> c = DecodeDeliveryCursor(r->next_page_token());
      ASSERT_THAT(c, IsOk());
      after = *c;
    }
    EXPECT_EQ(listed, ids(state)) << state;
  }
  // Filtered by event too.
  absl::StatusOr<pb::ListDeliveriesResponse> none =
      ops_->List(connection_a_, webhook_, 10, std::nullopt, {.state = "failed", .event = "order_update"});
  ASSERT_THAT(none, IsOk());
  EXPECT_EQ(none->deliveries_size(), 0);
}

// GetDelivery reads the attempts with the delivery's created_at (their
// partition key): a delivery of an older week gets its own attempts.
TEST_F(OperationsStoreTest, GetReadsTheAttemptsOfADeliveryOfAnOlderWeek) {
  FailedDeliveries(2);
  const std::string where = absl::StrCat(" FROM deliveries WHERE webhook_id = '", webhook_, "'");
  const std::string old = Text("SELECT min(id::text)" + where);
  const std::string recent = Text("SELECT max(id::text)" + where);
  // Moved three weeks back (rows move between partitions on update), with
  // two attempts; the other delivery keeps one attempt in this week.
  Exec("DO $$ BEGIN PERFORM octo_retention_create_partitions(now() - interval '22 days', now()); END $$");
  Exec(absl::StrCat("UPDATE deliveries SET created_at = now() - interval '21 days', attempt_count = 2"
                    " WHERE id = '", old, "'"));
  Exec(absl::StrCat("INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, http_status,"
                    " delivery_created_at) SELECT id, n, created_at, 5, 500, created_at"
                    " FROM deliveries, generate_series(1, 2) n WHERE id = '", old, "'"));
  Exec(absl::StrCat("INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, http_status,"
                    " delivery_created_at) SELECT id, 1, created_at, 5, 500, created_at FROM deliveries WHERE id = '",
                    recent, "'"));
  absl::StatusOr<pb::Delivery> d = ops_->Get(connection_a_, webhook_, old);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->attempts_size(), 2);
  d = ops_->Get(connection_a_, webhook_, recent);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->attempts_size(), 1);
}

// The attempt log's reads lock nothing: a row lock would give each read a
// transaction id and a WAL record, and make its COMMIT wait for an fsync.
// The webhook's row keeps the xmax it had (the enqueue's webhook lock
// set one), and a read answers while another transaction holds the row FOR
// UPDATE (an operator updating the webhook).
TEST_F(OperationsStoreTest, AttemptLogReadsLeaveTheWebhookRowUnlocked) {
  FailedDeliveries(2);
  const std::string delivery =
      Text(absl::StrCat("SELECT min(id::text) FROM deliveries WHERE webhook_id = '", webhook_, "'"));
  const std::string xmax_sql = absl::StrCat("SELECT xmax::text FROM webhooks WHERE id = '", webhook_, "'");
  const std::string xmax = Text(xmax_sql);
  ASSERT_THAT(ops_->List(connection_a_, webhook_, 10, std::nullopt, {}), IsOk());
  ASSERT_THAT(ops_->List(connection_a_, webhook_, 10, std::nullopt, {.state = "failed", .event = ""}), IsOk());
  ASSERT_THAT(ops_->Get(connection_a_, webhook_, delivery), IsOk());
  EXPECT_EQ(Text(xmax_sql), xmax);

  auto holder = Raw();
  pqxx::work locked(*holder);
  locked.exec(absl::StrCat("SELECT 1 FROM webhooks WHERE id = '", webhook_, "' FOR UPDATE"));
  auto reads = std::async(std::launch::async, [&] {
    absl::StatusOr<pb::ListDeliveriesResponse> page = ops_->List(connection_a_, webhook_, 10, std::nullopt, {});
    absl::StatusOr<pb::Delivery> one = ops_->Get(connection_a_, webhook_, delivery);
    return page.ok() && page->deliveries_size() == 2 && one.ok() && one->id() == delivery;
  });
  const bool answered = reads.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  locked.abort();  // lets a blocked read finish either way
  EXPECT_TRUE(answered) << "a read waited for the webhook's row lock";
  EXPECT_TRUE(reads.get());
}

// The attempt log's statements run with generic plans: planned once per
// connection, not at every call (a custom plan of the page's join over every
// weekly partition cost more than running it).
TEST_F(OperationsStoreTest, AttemptLogReadsAreNotReplannedAtEachCall) {
  FailedDeliveries(2);
  const std::string delivery =
      Text(absl::StrCat("SELECT min(id::text) FROM deliveries WHERE webhook_id = '", webhook_, "'"));
  for (int i = 0; i < 8; ++i) {  // the plan cache's custom plans are its first 5
    ASSERT_THAT(ops_->List(connection_a_, webhook_, 10, std::nullopt, {}), IsOk());
    ASSERT_THAT(ops_->Get(connection_a_, webhook_, delivery), IsOk());
  }
  // The connection the calls used: the pool hands out its most recent one.
  absl::StatusOr<PgPool::Lease> lease = pool_->Acquire();
  ASSERT_THAT(lease, IsOk());
  pqxx::nontransaction tx(lease->conn());
  for (const char* statement : {"ops_list_deliveries", "ops_get_delivery", "ops_delivery_attempts"}) {
    const pqxx::row plans = tx.exec_params1(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1", statement);
    EXPECT_EQ(plans[0].as<int>(), 8) << statement;
    EXPECT_EQ(plans[1].as<int>(), 0) << statement;
  }
  // The setting is the transaction's (SET LOCAL): the pool's connection keeps its own.
  EXPECT_EQ(tx.exec1("SHOW plan_cache_mode")[0].as<std::string>(), "auto");
}

}  // namespace
}  // namespace octo::testing
