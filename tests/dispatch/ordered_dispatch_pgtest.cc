// Ordered delivery through the whole dispatcher (claim loop, sender, result
// writer) against a real PostgreSQL (OCTO_TEST_PG) and a receiver on
// 127.0.0.1, with a poll interval far longer than a send: a resource's next
// delivery must go out as soon as the one before it is written, not at the
// next poll. Events are published through the real enqueue (PgEventStore),
// one transaction each, as PublishEvent stores them.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "octo/webhooks/v1/events.pb.h"
#include "services/common/crypto.h"
#include "services/common/migrations.h"
#include "services/common/pg_pool.h"
#include "services/delivery/curl_transport.h"
#include "services/delivery/dispatcher.h"
#include "services/delivery/event_validation.h"
#include "services/delivery/store.h"
#include "services/schema/migrations.h"
#include "tests/dispatch/http_receiver.h"
#include "tests/fakes/claims.h"
#include "tests/support/pg_test_db.h"

namespace octo::delivery {
namespace {

using octo::testing::HttpReceiver;
using octo::testing::ReceivedRequest;
using octo::testing::Reply;
using octo::testing::TestDatabase;
using std::chrono::milliseconds;

class OrderedDispatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    absl::Status migrated = ApplyMigrations(db_->conninfo(), schema::Migrations(), schema::kMigrationLockKey);
    ASSERT_TRUE(migrated.ok()) << migrated;
    conn_ = std::make_unique<pqxx::connection>(db_->conninfo());
    supplier_id_ = Scalar(
        "INSERT INTO suppliers (name, endpoint, contact) VALUES ('Tours Ltd', 'https://api.tours.example/octo', '{}')"
        " RETURNING id::text");
    connection_id_ = Scalar(absl::StrCat("INSERT INTO connections (supplier_id, name, max_webhooks) VALUES ('",
                                         supplier_id_, "', 'partner', 100) RETURNING id::text"));
    absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(db_->conninfo(), 2);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    events_ = std::make_unique<PgEventStore>(pool_.get());
  }

  void TearDown() override {
    if (dispatcher_ != nullptr) dispatcher_->Stop();
    dispatcher_.reset();
    events_.reset();
    pool_.reset();
    conn_.reset();
    db_.reset();
  }

  std::string Scalar(const std::string& sql) {
    pqxx::work w(*conn_);
    const pqxx::row r = w.exec1(sql);
    w.commit();
    return r[0].is_null() ? "" : r[0].as<std::string>();
  }

  std::string AddOrderedWebhook(const std::string& url) {
    pqxx::work txn(*conn_);
    const std::string id =
        txn.exec_params1("INSERT INTO webhooks (connection_id, event, url, secret, ordered) VALUES "
                         "($1::uuid, 'booking_update', $2, $3, true) RETURNING id::text",
                         connection_id_, url, crypto::NewSigningSecret())[0]
            .as<std::string>();
    txn.commit();
    return id;
  }

  // Update `n` of booking `key`, occurred `occurred_ms` after a fixed
  // time, published (one enqueue transaction, as PublishEvent stores it).
  void Publish(const std::string& key, int n, int occurred_ms) {
    ::octo::webhooks::v1::PublishEventRequest e;
    e.set_idempotency_key(absl::StrCat(key, "-", n));
    e.set_supplier_id(supplier_id_);
    e.set_event("booking_update");
    e.set_resource_json(absl::StrCat(R"({"uuid":")", key, R"(","n":)", n, "}"));
    e.mutable_occurred_at()->set_seconds(1767323045 + occurred_ms / 1000);
    e.mutable_occurred_at()->set_nanos((occurred_ms % 1000) * 1000000);
    absl::StatusOr<ValidEvent> valid = ValidateEvent(e);
    ASSERT_TRUE(valid.ok()) << valid.status();
    EventToStore s;
    s.supplier_id = e.supplier_id();
    s.idempotency_key = e.idempotency_key();
    s.event = e.event();
    s.resource_json = e.resource_json();
    s.valid = &*valid;
    EnqueueResult stored = events_->Enqueue({s});
    ASSERT_TRUE(stored.ok()) << stored.status();
    ASSERT_EQ((*stored)[0].delivery_count, 1);
  }

  // `listen`: with the LISTEN source, as Start builds it; without, the
  // claim loop hears only what this process does (and the poll).
  void StartDispatcher(bool listen = true) {
    DispatcherOptions o;
    o.database_url = db_->conninfo();
    o.claim_batch = 50;
    o.max_in_flight = 100;
    o.request_timeout = milliseconds(2000);
    o.lease_margin = milliseconds(2000);
    o.poll_interval = milliseconds(5000);  // only a NOTIFY or a result wakes it sooner
    o.destination_policy = *DestinationPolicy::Parse("127.0.0.0/8,::1/128");
    absl::StatusOr<std::unique_ptr<Dispatcher>> d = listen ? Dispatcher::Start(o) : Assemble(o);
    ASSERT_TRUE(d.ok()) << d.status();
    dispatcher_ = std::move(*d);
    if (listen) {
      ASSERT_TRUE(WaitListening());
    }
    absl::SleepFor(absl::Milliseconds(100));  // past the claim made at start
  }

  // What Dispatcher::Start builds, but no LISTEN connection.
  static absl::StatusOr<std::unique_ptr<Dispatcher>> Assemble(const DispatcherOptions& o) {
    DispatcherParts parts;
    absl::StatusOr<std::unique_ptr<PgDispatchStore>> claims = PgDispatchStore::Connect(o.database_url);
    absl::StatusOr<std::unique_ptr<PgDispatchStore>> results = PgDispatchStore::Connect(o.database_url);
    if (!claims.ok()) return claims.status();
    if (!results.ok()) return results.status();
    parts.claim_store = std::move(*claims);
    parts.write_stores.push_back(std::move(*results));
    CurlTransportOptions t;
    t.max_in_flight = o.max_in_flight;
    t.destination_policy = o.destination_policy;
    t.request_timeout = o.request_timeout;
    absl::StatusOr<std::unique_ptr<HttpTransport>> transport = NewCurlTransport(t);
    if (!transport.ok()) return transport.status();
    parts.transport = std::move(*transport);
    return Dispatcher::Assemble(o, std::move(parts));
  }

  // The webhook-sequence headers of what `receiver` got, in arrival order,
  // and when each arrived after `since`.
  static std::string Arrivals(const std::vector<ReceivedRequest>& got, absl::Time since) {
    std::string out;
    for (const ReceivedRequest& r : got) {
      absl::StrAppend(&out, out.empty() ? "" : ", ", "#", r.Header("webhook-sequence").value_or("?"), " after ",
                      absl::FormatDuration(r.received_at - since));
    }
    return out;
  }

  bool WaitListening() {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (Scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                  " AND query ILIKE 'LISTEN%'") == "0") {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<PgEventStore> events_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::string supplier_id_;
  std::string connection_id_;
};

// Three updates of one booking published back to back, in the order they
// occurred: each head's result makes the next one due (it waited at
// 'infinity') and NOTIFYs; they arrive in a few round trips, in order.
TEST_F(OrderedDispatchTest, UpdatesPublishedInTheirOrderGoOutOneAfterAnotherWithoutWaitingForThePoll) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Reply(200, "ok"); });
  AddOrderedWebhook(receiver.Url("/ordered"));
  StartDispatcher();
  const absl::Time published = absl::Now();
  for (int n = 1; n <= 3; ++n) Publish("b-1", n, n);
  ASSERT_TRUE(receiver.WaitForRequests(3, absl::Seconds(15)));
  const std::vector<ReceivedRequest> got = receiver.Requests();
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i].Header("webhook-sequence"), std::to_string(i + 1)) << i;
  RecordProperty("arrivals", Arrivals(got, published));
  EXPECT_LT(got[2].received_at - published, absl::Seconds(2)) << Arrivals(got, published);
}

// Updates that occurred earlier, published while the first is being sent
// (a publisher catching up newest first): each is the resource's earliest
// pending delivery when it is stored, so the enqueue makes it due at once,
// and the claims leave it while the resource's send runs. When that send's
// result frees the resource, the next delivery is due already: nothing is
// promoted, and before the wake on a freed resource (in-process, and a
// NOTIFY for the other replicas) it waited for the poll, 5 s per delivery.
TEST_F(OrderedDispatchTest, AFreedResourceWhoseNextDeliveryIsDueAlreadyIsClaimedAtOnceNotAtThePoll) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest& r) {
    // The first send takes a while: the later updates are published meanwhile.
    return r.Header("webhook-sequence") == "1" ? octo::testing::Delayed(absl::Milliseconds(300)) : Reply(200, "ok");
  });
  AddOrderedWebhook(receiver.Url("/ordered"));
  StartDispatcher();
  const absl::Time published = absl::Now();
  Publish("b-2", 1, 3000);
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(10)));
  Publish("b-2", 2, 2000);
  Publish("b-2", 3, 1000);
  ASSERT_TRUE(receiver.WaitForRequests(3, absl::Seconds(15)));
  const std::vector<ReceivedRequest> got = receiver.Requests();
  ASSERT_EQ(got.size(), 3u);
  // After the first (in flight when they were published): occurred_at order.
  EXPECT_EQ(got[0].Header("webhook-sequence"), "1");
  EXPECT_EQ(got[1].Header("webhook-sequence"), "3");
  EXPECT_EQ(got[2].Header("webhook-sequence"), "2");
  RecordProperty("arrivals", Arrivals(got, published));
  EXPECT_LT(got[2].received_at - published, absl::Seconds(2)) << Arrivals(got, published);
}

// The same without LISTEN: the process that wrote the result claims the
// resource's next delivery at once (ClaimScheduler::Finished), whatever
// reaches it from PostgreSQL.
TEST_F(OrderedDispatchTest, TheProcessThatFreedTheResourceClaimsItsNextDeliveryWithoutANotify) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest& r) {
    return r.Header("webhook-sequence") == "1" ? octo::testing::Delayed(absl::Milliseconds(300)) : Reply(200, "ok");
  });
  AddOrderedWebhook(receiver.Url("/ordered"));
  const absl::Time published = absl::Now();
  Publish("b-3", 1, 3000);  // claimed by the claim made at start
  StartDispatcher(/*listen=*/false);
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(10)));
  Publish("b-3", 2, 2000);
  Publish("b-3", 3, 1000);
  ASSERT_TRUE(receiver.WaitForRequests(3, absl::Seconds(15)));
  const std::vector<ReceivedRequest> got = receiver.Requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].Header("webhook-sequence"), "3");
  EXPECT_EQ(got[2].Header("webhook-sequence"), "2");
  RecordProperty("arrivals", Arrivals(got, published));
  EXPECT_LT(got[2].received_at - published, absl::Seconds(2)) << Arrivals(got, published);
}

// The other replicas: the result that frees a resource whose next delivery
// is due already NOTIFYs, as a promotion does (store level, no dispatcher).
TEST_F(OrderedDispatchTest, AResultThatFreesAResourceWithADueDeliveryNotifies) {
  AddOrderedWebhook("http://127.0.0.1:9/ordered");
  Publish("b-4", 1, 3000);
  absl::StatusOr<std::unique_ptr<PgDispatchStore>> store = PgDispatchStore::Connect(db_->conninfo());
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<ClaimBatch> head = (*store)->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_EQ(head->deliveries.size(), 1u);
  Publish("b-4", 2, 1000);  // occurred earlier: due at once, held by the resource's send
  std::atomic<int> notified{0};
  NotificationListener listener(db_->conninfo(), kDeliveryChannel, [&] { ++notified; });
  // The listener calls once when it starts listening (what it may have missed).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (notified.load() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_GT(notified.load(), 0) << "the listener never started";
  absl::SleepFor(absl::Milliseconds(300));
  const int before = notified.load();
  ASSERT_TRUE((*store)->WriteResults({testing::AttemptResult(head->deliveries[0], 200, DecisionKind::kSucceeded)}).ok());
  const absl::Time wait_until = absl::Now() + absl::Seconds(3);
  while (notified.load() == before && absl::Now() < wait_until) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_GT(notified.load(), before) << "no NOTIFY for the freed resource's due delivery";
  absl::StatusOr<ClaimBatch> next = (*store)->Claim(10, absl::Seconds(30));
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->deliveries.size(), 1u);
  EXPECT_EQ(next->deliveries[0].sequence, 2);
}

}  // namespace
}  // namespace octo::delivery
