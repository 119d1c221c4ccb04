#pragma once
// Shared by the delivery integration tests: a migrated database with a
// supplier and two connections (PgRepositoryTest), DeliveryService in-process
// on 127.0.0.1:0 over a real channel, and helpers to build events and read
// what was stored.
#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/timestamp.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "octo/webhooks/v1/delivery.grpc.pb.h"
#include "services/common/crypto.h"
#include "services/delivery/delivery_service.h"
#include "services/delivery/event_validation.h"
#include "services/delivery/store.h"
#include "tests/integration/pg_fixture.h"

namespace grpc {
// Readable failures: "INVALID_ARGUMENT: message" instead of the bytes.
inline void PrintTo(const Status& status, std::ostream* os) {
  *os << static_cast<int>(status.error_code()) << ": " << status.error_message();
}
}  // namespace grpc

namespace octo::testing {

namespace pb = ::octo::webhooks::v1;

MATCHER_P2(GrpcStatusIs, code, substring, "") {
  *result_listener << "status " << arg.error_code() << " '" << arg.error_message() << "'";
  return arg.error_code() == code && arg.error_message().find(substring) != std::string::npos;
}
MATCHER(GrpcIsOk, "") {
  *result_listener << "status " << arg.error_code() << " '" << arg.error_message() << "'";
  return arg.ok();
}

// 2026-01-02T03:04:05Z plus `seconds`.
inline google::protobuf::Timestamp At(long long seconds = 0, int nanos = 0) {
  google::protobuf::Timestamp t;
  t.set_seconds(1767323045 + seconds);
  t.set_nanos(nanos);
  return t;
}

class DeliveryTest : public PgRepositoryTest {
 protected:
  void SetUp() override {
    PgRepositoryTest::SetUp();
    if (HasFatalFailure()) return;
    store_ = std::make_unique<delivery::PgEventStore>(pool_.get());
    service_ = std::make_unique<delivery::DeliveryServiceImpl>(store_.get());
    grpc::ServerBuilder builder;
    builder.SetMaxReceiveMessageSize(delivery::kMaxEnqueueRequestBytes);
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    delivery_port_ = port;
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    delivery_stub_ = pb::DeliveryService::NewStub(channel_);

    auto supplier = repo_->CreateSupplier({"Edinburgh Tours", "https://octo.example.com/v1", {}});
    ASSERT_THAT(supplier, IsOk());
    supplier_id_ = supplier->id;
    auto a = repo_->CreateConnection(supplier_id_, "Viator", 100);
    ASSERT_THAT(a, IsOk());
    connection_a_ = a->id;
    auto b = repo_->CreateConnection(supplier_id_, "GetYourGuide", 100);
    ASSERT_THAT(b, IsOk());
    connection_b_ = b->id;
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
    PgRepositoryTest::TearDown();
  }

  int PoolSize() const override { return 10; }

  std::string NewWebhook(const std::string& connection_id,
                         const std::string& event = "booking_update") {
    subscription::NewWebhook w;
    w.connection_id = connection_id;
    w.event = event;
    w.url = "https://hooks.example.com/octo";
    w.secret = crypto::NewSigningSecret();
    auto created = repo_->CreateWebhook(w);
    EXPECT_THAT(created, IsOk());
    return created.ok() ? created->id : std::string();
  }

  std::string NewSupplier(const std::string& name) {
    auto supplier = repo_->CreateSupplier({name, "https://octo.example.com/v1", {}});
    EXPECT_THAT(supplier, IsOk());
    return supplier.ok() ? supplier->id : std::string();
  }

  // A booking_update of booking `uuid` for the test supplier.
  pb::PublishEventRequest Booking(const std::string& key, const std::string& resource_json) const {
    pb::PublishEventRequest e;
    e.set_idempotency_key(key);
    e.set_supplier_id(supplier_id_);
    e.set_event("booking_update");
    e.set_resource_json(resource_json);
    *e.mutable_occurred_at() = At();
    return e;
  }

  static pb::EnqueueEvent ToEnqueue(const pb::PublishEventRequest& event) {
    pb::EnqueueEvent e;
    *e.mutable_event() = event;
    return e;
  }

  grpc::Status Enqueue(const pb::EnqueueRequest& request, pb::EnqueueResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return delivery_stub_->Enqueue(&context, request, response);
  }

  // One event, one answer.
  grpc::Status EnqueueOne(const pb::PublishEventRequest& event, pb::PublishEventResponse* result) {
    pb::EnqueueRequest request;
    *request.add_events() = ToEnqueue(event);
    pb::EnqueueResponse response;
    grpc::Status status = Enqueue(request, &response);
    if (status.ok() && response.results_size() == 1) *result = response.results(0);
    return status;
  }

  std::string Text(const std::string& sql) const {
    auto conn = Raw();
    pqxx::work txn(*conn);
    const pqxx::row row = txn.exec1(sql);
    return row[0].is_null() ? std::string("<null>") : row[0].as<std::string>();
  }

  long long StoredRows() const {
    return Count(
        "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM deliveries) + "
        "(SELECT count(*) FROM resource_snapshots)");
  }

  std::unique_ptr<delivery::PgEventStore> store_;
  std::unique_ptr<delivery::DeliveryServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::DeliveryService::Stub> delivery_stub_;
  int delivery_port_ = 0;
  std::string supplier_id_;
  std::string connection_a_;
  std::string connection_b_;
};

}  // namespace octo::testing
