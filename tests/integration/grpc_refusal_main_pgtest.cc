// A process whose own caller token is refused (a misconfiguration of ours)
// must not answer like a partner's bad API key: the real binaries on a fresh
// database, the gateway and octo-subscription each started with a wrong
// token of the right shape (services/common/grpc_auth.h, FromInternalCall).
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tests/support/http_client.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/process.h"
#include "tests/support/test_callers.h"

namespace octo::testing {
namespace {

namespace pb = ::octo::webhooks::v1;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

class GrpcRefusalMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "octo-grpc-refusal-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    std::ofstream(dir_ + "/wrong") << std::string(64, 'f') << "\n";  // nobody's token
    ::chmod((dir_ + "/wrong").c_str(), 0600);
  }
  void TearDown() override {
    children_.clear();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Starts `binary`; returns the port it wrote to its port file, or 0.
  int Start(const char* binary, const std::string& name, std::vector<std::string> args) {
    const std::string port_file = dir_ + "/" + name + ".port";
    args.push_back("--port_file=" + port_file);
    auto child = ChildProcess::Start({.binary = binary,
                                      .args = std::move(args),
                                      .env = {{"OCTO_DATABASE_URL", db_.conninfo()}},
                                      .log_path = dir_ + "/" + name + ".log"});
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return 0;
    auto port = (*child)->WaitForPortFile(port_file, 30s);
    EXPECT_TRUE(port.ok()) << port.status();
    children_.push_back(*std::move(child));
    return port.ok() ? *port : 0;
  }
  std::string ReadLog(const std::string& name) const {
    std::ifstream in(dir_ + "/" + name + ".log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static grpc::ClientContext* Deadline(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() + 10s);
    return context;
  }

  TestDatabase db_;
  TestCallers callers_;
  std::string dir_;
  std::vector<std::unique_ptr<ChildProcess>> children_;
};

TEST_F(GrpcRefusalMainTest, AWrongOwnTokenIsAServerErrorNeverTheCallersFault) {
  std::vector<std::string> delivery_args = callers_.DeliveryFlags();
  delivery_args.insert(delivery_args.end(), {"--dispatch=false", "--grpc_listen=127.0.0.1:0"});
  const int delivery = Start(OCTO_DELIVERY_BIN, "delivery", delivery_args);
  ASSERT_NE(delivery, 0);
  // octo-subscription with its callers right but its own token for
  // octo-delivery wrong (the flag given last wins).
  std::vector<std::string> subscription_args = callers_.SubscriptionFlags();
  subscription_args.insert(subscription_args.end(),
                           {absl::StrCat("--delivery_target=127.0.0.1:", delivery),
                            "--delivery_token_file=" + dir_ + "/wrong", "--grpc_listen=127.0.0.1:0"});
  const int subscription = Start(OCTO_SUBSCRIPTION_BIN, "subscription", subscription_args);
  ASSERT_NE(subscription, 0);
  const std::string target = absl::StrCat("127.0.0.1:", subscription);

  auto admin = pb::AdminService::NewStub(callers_.Channel(target, "admin"));
  pb::CreateSupplierRequest supplier_request;
  supplier_request.set_name("Edinburgh Tours");
  supplier_request.set_endpoint("https://octo.example.com/v1");
  pb::Supplier supplier;
  grpc::ClientContext c1, c2, c3;
  ASSERT_TRUE(admin->CreateSupplier(Deadline(&c1), supplier_request, &supplier).ok());
  pb::CreateConnectionRequest connection_request;
  connection_request.set_supplier_id(supplier.id());
  connection_request.set_name("Viator");
  pb::Connection connection;
  ASSERT_TRUE(admin->CreateConnection(Deadline(&c2), connection_request, &connection).ok());
  pb::CreateApiKeyRequest key_request;
  key_request.set_connection_id(connection.id());
  pb::CreateApiKeyResponse key;
  ASSERT_TRUE(admin->CreateApiKey(Deadline(&c3), key_request, &key).ok());

  // octo-delivery refuses octo-subscription's token: the publisher sees
  // INTERNAL, not UNAUTHENTICATED (its own token is fine).
  pb::PublishEventRequest booking;
  booking.set_idempotency_key("booking-1-v1");
  booking.set_supplier_id(supplier.id());
  booking.set_event("booking_update");
  booking.set_resource_json(R"({"uuid":"b-1","status":"CONFIRMED"})");
  booking.mutable_occurred_at()->set_seconds(1767323045);
  pb::PublishEventResponse published;
  grpc::ClientContext c4;
  const grpc::Status publish = pb::EventService::NewStub(callers_.Channel(target, "publisher"))
                                   ->PublishEvent(Deadline(&c4), booking, &published);
  EXPECT_EQ(publish.error_code(), grpc::StatusCode::INTERNAL) << publish.error_message();

  // The gateway with a wrong token: a valid API key gets a server error,
  // never 401, and neither a later request (nothing cached as unknown).
  const int gateway = Start(OCTO_GATEWAY_BIN, "gateway",
                            {"--listen=127.0.0.1:0", "--subscription_target=" + target,
                             "--metrics_listen=127.0.0.1:0",
                             "--subscription_token_file=" + dir_ + "/wrong"});
  ASSERT_NE(gateway, 0);
  HttpClient http(gateway);
  for (int attempt = 0; attempt < 2; ++attempt) {
    HttpRequest request;
    request.target = "/octo/webhooks";
    request.headers.emplace_back("Authorization", "Bearer " + key.key());
    auto response = http.Send(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_GE(response->status, 500) << attempt << ": " << response->body;
  }
  children_.clear();  // stopped: the logs are complete
  EXPECT_THAT(ReadLog("gateway"), HasSubstr("internal call refused"));
  EXPECT_THAT(ReadLog("subscription"), HasSubstr("internal call refused"));
}

}  // namespace
}  // namespace octo::testing
