// The pure steps of the enqueue transaction (enqueue_plan.h): which event
// stands for a repeated key, which resolved webhooks receive an event, and
// how computed diffs chain per resource in request order.
#include "services/delivery/enqueue_plan.h"

#include <deque>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "services/delivery/event_validation.h"

namespace octo::delivery::enqueue {
namespace {

constexpr char kSupplier[] = "11111111-1111-4111-8111-111111111111";
constexpr char kOther[] = "22222222-2222-4222-8222-222222222222";
constexpr char kConnA[] = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
constexpr char kConnB[] = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

// Events that own their text and validation result (deques: the views stay
// valid as events are added).
struct Owned {
  std::deque<::octo::webhooks::v1::PublishEventRequest> protos;
  std::deque<ValidEvent> valid;
  std::deque<EventToStore> events;

  void Add(const std::string& supplier, const std::string& key, const std::string& resource,
           long long second = 0, const std::string& connection = "",
           const std::string& event = "booking_update") {
    ::octo::webhooks::v1::PublishEventRequest& p = protos.emplace_back();
    p.set_supplier_id(supplier);
    p.set_idempotency_key(key);
    p.set_connection_id(connection);
    p.set_event(event);
    p.set_resource_json(resource);
    p.mutable_occurred_at()->set_seconds(1767323045 + second);
    absl::StatusOr<ValidEvent> v = ValidateEvent(p);
    ASSERT_TRUE(v.ok()) << v.status();
    valid.push_back(*std::move(v));
    EventToStore& e = events.emplace_back();
    e.supplier_id = p.supplier_id();
    e.idempotency_key = p.idempotency_key();
    e.connection_id = p.connection_id();
    e.event = p.event();
    e.resource_json = p.resource_json();
    e.valid = &valid.back();
  }
  Events View() const {
    Events out;
    for (const EventToStore& e : events) out.push_back(&e);
    return out;
  }
};

TEST(EnqueuePlanTest, ARepeatedKeyAnswersAsItsFirstPerSupplierIgnoringCase) {
  Owned o;
  o.Add(kSupplier, "k", R"({"uuid":"b"})");
  o.Add(kOther, "k", R"({"uuid":"b"})");
  o.Add("11111111-1111-4111-8111-111111111111", "k2", R"({"uuid":"b"})");
  o.Add("11111111-1111-4111-8111-111111111111", "k", R"({"uuid":"b"})");
  EXPECT_EQ(FirstOfKey(o.View()), (std::vector<std::size_t>{0, 1, 2, 0}));
}

TEST(EnqueuePlanTest, ReceiversAreTheSupplierAndEventsWebhooksScopedByConnection) {
  Owned o;
  o.Add(kSupplier, "all", R"({"uuid":"b"})");
  o.Add(kSupplier, "scoped", R"({"uuid":"b"})", 0, kConnB);
  o.Add(kOther, "other", R"({"uuid":"b"})");
  o.Add(kSupplier, "order", R"({"id":"o"})", 0, "", "order_update");
  WebhookIndex index({{"w1", kConnA, kSupplier, "booking_update", false, {}},
                      {"w2", kConnB, kSupplier, "booking_update", false, {}},
                      {"w3", kConnA, kSupplier, "order_update", false, {}},
                      {"w4", "cccccccc-cccc-4ccc-8ccc-cccccccccccc", kOther, "product_update",
                       false, {}}});
  const auto ids = [&](std::size_t i) {
    std::vector<std::string> out;
    for (const WebhookRow* w : index.Receivers(o.events[i])) out.push_back(w->id);
    return out;
  };
  EXPECT_EQ(ids(0), (std::vector<std::string>{"w1", "w2"}));
  EXPECT_EQ(ids(1), (std::vector<std::string>{"w2"}));
  EXPECT_EQ(ids(2), std::vector<std::string>{});
  EXPECT_EQ(ids(3), (std::vector<std::string>{"w3"}));
}

// A notification subscription wants every one of its event types (its
// event is the first); it receives each matching event once.
TEST(EnqueuePlanTest, ANotificationSubscriptionReceivesEveryOneOfItsTypes) {
  Owned o;
  o.Add(kSupplier, "booking", R"({"uuid":"b"})");
  o.Add(kSupplier, "order", R"({"id":"o"})", 0, "", "order_update");
  o.Add(kSupplier, "scoped", R"({"id":"o"})", 0, kConnB, "order_update");
  WebhookIndex index(
      {{"n1", kConnA, kSupplier, "booking_update", true, {"booking_update", "order_update"}},
       {"w1", kConnA, kSupplier, "order_update", false, {}},
       {"n2", kConnA, kSupplier, "product_update", true, {"product_update"}}});
  const auto ids = [&](std::size_t i) {
    std::vector<std::string> out;
    for (const WebhookRow* w : index.Receivers(o.events[i])) out.push_back(w->id);
    return out;
  };
  EXPECT_EQ(ids(0), (std::vector<std::string>{"n1"}));
  EXPECT_EQ(ids(1), (std::vector<std::string>{"n1", "w1"}));
  EXPECT_EQ(ids(2), std::vector<std::string>{});
}

TEST(EnqueuePlanTest, DiffsChainPerResourceAndAnOlderEventKeepsTheSnapshot) {
  Owned o;
  o.Add(kSupplier, "a", R"({"uuid":"b","s":"A"})", 10);
  o.Add(kSupplier, "b", R"({"uuid":"b","s":"B"})", 20);
  o.Add(kSupplier, "old", R"({"uuid":"b","s":"O"})", 15);
  o.Add(kSupplier, "c", R"({"uuid":"b","s":"C"})", 30);
  const Events events = o.View();
  Snapshots snapshots;
  snapshots[ResourceOf(o.events[0])] = Snapshot{};  // none stored
  std::vector<std::string> diffs;
  int bad = -1;
  ASSERT_TRUE(ChainDiffs(events, {0, 1, 2, 3}, snapshots, &diffs, &bad).ok());
  EXPECT_EQ(diffs[0], "[]");
  EXPECT_EQ(diffs[1], R"([{"op":"replace","path":"/s","was":"A","value":"B"}])");
  EXPECT_EQ(diffs[2], R"([{"op":"replace","path":"/s","was":"B","value":"O"}])");
  EXPECT_EQ(diffs[3], R"([{"op":"replace","path":"/s","was":"B","value":"C"}])");
  const Snapshot& s = snapshots.at(ResourceOf(o.events[0]));
  EXPECT_TRUE(s.changed);
  EXPECT_EQ(s.resource, o.events[3].resource_json);
}

TEST(EnqueuePlanTest, AnUnreadableStoredSnapshotNamesTheEvent) {
  Owned o;
  o.Add(kSupplier, "a", R"({"uuid":"b"})");
  o.Add(kSupplier, "b", R"({"uuid":"c"})");
  Snapshots snapshots;
  snapshots[ResourceOf(o.events[0])] = Snapshot{};
  Snapshot broken;
  broken.exists = true;
  broken.stored_text = "{not json";
  Snapshot& stored = snapshots[ResourceOf(o.events[1])] = broken;
  stored.resource = stored.stored_text;
  std::vector<std::string> diffs;
  int bad = -1;
  const absl::Status s = ChainDiffs(o.View(), {0, 1}, snapshots, &diffs, &bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(bad, 1);
}

}  // namespace
}  // namespace octo::delivery::enqueue
