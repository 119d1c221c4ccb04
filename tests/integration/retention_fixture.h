#pragma once
// The fixture of the retention tests (retention_pgtest.cc,
// retention_metrics_pgtest.cc): a migrated database with a webhook, the
// dispatch and operations stores, and helpers that publish, claim, write
// results and move a delivery with its event and attempts into an older
// week (by updating their partition keys: PostgreSQL moves the rows between
// partitions, as if they had been published then).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/delivery/dispatch_store.h"
#include "tests/fakes/claims.h"
#include "services/delivery/operations_store.h"
#include "services/delivery/retention.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {

using delivery::ClaimedDelivery;
using delivery::DecisionKind;
using delivery::DeliveryResult;
using delivery::PgDispatchStore;
using delivery::PgOperationsStore;
using delivery::RetentionOptions;
using delivery::RetentionPass;

class RetentionTest : public DeliveryTest {
 protected:
  void SetUp() override {
    DeliveryTest::SetUp();
    if (HasFatalFailure()) return;
    webhook_ = NewWebhook(connection_a_);
    auto store = PgDispatchStore::Connect(db_->conninfo());
    ASSERT_THAT(store, IsOk());
    dispatch_ = *std::move(store);
    auto ops = PgOperationsStore::Create(pool_.get());
    ASSERT_THAT(ops, IsOk());
    ops_ = *std::move(ops);
  }

  // An update of booking `uuid` (default: the key) for every booking
  // webhook; its delivery to webhook_.
  std::string Publish(const std::string& key, std::string uuid = "") {
    if (uuid.empty()) uuid = key;
    pb::PublishEventResponse result;
    EXPECT_THAT(EnqueueOne(Booking(key, absl::StrCat(R"({"uuid":")", uuid, R"("})")), &result), GrpcIsOk());
    return Text(absl::StrCat("SELECT id::text FROM deliveries WHERE event_id = '", result.event_id(),
                             "' AND webhook_id = '", webhook_, "'"));
  }

  // The delivery, its event and attempts as if published `days` ago: the
  // week's partitions are created and the rows move into them.
  void MoveBack(const std::string& delivery, int days) {
    const std::string by = absl::StrCat("interval '", days, " days'");
    const std::string event = Text(absl::StrCat("SELECT event_id::text FROM deliveries WHERE id = '", delivery, "'"));
    Exec(absl::StrCat("SELECT octo_retention_create_partitions(now() - ", by, ", now() - ", by, ")"));
    Exec(absl::StrCat("UPDATE delivery_attempts SET delivery_created_at = delivery_created_at - ", by,
                      " WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = '", event, "')"));
    Exec(absl::StrCat("UPDATE deliveries SET created_at = created_at - ", by, " WHERE event_id = '", event, "'"));
    Exec(absl::StrCat("UPDATE events SET created_at = created_at - ", by, " WHERE id = '", event, "'"));
  }

  // Claims what is due, by delivery id.
  std::map<std::string, ClaimedDelivery> ClaimAll() {
    absl::StatusOr<delivery::ClaimBatch> batch = dispatch_->Claim(100, absl::Seconds(30));
    EXPECT_THAT(batch, IsOk());
    std::map<std::string, ClaimedDelivery> out;
    if (batch.ok()) {
      for (const ClaimedDelivery& d : batch->deliveries) out.emplace(d.id, d);
    }
    return out;
  }
  // Claims what is due; the claim of `delivery` (fails the test when absent).
  ClaimedDelivery ClaimOne(const std::string& delivery) {
    std::map<std::string, ClaimedDelivery> claimed = ClaimAll();
    if (claimed.count(delivery) == 1) return claimed.at(delivery);
    ADD_FAILURE() << "delivery " << delivery << " was not claimed";
    return {};
  }

  void Write(const ClaimedDelivery& d, int status, DecisionKind kind) {
    ASSERT_THAT(dispatch_->WriteResults({testing::AttemptResult(d, status, kind, absl::Seconds(600))}), IsOk());
  }
  void Send(const std::string& delivery, int status, DecisionKind kind) { Write(ClaimOne(delivery), status, kind); }

  RetentionPass Pass(int retention_days, int ahead_days = 7) {
    RetentionOptions options;
    options.retention = absl::Hours(24 * retention_days);
    options.ahead = absl::Hours(24 * ahead_days);
    pqxx::connection conn(db_->conninfo());
    absl::StatusOr<RetentionPass> pass = delivery::RunRetentionPass(conn, options);
    EXPECT_THAT(pass, IsOk());
    return pass.ok() ? *pass : RetentionPass{};
  }

  pb::Delivery Get(const std::string& delivery) {
    absl::StatusOr<pb::Delivery> d = ops_->Get(connection_a_, webhook_, delivery);
    EXPECT_THAT(d, IsOk());
    return d.ok() ? *d : pb::Delivery{};
  }

  long long Rows(const std::string& delivery) {
    return Count(absl::StrCat(
        "SELECT (SELECT count(*) FROM deliveries WHERE id = '", delivery, "') + (SELECT count(*) FROM events"
        " WHERE id IN (SELECT event_id FROM deliveries WHERE id = '", delivery, "')) + (SELECT count(*) FROM"
        " delivery_attempts WHERE delivery_id = '", delivery, "')"));
  }

  void Exec(const std::string& sql) {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec(sql);
    txn.commit();
  }

  std::unique_ptr<PgDispatchStore> dispatch_;
  std::unique_ptr<PgOperationsStore> ops_;
  std::string webhook_;
};

// The partition of a table for the week of now() + `days`, as a regclass or NULL.
inline std::string PartitionFor(const std::string& table, int days) {
  return absl::StrCat("SELECT to_regclass('", table, "_w' || to_char(octo_retention_week(now() + interval '", days,
                      " days') AT TIME ZONE 'UTC', 'YYYYMMDD'))::text");
}

}  // namespace octo::testing
