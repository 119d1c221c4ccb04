// EventService (subscription side) in-process on 127.0.0.1:0, calling a real
// DeliveryService in-process over gRPC, against a real PostgreSQL: resolving
// webhooks, validation before resolution, status mapping.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "services/subscription/event_service.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {
namespace {

using ::testing::SizeIs;
using ::testing::UnorderedElementsAreArray;

constexpr char kMissingUuid[] = "00000000-0000-4000-8000-000000000000";

class EventServiceTest : public DeliveryTest {
 protected:
  void SetUp() override {
    DeliveryTest::SetUp();
    if (HasFatalFailure()) return;
    events_ = StartEventService(delivery_stub_.get(), &events_server_);
  }

  void TearDown() override {
    for (auto* server : {&events_server_, &unreachable_server_}) {
      if (*server) (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      server->reset();
    }
    DeliveryTest::TearDown();
  }

  std::unique_ptr<pb::EventService::Stub> StartEventService(
      pb::DeliveryService::StubInterface* delivery, std::unique_ptr<grpc::Server>* server) {
    services_.push_back(std::make_unique<subscription::EventServiceImpl>(delivery,
                                                                         std::chrono::seconds(10)));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(services_.back().get());
    *server = builder.BuildAndStart();
    EXPECT_GT(port, 0);
    return pb::EventService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Publish(const pb::PublishEventRequest& request, pb::PublishEventResponse* response,
                       pb::EventService::Stub* stub = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return (stub ? stub : events_.get())->PublishEvent(&context, request, response);
  }

  grpc::Status PublishBatch(const pb::PublishEventsRequest& request,
                            pb::PublishEventsResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return events_->PublishEvents(&context, request, response);
  }

  std::vector<std::string> DeliveredWebhooks(const std::string& event_id) {
    std::vector<std::string> out;
    auto conn = Raw();
    pqxx::work txn(*conn);
    for (const auto& row :
         txn.exec("SELECT webhook_id::text FROM deliveries WHERE event_id = '" + event_id + "'")) {
      out.push_back(row[0].as<std::string>());
    }
    return out;
  }

  std::vector<std::unique_ptr<subscription::EventServiceImpl>> services_;
  std::unique_ptr<grpc::Server> events_server_;
  std::unique_ptr<grpc::Server> unreachable_server_;
  std::unique_ptr<pb::EventService::Stub> events_;
};

TEST_F(EventServiceTest, ResolvesTheEnabledWebhooksForTheEvent) {
  const std::string a1 = NewWebhook(connection_a_);
  const std::string a2 = NewWebhook(connection_a_);
  NewWebhook(connection_a_, "order_update");
  const std::string b1 = NewWebhook(connection_b_);
  const std::string disabled = NewWebhook(connection_b_);
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec(
        "UPDATE webhooks SET status = 'disabled', disabled_at = now(), "
        "disabled_reason = 'gone' WHERE id = '" +
        disabled + "'");
    txn.commit();
  }
  // Another supplier's webhook for the same event never receives it.
  const std::string other = NewSupplier("Other Tours");
  auto other_connection = repo_->CreateConnection(other, "Viator", 10);
  ASSERT_THAT(other_connection, IsOk());
  NewWebhook(other_connection->id);

  pb::PublishEventResponse all;
  ASSERT_THAT(Publish(Booking("all", R"({"uuid":"b-1"})"), &all), GrpcIsOk());
  EXPECT_EQ(all.delivery_count(), 3);
  EXPECT_FALSE(all.duplicate());
  EXPECT_THAT(DeliveredWebhooks(all.event_id()), UnorderedElementsAreArray({a1, a2, b1}));

  pb::PublishEventRequest scoped = Booking("scoped", R"({"uuid":"b-1"})");
  scoped.set_connection_id(connection_b_);
  pb::PublishEventResponse one;
  ASSERT_THAT(Publish(scoped, &one), GrpcIsOk());
  EXPECT_EQ(one.delivery_count(), 1);
  EXPECT_THAT(DeliveredWebhooks(one.event_id()), UnorderedElementsAreArray({b1}));

  pb::PublishEventResponse again;
  ASSERT_THAT(Publish(Booking("all", R"({"uuid":"b-1"})"), &again), GrpcIsOk());
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.event_id(), all.event_id());
  EXPECT_EQ(again.delivery_count(), 3);
}

TEST_F(EventServiceTest, AnEventNoWebhookWantsIsStillStored) {
  pb::PublishEventRequest e = Booking("p1", R"({"id":"tour-1","title":"Castle"})");
  e.set_event("product_update");
  pb::PublishEventResponse r;
  ASSERT_THAT(Publish(e, &r), GrpcIsOk());
  EXPECT_EQ(r.delivery_count(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE event = 'product_update'"), 1);
  EXPECT_EQ(Text("SELECT resource::text FROM resource_snapshots WHERE resource_kind = 'product'"),
            R"({"id":"tour-1","title":"Castle"})");
  // ...so the next event of the product has a diff.
  pb::PublishEventRequest e2 = Booking("p2", R"({"id":"tour-1","title":"Castle tour"})");
  e2.set_event("product_update");
  *e2.mutable_occurred_at() = At(5);
  ASSERT_THAT(Publish(e2, &r), GrpcIsOk());
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'p2'"),
            R"([{"op":"replace","path":"/title","was":"Castle","value":"Castle tour"}])");
}

TEST_F(EventServiceTest, BatchAnswersInOrder) {
  const std::string a = NewWebhook(connection_a_);
  const std::string o = NewWebhook(connection_b_, "order_update");
  pb::PublishEventsRequest request;
  *request.add_events() = Booking("b1", R"({"uuid":"b-1"})");
  pb::PublishEventRequest order = Booking("o1", R"({"id":"order-1"})");
  order.set_event("order_update");
  *request.add_events() = order;
  *request.add_events() = Booking("b2", R"({"uuid":"b-2"})");
  *request.add_events() = Booking("b1", R"({"uuid":"b-1"})");
  pb::PublishEventsResponse response;
  ASSERT_THAT(PublishBatch(request, &response), GrpcIsOk());
  ASSERT_THAT(response.results(), SizeIs(4));
  EXPECT_THAT(DeliveredWebhooks(response.results(0).event_id()), UnorderedElementsAreArray({a}));
  EXPECT_THAT(DeliveredWebhooks(response.results(1).event_id()), UnorderedElementsAreArray({o}));
  EXPECT_THAT(DeliveredWebhooks(response.results(2).event_id()), UnorderedElementsAreArray({a}));
  EXPECT_TRUE(response.results(3).duplicate());
  EXPECT_EQ(response.results(3).event_id(), response.results(0).event_id());
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 3);

  pb::PublishEventsResponse empty;
  EXPECT_THAT(PublishBatch(pb::PublishEventsRequest(), &empty), GrpcIsOk());
  EXPECT_EQ(empty.results_size(), 0);
}

TEST_F(EventServiceTest, InvalidEventsAreRejectedBeforeAnythingIsStored) {
  NewWebhook(connection_a_);
  pb::PublishEventResponse r;
  pb::PublishEventRequest bad = Booking("k", "{not json");
  EXPECT_THAT(Publish(bad, &r),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, "resource_json: not valid JSON"));
  // Validation comes before resolution: an invalid event of an unknown
  // supplier is INVALID_ARGUMENT, not NOT_FOUND.
  bad.set_supplier_id(kMissingUuid);
  EXPECT_THAT(Publish(bad, &r), GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, "resource_json"));

  pb::PublishEventsRequest batch;
  *batch.add_events() = Booking("ok", R"({"uuid":"b-1"})");
  pb::PublishEventRequest no_time = Booking("no-time", R"({"uuid":"b-2"})");
  no_time.clear_occurred_at();
  *batch.add_events() = no_time;
  pb::PublishEventsResponse response;
  EXPECT_THAT(PublishBatch(batch, &response),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, "events[1].occurred_at: required"));

  pb::PublishEventsRequest too_many;
  for (int i = 0; i < 501; ++i)
    *too_many.add_events() = Booking(absl::StrCat(i), R"({"uuid":"b"})");
  EXPECT_THAT(PublishBatch(too_many, &response),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, "events: at most 500"));
  EXPECT_EQ(StoredRows(), 0);
}

TEST_F(EventServiceTest, UnknownSupplierOrConnectionIsNotFound) {
  const std::string other = NewSupplier("Other Tours");
  auto foreign = repo_->CreateConnection(other, "Foreign", 10);
  ASSERT_THAT(foreign, IsOk());
  pb::PublishEventResponse r;
  pb::PublishEventRequest e = Booking("k", R"({"uuid":"b-1"})");
  e.set_supplier_id(kMissingUuid);
  EXPECT_THAT(Publish(e, &r),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, "supplier_id: no such supplier"));
  e.set_supplier_id(supplier_id_);
  e.set_connection_id(foreign->id);
  EXPECT_THAT(Publish(e, &r), GrpcStatusIs(grpc::StatusCode::NOT_FOUND,
                                           "connection_id: no such connection of this supplier"));

  pb::PublishEventsRequest batch;
  *batch.add_events() = Booking("ok", R"({"uuid":"b-1"})");
  *batch.add_events() = Booking("ok2", R"({"uuid":"b-2"})");
  pb::PublishEventRequest missing = Booking("k3", R"({"uuid":"b-3"})");
  missing.set_supplier_id(kMissingUuid);
  *batch.add_events() = missing;
  pb::PublishEventsResponse response;
  EXPECT_THAT(PublishBatch(batch, &response),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, "events[2].supplier_id: no such supplier"));
  EXPECT_EQ(StoredRows(), 0);
}

TEST_F(EventServiceTest, UnreachableDeliveryServiceIsUnavailable) {
  // Nothing listens on port 1: connections are refused at once.
  auto unreachable = pb::DeliveryService::NewStub(
      grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()));
  auto events = StartEventService(unreachable.get(), &unreachable_server_);
  NewWebhook(connection_a_);
  pb::PublishEventResponse r;
  EXPECT_THAT(Publish(Booking("k", R"({"uuid":"b-1"})"), &r, events.get()),
              GrpcStatusIs(grpc::StatusCode::UNAVAILABLE, "publish again with the same"));
  EXPECT_EQ(StoredRows(), 0);
}

// The delivery service lost its connection during the commit (UNKNOWN): the
// publisher is told to publish again with the same keys, which stores once.
TEST_F(EventServiceTest, ACommitInDoubtAsksToPublishAgainWithTheSameKeys) {
  NewWebhook(connection_a_);
  KillFirstSessionWriting("events", /*at_commit=*/true);
  pb::PublishEventResponse r;
  EXPECT_THAT(Publish(Booking("k-doubt", R"({"uuid":"b-1"})"), &r),
              GrpcStatusIs(grpc::StatusCode::UNAVAILABLE, "publish again with the same idempotency keys"));
  ASSERT_THAT(Publish(Booking("k-doubt", R"({"uuid":"b-1"})"), &r), GrpcIsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);
}

}  // namespace
}  // namespace octo::testing
