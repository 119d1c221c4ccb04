// Group commit (GroupCommitEventStore over PgEventStore) and the one webhook
// resolution inside the enqueue transaction, against a real PostgreSQL:
// concurrent callers share one transaction (the same xmin on their events)
// and each gets its own answer, a bad caller fails only itself, and every
// event of a group gets exactly its own supplier's (and connection's)
// webhooks.
#include <iterator>
#include <latch>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "services/delivery/group_commit.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kMissingUuid[] = "00000000-0000-4000-8000-000000000000";

// Published events validated and viewed as the store wants them.
class Batch {
 public:
  explicit Batch(std::vector<pb::PublishEventRequest> events) : protos_(std::move(events)) {
    valid_.reserve(protos_.size());
    for (const pb::PublishEventRequest& e : protos_) {
      absl::StatusOr<delivery::ValidEvent> v = delivery::ValidateEvent(e);
      EXPECT_TRUE(v.ok()) << v.status();
      valid_.push_back(v.ok() ? *std::move(v) : delivery::ValidEvent{});
    }
    for (std::size_t i = 0; i < protos_.size(); ++i) {
      const pb::PublishEventRequest& e = protos_[i];
      delivery::EventToStore s;
      s.supplier_id = e.supplier_id();
      s.idempotency_key = e.idempotency_key();
      s.connection_id = e.connection_id();
      s.event = e.event();
      s.resource_json = e.resource_json();
      if (e.has_diff_json()) s.diff_json = e.diff_json();
      s.product_id = e.product_id();
      s.option_id = e.option_id();
      s.valid = &valid_[i];
      events_.push_back(s);
    }
  }
  const std::vector<delivery::EventToStore>& events() const { return events_; }

 private:
  std::vector<pb::PublishEventRequest> protos_;
  std::vector<delivery::ValidEvent> valid_;
  std::vector<delivery::EventToStore> events_;
};

class GroupCommitTest : public DeliveryTest {
 protected:
  // Runs Enqueue for every batch from its own thread, all at once, through a
  // group commit that waits (up to 30 s) for all of their events: one group.
  std::vector<delivery::EnqueueResult> EnqueueTogether(
      const std::vector<Batch*>& batches, std::optional<delivery::GroupCommitOptions> options = {}) {
    std::size_t events = 0;
    for (const Batch* b : batches) events += b->events().size();
    group_ = std::make_unique<delivery::GroupCommitEventStore>(
        store_.get(), options.value_or(delivery::GroupCommitOptions{absl::Seconds(30), events}));
    std::vector<delivery::EnqueueResult> results(batches.size(),
                                                 absl::UnknownError("not run"));
    std::latch start(static_cast<std::ptrdiff_t>(batches.size()));
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < batches.size(); ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        results[i] = group_->Enqueue(batches[i]->events());
      });
    }
    for (auto& t : threads) t.join();
    return results;
  }

  std::string Xmin(const std::string& event_id) {
    return Text("SELECT xmin::text FROM events WHERE id = '" + event_id + "'");
  }

  pb::PublishEventRequest ForSupplier(const std::string& supplier, const std::string& key,
                                      const std::string& connection = "") const {
    pb::PublishEventRequest e = Booking(key, absl::StrCat(R"({"uuid":")", key, "\"}"));
    e.set_supplier_id(supplier);
    e.set_connection_id(connection);
    return e;
  }

  std::unique_ptr<delivery::GroupCommitEventStore> group_;
};

TEST_F(GroupCommitTest, ConcurrentCallersShareOneTransactionEachWithItsOwnAnswer) {
  NewWebhook(connection_a_);
  Batch first({Booking("a1", R"({"uuid":"b-1"})"), Booking("a2", R"({"uuid":"b-2"})")});
  Batch second({Booking("b1", R"({"uuid":"b-3"})")});
  const std::vector<delivery::EnqueueResult> results = EnqueueTogether({&first, &second});
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  ASSERT_THAT(*results[0], SizeIs(2));
  ASSERT_THAT(*results[1], SizeIs(1));
  EXPECT_EQ(group_->groups(), 1u);
  const std::string xmin = Xmin((*results[0])[0].event_id);
  EXPECT_EQ(Xmin((*results[0])[1].event_id), xmin);
  EXPECT_EQ(Xmin((*results[1])[0].event_id), xmin);  // one transaction
  EXPECT_EQ(Text(absl::StrCat("SELECT idempotency_key FROM events WHERE id = '",
                              (*results[1])[0].event_id, "'")),
            "b1");
  for (const auto& r : results) {
    for (const delivery::StoredEvent& e : *r) EXPECT_EQ(e.delivery_count, 1);
  }
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 3);
}

TEST_F(GroupCommitTest, AnUnknownSupplierFailsOnlyItsCaller) {
  NewWebhook(connection_a_);
  Batch good({Booking("good", R"({"uuid":"b-1"})")});
  Batch bad({Booking("ok-in-bad", R"({"uuid":"b-2"})"), ForSupplier(kMissingUuid, "bad")});
  Batch foreign({ForSupplier(supplier_id_, "foreign", kMissingUuid)});
  const std::vector<delivery::EnqueueResult> results = EnqueueTogether({&good, &bad, &foreign});
  EXPECT_EQ(group_->groups(), 1u);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_EQ((*results[0])[0].delivery_count, 1);
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(results[1].status().message()),
              HasSubstr("events[1].supplier_id: no such supplier"));
  EXPECT_EQ(results[2].status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(results[2].status().message()),
              HasSubstr("events[0].connection_id: no such connection"));
  // The failed callers stored nothing, not even their good events.
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 1);
}

// A batch the database refuses once it is written (here a trigger standing
// for any constraint validation does not know) fails the shared transaction;
// each batch is then stored alone, so the other caller's events still are.
TEST_F(GroupCommitTest, ARefusedBatchIsRetriedAloneAndTheOthersAreStored) {
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.idempotency_key = 'poison' THEN "
        "RAISE EXCEPTION 'poisoned' USING ERRCODE = 'check_violation'; END IF; "
        "RETURN NEW; END $$");
    txn.exec(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW "
        "EXECUTE FUNCTION refuse_poison()");
    txn.commit();
  }
  NewWebhook(connection_a_);
  Batch good({Booking("good", R"({"uuid":"b-1"})")});
  Batch poisoned({Booking("poison", R"({"uuid":"b-2"})")});
  const std::vector<delivery::EnqueueResult> results = EnqueueTogether({&good, &poisoned});
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_FALSE((*results[0])[0].duplicate);
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE idempotency_key = 'good'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE idempotency_key = 'poison'"), 0);
}

// A group takes at most max_events: the caller left over waits for the next
// group (which it leads), and is stored too.
TEST_F(GroupCommitTest, AFullGroupLeavesTheRestToTheNext) {
  NewWebhook(connection_a_);
  Batch one({Booking("one", R"({"uuid":"b-1"})")});
  Batch two({Booking("two", R"({"uuid":"b-2"})")});
  Batch three({Booking("three", R"({"uuid":"b-3"})")});
  const std::vector<delivery::EnqueueResult> results = EnqueueTogether(
      {&one, &two, &three}, delivery::GroupCommitOptions{absl::Seconds(2), 2, 1});
  std::map<std::string, int> by_xmin;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    ++by_xmin[Xmin((*r)[0].event_id)];
  }
  EXPECT_EQ(group_->groups(), 2u);
  ASSERT_EQ(by_xmin.size(), 2u);  // two transactions: two events, then one
  EXPECT_EQ(by_xmin.begin()->second + std::next(by_xmin.begin())->second, 3);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 3);
}

// A key published by two callers of one group is stored once: the later
// caller (in group order) answers as a duplicate of the earlier.
TEST_F(GroupCommitTest, TheSameKeyFromTwoCallersIsStoredOnce) {
  NewWebhook(connection_a_);
  Batch one({Booking("shared", R"({"uuid":"b-1"})")});
  Batch two({Booking("shared", R"({"uuid":"b-1"})")});
  const std::vector<delivery::EnqueueResult> results = EnqueueTogether({&one, &two});
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  EXPECT_EQ((*results[0])[0].event_id, (*results[1])[0].event_id);
  EXPECT_NE((*results[0])[0].duplicate, (*results[1])[0].duplicate);
  EXPECT_EQ((*results[1])[0].delivery_count, 1);
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 1);
}

// The webhooks are resolved once for the whole group, and matched to each
// event: its supplier's, its event type's, its connection's when it names
// one; disabled webhooks never.
TEST_F(GroupCommitTest, EachEventOfAGroupGetsExactlyItsOwnWebhooks) {
  const std::string a = NewWebhook(connection_a_);
  const std::string b = NewWebhook(connection_b_);
  const std::string a_orders = NewWebhook(connection_a_, "order_update");
  const std::string disabled = NewWebhook(connection_b_);
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec("UPDATE webhooks SET status = 'disabled', disabled_at = now(), "
             "disabled_reason = 'test' WHERE id = '" + disabled + "'");
    txn.commit();
  }
  const std::string other = NewSupplier("Other Tours");
  auto other_connection = repo_->CreateConnection(other, "Viator", 10);
  ASSERT_THAT(other_connection, IsOk());
  const std::string o = NewWebhook(other_connection->id);

  pb::PublishEventRequest order = ForSupplier(supplier_id_, "order");
  order.set_event("order_update");
  order.set_resource_json(R"({"id":"o-1"})");
  Batch mine({ForSupplier(supplier_id_, "all"), ForSupplier(supplier_id_, "only-b", connection_b_),
              order});
  Batch theirs({ForSupplier(other, "theirs")});
  const std::vector<delivery::EnqueueResult> results = EnqueueTogether({&mine, &theirs});
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  const auto receivers = [&](const std::string& event_id) {
    std::vector<std::string> out;
    auto conn = Raw();
    pqxx::work txn(*conn);
    for (const auto& row : txn.exec("SELECT webhook_id::text FROM deliveries WHERE event_id = '" +
                                    event_id + "' ORDER BY webhook_id")) {
      out.push_back(row[0].as<std::string>());
    }
    return out;
  };
  std::vector<std::string> a_and_b = {a, b};
  std::sort(a_and_b.begin(), a_and_b.end());
  EXPECT_EQ(receivers((*results[0])[0].event_id), a_and_b);
  EXPECT_EQ(receivers((*results[0])[1].event_id), std::vector<std::string>{b});
  EXPECT_EQ(receivers((*results[0])[2].event_id), std::vector<std::string>{a_orders});
  EXPECT_EQ(receivers((*results[1])[0].event_id), std::vector<std::string>{o});
  EXPECT_EQ((*results[0])[0].delivery_count, 2);
  EXPECT_EQ((*results[1])[0].delivery_count, 1);
}

}  // namespace
}  // namespace octo::testing
