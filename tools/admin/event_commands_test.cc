// octo-admin's `event publish`: the grammar (pure) and the call against an
// in-process gRPC server with a fake EventService.
#include "tools/admin/event_commands.h"

#include <google/protobuf/util/time_util.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace octo::admin {
namespace {

namespace v1 = ::octo::webhooks::v1;

constexpr char kSupplier[] = "7a0d3c52-8f61-4d5e-9a8b-0c1d2e3f4a5b";

std::vector<std::string> Args(std::vector<std::string> words) {
  words.insert(words.begin(), "octo-admin");
  return words;
}

TEST(EventArgsTest, RecognisesTheCommandWord) {
  EXPECT_TRUE(IsEventCommand(Args({"--target", "h:1", "event", "publish"})));
  EXPECT_TRUE(IsEventCommand(Args({"events", "publish"})));
  EXPECT_FALSE(IsEventCommand(Args({"webhook", "list"})));
  EXPECT_FALSE(IsEventCommand(Args({"--event", "event", "supplier", "list"})));
  EXPECT_FALSE(IsEventCommand(Args({"event", "publish", "--help"})));  // the whole usage
}

TEST(EventArgsTest, FillsTheRequest) {
  auto inv = ParseEventArgs(Args({"event", "publish", "--supplier", kSupplier, "--event=booking_update",
                                  "--idempotency_key=k-1", "--resource={\"uuid\":\"b-1\"}",
                                  "--occurred-at=2026-05-01T12:00:00Z", "--connection=c-1", "--output=id",
                                  "--target=subscription:50051"}),
                            "127.0.0.1:50051");
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->target, "subscription:50051");
  EXPECT_EQ(inv->output, "id");
  EXPECT_EQ(inv->request.supplier_id(), kSupplier);
  EXPECT_EQ(inv->request.connection_id(), "c-1");
  EXPECT_EQ(inv->request.event(), "booking_update");  // '_' kept in values
  EXPECT_EQ(inv->request.idempotency_key(), "k-1");
  EXPECT_EQ(inv->request.resource_json(), "{\"uuid\":\"b-1\"}");
  EXPECT_EQ(google::protobuf::util::TimeUtil::ToString(inv->request.occurred_at()), "2026-05-01T12:00:00Z");
  EXPECT_FALSE(inv->request.has_diff_json());
}

TEST(EventArgsTest, UsageErrors) {
  const std::vector<std::string> base = {"event", "publish", "--supplier=s", "--event=booking_update",
                                         "--idempotency-key=k"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> words = base;
    words.insert(words.end(), extra.begin(), extra.end());
    return ParseEventArgs(Args(words), "t").status();
  };
  EXPECT_TRUE(with({"--resource={}"}).ok());
  EXPECT_TRUE(with({"--resource-file=/dev/null"}).ok());
  for (const absl::Status& s :
       {with({}), with({"--resource={}", "--resource-file=f"}), with({"--resource={}", "--colour=red"}),
        with({"--resource={}", "--event=order_update"}), with({"--resource={}", "--occurred-at=yesterday"}),
        with({"--resource={}", "--output=key"}), with({"--resource"}),
        ParseEventArgs(Args({"event", "send", "--supplier=s"}), "t").status(),
        ParseEventArgs(Args({"event", "publish", "--event=e", "--idempotency-key=k", "--resource={}"}), "t")
            .status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("octo-admin --help"), std::string::npos) << s;
  }
}

class FakeEvents final : public v1::EventService::Service {
 public:
  grpc::Status PublishEvent(grpc::ServerContext*, const v1::PublishEventRequest* request,
                            v1::PublishEventResponse* response) override {
    absl::MutexLock lock(&mu_);
    last_ = *request;
    if (request->event() == "unknown_update") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "event: unknown");
    }
    response->set_event_id("e-1");
    response->set_delivery_count(2);
    return grpc::Status::OK;
  }
  v1::PublishEventRequest Last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  absl::Mutex mu_;
  v1::PublishEventRequest last_;
};

class EventRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    stub_ = v1::EventService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(); }

  int Run(std::vector<std::string> words) {
    auto inv = ParseEventArgs(Args(std::move(words)), "unused");
    EXPECT_TRUE(inv.ok()) << inv.status();
    return RunEventCommand(*inv, *stub_, out_, err_);
  }

  FakeEvents fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::EventService::Stub> stub_;
  std::ostringstream out_, err_;
};

TEST_F(EventRunnerTest, PublishesWithNowAndPrintsTheResponse) {
  EXPECT_EQ(Run({"event", "publish", "--supplier=s", "--event=booking_update", "--idempotency-key=k",
                 "--resource={}"}),
            0);
  EXPECT_NE(out_.str().find("\"eventId\": \"e-1\""), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("\"deliveryCount\": 2"), std::string::npos) << out_.str();
  EXPECT_GT(fake_.Last().occurred_at().seconds(), 1'700'000'000);  // now, not unset
}

TEST_F(EventRunnerTest, ReadsTheResourceFileAndPrintsOnlyTheId) {
  const std::string path = ::testing::TempDir() + "/event_resource.json";
  std::ofstream(path) << "{\"uuid\":\"b-2\"}\n";
  EXPECT_EQ(Run({"event", "publish", "--supplier=s", "--event=booking_update", "--idempotency-key=k",
                 "--resource-file", path, "--output=id"}),
            0);
  EXPECT_EQ(out_.str(), "e-1\n");
  EXPECT_EQ(fake_.Last().resource_json(), "{\"uuid\":\"b-2\"}\n");
  std::remove(path.c_str());
}

TEST_F(EventRunnerTest, AnUnreadableFileIsAUsageErrorAndNothingIsSent) {
  EXPECT_EQ(Run({"event", "publish", "--supplier=s", "--event=booking_update", "--idempotency-key=never-sent",
                 "--resource-file=/nonexistent/resource.json"}),
            2);
  EXPECT_NE(err_.str().find("cannot read --resource-file /nonexistent/resource.json"), std::string::npos);
  EXPECT_NE(fake_.Last().idempotency_key(), "never-sent");
}

TEST_F(EventRunnerTest, ARefusalNamesTheGrpcCode) {
  EXPECT_EQ(Run({"event", "publish", "--supplier=s", "--event=unknown_update", "--idempotency-key=k",
                 "--resource={}"}),
            1);
  EXPECT_EQ(err_.str(), "octo-admin: INVALID_ARGUMENT: event: unknown\n");
}

}  // namespace
}  // namespace octo::admin
