// The replicas' channel (services/common/grpc_channel.h) against real
// in-process servers on 127.0.0.1: calls go round-robin over the addresses,
// and a replica whose health service answers NOT_SERVING gets none until
// it is SERVING again.
#include "services/common/grpc_channel.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "octo/webhooks/v1/events.grpc.pb.h"

namespace octo::grpc_channel {
namespace {

namespace pb = ::octo::webhooks::v1;
using namespace std::chrono_literals;

// Counts the calls it gets (and answers UNIMPLEMENTED, as the default does).
class CountingEvents : public pb::EventService::Service {
 public:
  grpc::Status PublishEvents(grpc::ServerContext*, const pb::PublishEventsRequest*,
                             pb::PublishEventsResponse*) override {
    ++calls;
    return {grpc::StatusCode::UNIMPLEMENTED, "counted"};
  }
  std::atomic<int> calls{0};
};

struct Replica {
  CountingEvents events;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

class ReplicaChannelTest : public ::testing::Test {
 protected:
  static constexpr int kReplicas = 3;
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    for (auto& r : replicas_) {
      grpc::ServerBuilder builder;
      builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &r.port);
      builder.RegisterService(&r.events);
      r.server = builder.BuildAndStart();
      ASSERT_NE(r.server, nullptr);
    }
    std::string target = "ipv4:";
    for (int i = 0; i < kReplicas; ++i) absl::StrAppend(&target, i == 0 ? "" : ",", "127.0.0.1:", replicas_[i].port);
    channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), ReplicaChannelArguments());
    stub_ = pb::EventService::NewStub(channel_);
  }
  void TearDown() override {
    for (auto& r : replicas_) {
      if (r.server) r.server->Shutdown(std::chrono::system_clock::now() + 1s);
    }
  }

  // `n` calls; true when every one reached a server.
  bool Call(int n) {
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 5s);
      context.set_wait_for_ready(true);  // until the first health answers
      pb::PublishEventsRequest request;
      pb::PublishEventsResponse response;
      if (stub_->PublishEvents(&context, request, &response).error_code() != grpc::StatusCode::UNIMPLEMENTED) {
        return false;
      }
    }
    return true;
  }
  // Calls until every replica got one (each connection up and its first
  // health answer in), bounded; then forgets the counts.
  bool WarmUp() {
    std::vector<int> seen(kReplicas, 0);
    for (int round = 0; round < 100; ++round) {
      if (!Call(kReplicas)) return false;
      const std::vector<int> counts = TakeCounts();
      bool all = true;
      for (int i = 0; i < kReplicas; ++i) all = (seen[i] += counts[i]) > 0 && all;
      if (all) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::vector<int> TakeCounts() {
    std::vector<int> counts;
    for (auto& r : replicas_) counts.push_back(r.events.calls.exchange(0));
    return counts;
  }

  Replica replicas_[kReplicas];
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::EventService::Stub> stub_;
};

TEST_F(ReplicaChannelTest, CallsGoRoundRobin) {
  ASSERT_TRUE(WarmUp());
  ASSERT_TRUE(Call(30));
  for (int calls : TakeCounts()) EXPECT_EQ(calls, 10);
}

TEST_F(ReplicaChannelTest, ANotServingReplicaGetsNoCallsUntilServingAgain) {
  ASSERT_TRUE(WarmUp());
  replicas_[1].server->GetHealthCheckService()->SetServingStatus("", false);
  // The Watch stream brings the change within milliseconds; a bounded wait
  // until a run of calls skips replica 1.
  bool skipped = false;
  for (int round = 0; round < 50 && !skipped; ++round) {
    TakeCounts();
    ASSERT_TRUE(Call(20));
    skipped = TakeCounts()[1] == 0;
    if (!skipped) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(skipped) << "replica 1 NOT_SERVING still got calls";
  ASSERT_TRUE(Call(40));
  const std::vector<int> counts = TakeCounts();
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[0], 20);
  EXPECT_EQ(counts[2], 20);

  replicas_[1].server->GetHealthCheckService()->SetServingStatus("", true);
  bool back = false;
  for (int round = 0; round < 50 && !back; ++round) {
    ASSERT_TRUE(Call(3));
    back = TakeCounts()[1] > 0;
    if (!back) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(back) << "replica 1 SERVING again got no calls";
}

// The client's health Watch stream must not hold a server's graceful
// shutdown until its deadline (the services give 10 s): the server ends the
// watches when it shuts down.
TEST_F(ReplicaChannelTest, AWatchingClientDoesNotDelayAServerShutdown) {
  ASSERT_TRUE(WarmUp());
  const auto start = std::chrono::steady_clock::now();
  replicas_[0].server->GetHealthCheckService()->Shutdown();
  replicas_[0].server->Shutdown(std::chrono::system_clock::now() + 5s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  replicas_[0].server.reset();
  EXPECT_TRUE(Call(10)) << "calls go on to the others";
}

}  // namespace
}  // namespace octo::grpc_channel
