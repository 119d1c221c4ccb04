// Publishing over EventService: idempotency (sequential and 8 concurrent
// duplicates), batches, connection scoping, and rejected input that stores
// nothing, each checked at the receiver and in the database.
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/delivery_e2e/delivery_fixture.h"

namespace octo::delivery_e2e {
namespace {

namespace v1 = ::octo::webhooks::v1;

constexpr const char* kBooking = R"({"id":"bk-p","uuid":"{uuid}","status":"{status}"})";

// Long enough for a duplicate delivery to have shown up, were there one.
constexpr auto kQuiet = 800ms;

class PublishE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() { StartStack({}); }
  static void TearDownTestSuite() { StopStack(); }

  v1::PublishEventRequest Booking(const std::string& key, const std::string& status = "CONFIRMED") {
    return Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}, {"{status}", status}}), key);
  }
  std::string CountEvents(const std::string& where = "") {
    return db().Scalar(absl::StrCat("SELECT count(*) FROM events WHERE supplier_id = ", SqlQuote(tenant_.supplier_id),
                                    where));
  }
  std::string CountDeliveries() {
    return db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id "
                                    "WHERE e.supplier_id = ",
                                    SqlQuote(tenant_.supplier_id)));
  }
};

TEST_F(PublishE2eTest, RepublishingTheSameKeyCreatesNothing) {
  Hook("booking_update", receiver_->Url("/a"));
  Hook("booking_update", receiver_->Url("/b"));
  const std::string key = NewKey("idem");
  const auto first = MustPublish(Booking(key));
  EXPECT_FALSE(first.duplicate());
  EXPECT_EQ(first.delivery_count(), 2);
  EXPECT_FALSE(first.event_id().empty());
  const auto again = MustPublish(Booking(key));
  // Even with other content: the original result, nothing new.
  const auto changed = MustPublish(Booking(key, "CANCELLED"));
  for (const auto& r : {again, changed}) {
    EXPECT_TRUE(r.duplicate());
    EXPECT_EQ(r.event_id(), first.event_id());
    EXPECT_EQ(r.delivery_count(), 2);
  }
  ASSERT_TRUE(receiver_->WaitFor(2, 15s)) << stack_->LogTails();
  std::this_thread::sleep_for(kQuiet);
  EXPECT_EQ(receiver_->Count("/a"), 1u);
  EXPECT_EQ(receiver_->Count("/b"), 1u);
  EXPECT_EQ(receiver_->Requests("/a")[0].body.find("CANCELLED"), std::string::npos);
  EXPECT_EQ(CountEvents(), "1");
  EXPECT_EQ(CountDeliveries(), "2");
}

TEST_F(PublishE2eTest, ConcurrentDuplicatesCreateOneEventAndOneDelivery) {
  Hook("booking_update", receiver_->Url("/once"));
  const v1::PublishEventRequest request = Booking(NewKey("race"));
  constexpr int kPublishers = 8;
  std::vector<v1::PublishEventResponse> responses(kPublishers);
  std::vector<grpc::Status> statuses(kPublishers);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kPublishers; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (!go.load()) std::this_thread::yield();
      statuses[i] = stack_->PublishRaw(request, &responses[i]);
    });
  }
  while (ready.load() < kPublishers) std::this_thread::yield();
  go = true;
  for (std::thread& t : threads) t.join();

  int originals = 0;
  std::set<std::string> event_ids;
  for (int i = 0; i < kPublishers; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << "publisher " << i << ": " << statuses[i].error_code() << " "
                                  << statuses[i].error_message();
    originals += responses[i].duplicate() ? 0 : 1;
    event_ids.insert(responses[i].event_id());
    EXPECT_EQ(responses[i].delivery_count(), 1);
  }
  EXPECT_EQ(originals, 1);
  EXPECT_EQ(event_ids.size(), 1u);
  ASSERT_TRUE(receiver_->WaitFor("/once", 1, 15s)) << stack_->LogTails();
  std::this_thread::sleep_for(kQuiet);
  EXPECT_EQ(receiver_->Count("/once"), 1u);
  EXPECT_EQ(CountEvents(), "1");
  EXPECT_EQ(CountDeliveries(), "1");
}

// Delivery order is not promised (docs/receiving.md, "Ordering"): every
// event is delivered once. What is ordered is the response: result i is
// event i of the request (events.proto), checked against the stored keys.
TEST_F(PublishE2eTest, BatchDeliversEveryEventAnswersInRequestOrderAndIsIdempotent) {
  Hook("booking_update", receiver_->Url("/batch"));
  v1::PublishEventsRequest batch;
  constexpr int kEvents = 20;
  for (int i = 0; i < kEvents; ++i) *batch.add_events() = Booking(NewKey(absl::StrCat("batch-", i)));
  auto published = stack_->PublishBatch(batch);
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_EQ(published->results_size(), kEvents);
  std::set<std::string> ids;
  for (const auto& r : published->results()) {
    EXPECT_FALSE(r.duplicate());
    EXPECT_EQ(r.delivery_count(), 1);
    ids.insert(r.event_id());
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(db().Scalar(absl::StrCat("SELECT idempotency_key FROM events WHERE id = ",
                                       SqlQuote(published->results(i).event_id()))),
              batch.events(i).idempotency_key())
        << "result " << i;
  }
  ASSERT_TRUE(receiver_->WaitFor("/batch", kEvents, 20s)) << stack_->LogTails();

  auto again = stack_->PublishBatch(batch);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->results_size(), kEvents);
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_TRUE(again->results(i).duplicate());
    EXPECT_EQ(again->results(i).event_id(), published->results(i).event_id()) << "result " << i;
  }
  std::this_thread::sleep_for(kQuiet);
  EXPECT_EQ(receiver_->Count("/batch"), static_cast<std::size_t>(kEvents));
  std::set<std::string> webhook_ids;
  for (const auto& r : receiver_->Requests("/batch")) webhook_ids.insert(WebhookId(r));
  EXPECT_EQ(webhook_ids.size(), static_cast<std::size_t>(kEvents));
}

TEST_F(PublishE2eTest, InvalidEventsAreRejectedAndStoreNothing) {
  Hook("booking_update", receiver_->Url("/never"));
  std::vector<std::pair<std::string, v1::PublishEventRequest>> invalid;
  auto bad_json = Booking(NewKey("bad"));
  bad_json.set_resource_json(R"({"uuid":"x",)");
  invalid.emplace_back("invalid JSON", bad_json);
  auto bad_event = Booking(NewKey("bad"));
  bad_event.set_event("booking_created");
  invalid.emplace_back("unknown event", bad_event);
  auto no_key = Booking("");
  invalid.emplace_back("missing idempotency key", no_key);
  auto bad_diff = Booking(NewKey("bad"));
  bad_diff.set_diff_json(R"({"op":"add"})");
  invalid.emplace_back("diff not an array", bad_diff);
  for (const auto& [what, request] : invalid) {
    v1::PublishEventResponse response;
    const grpc::Status status = stack_->PublishRaw(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << what << ": " << status.error_message();
  }
  // One invalid event rejects the whole batch.
  v1::PublishEventsRequest batch;
  *batch.add_events() = Booking(NewKey("good"));
  *batch.add_events() = bad_json;
  auto rejected = stack_->PublishBatch(batch);
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument) << rejected.status();

  std::this_thread::sleep_for(kQuiet);
  EXPECT_EQ(CountEvents(), "0");
  EXPECT_EQ(receiver_->Count(), 0u);
}

TEST_F(PublishE2eTest, ConnectionScopedEventReachesOnlyThatConnection) {
  absl::StatusOr<e2e::Tenant> second = stack_->NewConnection(tenant_);
  ASSERT_TRUE(second.ok()) << second.status();
  Hook("booking_update", receiver_->Url("/first"));
  HookFor(*second, "booking_update", receiver_->Url("/second"));

  auto scoped = Booking(NewKey("scoped"));
  scoped.set_connection_id(tenant_.connection_id);
  EXPECT_EQ(MustPublish(scoped).delivery_count(), 1);
  // Without a connection: every connection of the supplier.
  EXPECT_EQ(MustPublish(Booking(NewKey("everyone"))).delivery_count(), 2);
  ASSERT_TRUE(receiver_->WaitFor(3, 15s)) << stack_->LogTails();
  std::this_thread::sleep_for(kQuiet);
  EXPECT_EQ(receiver_->Count("/first"), 2u);
  EXPECT_EQ(receiver_->Count("/second"), 1u);
}

TEST_F(PublishE2eTest, ConnectionsToAHostAreReused) {
  Hook("booking_update", receiver_->Url("/reuse"));
  constexpr int kEvents = 5;
  for (int i = 0; i < kEvents; ++i) {
    MustPublish(Booking(NewKey("reuse")));
    ASSERT_TRUE(receiver_->WaitFor("/reuse", i + 1, 15s)) << stack_->LogTails();
  }
  // One after another to one host: one kept-alive connection.
  EXPECT_EQ(receiver_->Connections(), 1);
  const auto got = receiver_->Requests("/reuse");
  for (const ReceivedRequest& r : got) EXPECT_EQ(r.connection, got.front().connection);
}

}  // namespace
}  // namespace octo::delivery_e2e
