#pragma once
// The fixture of the dispatch store's fault tests (dispatch_store_faults_pgtest.cc,
// unreported_claims_pgtest.cc): a fresh database (OCTO_TEST_PG) with one
// webhook and two due deliveries of it, a PgDispatchStore quarantining after
// 3 claims without a result, and SQL helpers. Leases are expired by SQL, not
// by waiting.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "services/common/migrations.h"
#include "services/delivery/dispatch_store.h"
#include "services/schema/migrations.h"
#include "tests/support/pg_test_db.h"

namespace octo::delivery {

class DispatchStoreFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<testing::TestDatabase>();
    ASSERT_TRUE(ApplyMigrations(db_->conninfo(), schema::Migrations(), schema::kMigrationLockKey).ok());
    conn_ = std::make_unique<pqxx::connection>(db_->conninfo());
    Exec("INSERT INTO suppliers (name, endpoint, contact) VALUES ('S', 'https://s.example/octo', '{}')");
    Exec("INSERT INTO connections (supplier_id, name, max_webhooks) SELECT id, 'c', 100 FROM suppliers");
    webhook_ = Scalar(
        "INSERT INTO webhooks (connection_id, event, url, secret) SELECT id, 'booking_update', "
        "'http://127.0.0.1:9/x', 'whsec_' || repeat('A', 43) || '=' FROM connections RETURNING id::text");
    for (int i = 0; i < 2; ++i) {
      const std::string event = Scalar(absl::StrCat(
          "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource, "
          "occurred_at) SELECT id, 'k", i, "', 'booking_update', 'booking', 'b", i,
          "', '{}', now() FROM suppliers RETURNING id::text"));
      ids_.push_back(Scalar(absl::StrCat("INSERT INTO deliveries (event_id, webhook_id) VALUES ('", event, "', '",
                                         webhook_, "') RETURNING id::text")));
    }
    auto store = PgDispatchStore::Connect(db_->conninfo(), Options());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  static DispatchStoreOptions Options() {
    DispatchStoreOptions o;
    o.max_unreported_claims = 3;
    o.lock_timeout = absl::Milliseconds(200);
    return o;
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
  // A new due delivery of the webhook, of a new event (`key` unique).
  std::string AddDelivery(const std::string& key) {
    const std::string event = Scalar(absl::StrCat(
        "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource, occurred_at)"
        " SELECT id, 'k-", key, "', 'booking_update', 'booking', 'b-", key, "', '{}', now() FROM suppliers"
        " RETURNING id::text"));
    return Scalar(absl::StrCat("INSERT INTO deliveries (event_id, webhook_id) VALUES ('", event, "', '", webhook_,
                               "') RETURNING id::text"));
  }
  // The lease of every delivery ran out (its process is gone).
  void ExpireLeases() { Exec("UPDATE deliveries SET lease_expires_at = now() - interval '1 second' WHERE lease_expires_at IS NOT NULL"); }

  ClaimedDelivery ClaimOne(const std::string& id) {
    absl::StatusOr<ClaimBatch> batch = store_->Claim(10, absl::Seconds(30));
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) return {};
    for (const ClaimedDelivery& d : batch->deliveries) {
      if (d.id == id) return d;
    }
    ADD_FAILURE() << "delivery " << id << " was not claimed";
    return {};
  }

  static DeliveryResult Result(const ClaimedDelivery& d, int status, DecisionKind kind) {
    DeliveryResult r;
    r.delivery_id = d.id;
    r.webhook_id = d.webhook_id;
    r.lease_us = d.lease_us;
    r.created_us = d.created_us;  // as the dispatcher passes it: the writes read only its week
    r.attempt_number = d.attempt_count + 1;
    r.action = DeliveryResult::Action::kAttempt;
    r.started_at = absl::Now();
    r.duration = absl::Milliseconds(5);
    r.attempt.http_status = status;
    r.decision.kind = kind;
    if (kind == DecisionKind::kRetry) r.decision.retry_delay = absl::Seconds(60);
    return r;
  }

  std::string Row(const std::string& id) {
    return Scalar(absl::StrCat("SELECT state || ' ' || attempt_count || ' ' || COALESCE(last_http_status::text, '-') || ' ' ||"
                               " COALESCE(last_error_class, '-') || ' ' || (lease_expires_at IS NULL)::text"
                               " FROM deliveries WHERE id = '", id, "'"));
  }
  std::string Attempts(const std::string& id) {
    return Scalar(absl::StrCat("SELECT string_agg(attempt_number || ':' || COALESCE(http_status::text, error_class), ','"
                               " ORDER BY attempt_number) FROM delivery_attempts WHERE delivery_id = '", id, "'"));
  }

  // Sessions of this database waiting for a lock reach `n` (a barrier).
  bool WaitingReaches(int n) {
    for (int i = 0; i < 500; ++i) {
      if (std::stoi(Scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND wait_event_type = 'Lock'")) >= n) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // The start of the transaction of the session named `application` once it
  // waits for a lock in a transaction other than `other_than` ("" if it never
  // does within 10 s): tells a retry's wait from the first try's.
  std::string WaitingTransaction(const std::string& application, const std::string& other_than) {
    for (int i = 0; i < 1000; ++i) {
      const std::string start = Scalar(absl::StrCat(
          "SELECT COALESCE(max(xact_start)::text, '') FROM pg_stat_activity WHERE application_name = '",
          application, "' AND wait_event_type = 'Lock'"));
      if (!start.empty() && start != other_than) return start;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "";
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<PgDispatchStore> store_;
  std::string webhook_;
  std::vector<std::string> ids_;
};

}  // namespace octo::delivery
