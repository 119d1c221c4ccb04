// Internal authentication of the real binaries (services/common/grpc_auth.h):
// octo-delivery and octo-subscription as child processes on a fresh database,
// called without a token, with a wrong one, with a known caller's token on a
// service outside its identity, and with the right one.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octo/webhooks/v1/delivery.grpc.pb.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "octo/webhooks/v1/operations.grpc.pb.h"
#include "octo/webhooks/v1/operators.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/process.h"
#include "tests/support/test_callers.h"

namespace octo::testing {
namespace {

namespace pb = ::octo::webhooks::v1;
namespace health = ::grpc::health::v1;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

// A token of the right shape that no caller holds.
const std::string kWrongToken(64, 'f');

class GrpcAuthMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    std::string pattern =
        (std::filesystem::temp_directory_path() / "octo-grpc-auth-main-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    subscription_.reset();
    delivery_.reset();
    db_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Starts a binary with `args`; returns its gRPC port, or 0.
  int StartChild(const char* binary, const std::string& name, std::vector<std::string> args,
                 std::unique_ptr<ChildProcess>* child) {
    const std::string port_file = dir_ + "/" + name + ".port";
    args.push_back("--grpc_listen=127.0.0.1:0");
    args.push_back("--port_file=" + port_file);
    auto started = ChildProcess::Start({.binary = binary,
                                        .args = std::move(args),
                                        .env = {{"OCTO_DATABASE_URL", db_->conninfo()}},
                                        .log_path = dir_ + "/" + name + ".log"});
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return 0;
    *child = *std::move(started);
    auto port = (*child)->WaitForPortFile(port_file, 30s);
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : 0;
  }

  void StartBoth() {
    std::vector<std::string> delivery_args = callers_.DeliveryFlags();
    delivery_args.push_back("--dispatch=false");
    const int delivery_port = StartChild(OCTO_DELIVERY_BIN, "delivery", delivery_args, &delivery_);
    ASSERT_NE(delivery_port, 0);
    delivery_target_ = absl::StrCat("127.0.0.1:", delivery_port);
    std::vector<std::string> subscription_args = callers_.SubscriptionFlags();
    subscription_args.push_back("--delivery_target=" + delivery_target_);
    const int port = StartChild(OCTO_SUBSCRIPTION_BIN, "subscription", subscription_args, &subscription_);
    ASSERT_NE(port, 0);
    subscription_target_ = absl::StrCat("127.0.0.1:", port);
  }

  // A channel as `who`: a caller identity, "none" (no token) or "wrong".
  std::shared_ptr<grpc::Channel> As(const std::string& target, const std::string& who) {
    if (who == "none") return ChannelWithToken(target, "");
    if (who == "wrong") return ChannelWithToken(target, kWrongToken);
    return callers_.Channel(target, who);
  }

  template <typename Stub, typename Req, typename Resp>
  static grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                           Stub* stub, const Req& request, Resp* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    return (stub->*method)(&context, request, response);
  }

  std::string ReadLog(const std::string& name) const {
    std::ifstream in(dir_ + "/" + name + ".log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string dir_;
  std::unique_ptr<TestDatabase> db_;
  TestCallers callers_;
  std::unique_ptr<ChildProcess> delivery_;
  std::unique_ptr<ChildProcess> subscription_;
  std::string delivery_target_;
  std::string subscription_target_;
};

struct Expectation {
  std::string who;
  grpc::StatusCode code;
};

TEST_F(GrpcAuthMainTest, SubscriptionServicesAnswerOnlyTheirCallers) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  // AdminService: octo-admin only.
  pb::CreateSupplierRequest supplier_request;
  supplier_request.set_name("Edinburgh Tours");
  supplier_request.set_endpoint("https://octo.example.com/v1");
  for (const Expectation& e : std::vector<Expectation>{{"none", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"wrong", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"publisher", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"gateway", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"subscription", grpc::StatusCode::PERMISSION_DENIED}}) {
    auto admin = pb::AdminService::NewStub(As(subscription_target_, e.who));
    pb::Supplier ignored;
    EXPECT_EQ(Call(&pb::AdminService::Stub::CreateSupplier, admin.get(), supplier_request, &ignored).error_code(),
              e.code)
        << e.who;
  }
  {
    pqxx::connection conn(db_->conninfo());
    pqxx::work txn(conn);
    EXPECT_EQ(txn.exec1("SELECT count(*) FROM suppliers")[0].as<long long>(), 0)
        << "a refused call changed nothing";
  }
  auto admin = pb::AdminService::NewStub(As(subscription_target_, "admin"));
  pb::Supplier supplier;
  ASSERT_TRUE(Call(&pb::AdminService::Stub::CreateSupplier, admin.get(), supplier_request, &supplier).ok());
  pb::CreateConnectionRequest connection_request;
  connection_request.set_supplier_id(supplier.id());
  connection_request.set_name("Viator");
  pb::Connection connection;
  ASSERT_TRUE(Call(&pb::AdminService::Stub::CreateConnection, admin.get(), connection_request, &connection).ok());
  pb::CreateApiKeyRequest key_request;
  key_request.set_connection_id(connection.id());
  pb::CreateApiKeyResponse key;
  ASSERT_TRUE(Call(&pb::AdminService::Stub::CreateApiKey, admin.get(), key_request, &key).ok());

  // SubscriptionService: the gateway (and octo-admin); AuthService: the gateway.
  pb::CreateWebhookRequest webhook;
  webhook.set_connection_id(connection.id());
  webhook.set_event("booking_update");
  webhook.set_url("https://hooks.example.com/octo");
  for (const Expectation& e : std::vector<Expectation>{{"none", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"wrong", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"publisher", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"gateway", grpc::StatusCode::OK}}) {
    auto subscriptions = pb::SubscriptionService::NewStub(As(subscription_target_, e.who));
    pb::CreateWebhookResponse created;
    EXPECT_EQ(Call(&pb::SubscriptionService::Stub::CreateWebhook, subscriptions.get(), webhook, &created).error_code(),
              e.code)
        << e.who;
  }
  pb::AuthenticateRequest auth_request;
  auth_request.set_api_key(key.key());
  for (const Expectation& e : std::vector<Expectation>{{"none", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"admin", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"publisher", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"gateway", grpc::StatusCode::OK}}) {
    auto auth = pb::AuthService::NewStub(As(subscription_target_, e.who));
    pb::AuthenticateResponse who;
    EXPECT_EQ(Call(&pb::AuthService::Stub::Authenticate, auth.get(), auth_request, &who).error_code(), e.code)
        << e.who;
  }

  // OperatorService: operator administration is octo-admin's; the gateway
  // (the dashboard) signs operators in and reads their supplier's views;
  // a publisher gets nothing of it.
  pb::CreateOperatorRequest operator_request;
  operator_request.set_supplier_id(supplier.id());
  operator_request.set_name("alice");
  for (const Expectation& e : std::vector<Expectation>{{"none", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"publisher", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"gateway", grpc::StatusCode::PERMISSION_DENIED}}) {
    auto operators = pb::OperatorService::NewStub(As(subscription_target_, e.who));
    pb::CreateOperatorResponse ignored;
    EXPECT_EQ(Call(&pb::OperatorService::Stub::CreateOperator, operators.get(), operator_request, &ignored)
                  .error_code(),
              e.code)
        << e.who;
  }
  auto admin_operators = pb::OperatorService::NewStub(As(subscription_target_, "admin"));
  pb::CreateOperatorResponse alice;
  ASSERT_TRUE(Call(&pb::OperatorService::Stub::CreateOperator, admin_operators.get(), operator_request, &alice).ok());
  pb::LoginRequest login;
  login.set_name("alice");
  login.set_password(alice.password());
  pb::ListSupplierConnectionsRequest supplier_connections;
  supplier_connections.set_supplier_id(supplier.id());
  for (const Expectation& e : std::vector<Expectation>{{"publisher", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"gateway", grpc::StatusCode::OK},
                                                       {"admin", grpc::StatusCode::OK}}) {
    auto operators = pb::OperatorService::NewStub(As(subscription_target_, e.who));
    pb::OperatorSession session;
    EXPECT_EQ(Call(&pb::OperatorService::Stub::Login, operators.get(), login, &session).error_code(), e.code)
        << e.who;
    pb::ListSupplierConnectionsResponse listed;
    const grpc::Status status = Call(&pb::OperatorService::Stub::ListSupplierConnections, operators.get(),
                                     supplier_connections, &listed);
    EXPECT_EQ(status.error_code(), e.code) << e.who << ": " << status.error_message();
    if (status.ok()) {
      EXPECT_EQ(listed.connections_size(), 1) << e.who;
    }
  }

  // EventService: publishers only; the published event reaches octo-delivery
  // with octo-subscription's own token.
  pb::PublishEventRequest booking;
  booking.set_idempotency_key("booking-1-v1");
  booking.set_supplier_id(supplier.id());
  booking.set_event("booking_update");
  booking.set_resource_json(R"({"uuid":"b-1","status":"CONFIRMED"})");
  booking.mutable_occurred_at()->set_seconds(1767323045);
  for (const Expectation& e : std::vector<Expectation>{{"none", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"wrong", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"gateway", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"admin", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"publisher", grpc::StatusCode::OK}}) {
    auto events = pb::EventService::NewStub(As(subscription_target_, e.who));
    pb::PublishEventResponse published;
    EXPECT_EQ(Call(&pb::EventService::Stub::PublishEvent, events.get(), booking, &published).error_code(), e.code)
        << e.who;
    if (e.code == grpc::StatusCode::OK) {
      EXPECT_EQ(published.delivery_count(), 1);
    }
  }

  // Health stays open for the kubelet's probe.
  auto health_stub = health::Health::NewStub(As(subscription_target_, "none"));
  health::HealthCheckRequest health_request;
  health::HealthCheckResponse health_response;
  EXPECT_TRUE(Call(&health::Health::Stub::Check, health_stub.get(), health_request, &health_response).ok());
}

TEST_F(GrpcAuthMainTest, DeliveryAnswersOnlyTheSubscriptionService) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  pb::EnqueueRequest empty;  // no events: stores nothing, answers OK once admitted
  for (const Expectation& e : std::vector<Expectation>{{"none", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"wrong", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"admin", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"publisher", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"gateway", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"subscription", grpc::StatusCode::OK}}) {
    auto delivery = pb::DeliveryService::NewStub(As(delivery_target_, e.who));
    pb::EnqueueResponse ignored;
    EXPECT_EQ(Call(&pb::DeliveryService::Stub::Enqueue, delivery.get(), empty, &ignored).error_code(), e.code)
        << e.who;
  }
  // The delivery log of a real webhook (made through octo-subscription):
  // answered OK to octo-subscription only.
  auto admin = pb::AdminService::NewStub(As(subscription_target_, "admin"));
  pb::CreateSupplierRequest supplier_request;
  supplier_request.set_name("Edinburgh Tours");
  supplier_request.set_endpoint("https://octo.example.com/v1");
  pb::Supplier supplier;
  ASSERT_TRUE(Call(&pb::AdminService::Stub::CreateSupplier, admin.get(), supplier_request, &supplier).ok());
  pb::CreateConnectionRequest connection_request;
  connection_request.set_supplier_id(supplier.id());
  connection_request.set_name("Viator");
  pb::Connection connection;
  ASSERT_TRUE(Call(&pb::AdminService::Stub::CreateConnection, admin.get(), connection_request, &connection).ok());
  pb::CreateWebhookRequest webhook_request;
  webhook_request.set_connection_id(connection.id());
  webhook_request.set_event("booking_update");
  webhook_request.set_url("https://hooks.example.com/octo");
  auto subscriptions = pb::SubscriptionService::NewStub(As(subscription_target_, "gateway"));
  pb::CreateWebhookResponse webhook;
  ASSERT_TRUE(Call(&pb::SubscriptionService::Stub::CreateWebhook, subscriptions.get(), webhook_request, &webhook).ok());
  pb::ListDeliveriesRequest list;
  list.set_connection_id(connection.id());
  list.set_webhook_id(webhook.webhook().id());
  for (const Expectation& e : std::vector<Expectation>{{"none", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"wrong", grpc::StatusCode::UNAUTHENTICATED},
                                                       {"admin", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"publisher", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"gateway", grpc::StatusCode::PERMISSION_DENIED},
                                                       {"subscription", grpc::StatusCode::OK}}) {
    auto operations = pb::DeliveryOperationsService::NewStub(As(delivery_target_, e.who));
    pb::ListDeliveriesResponse listed;
    const grpc::Status status =
        Call(&pb::DeliveryOperationsService::Stub::ListDeliveries, operations.get(), list, &listed);
    EXPECT_EQ(status.error_code(), e.code) << e.who << ": " << status.error_message();
    if (status.ok()) {
      EXPECT_EQ(listed.deliveries_size(), 0) << "a webhook nothing was published for";
    }
  }
  auto health_stub = health::Health::NewStub(As(delivery_target_, "none"));
  health::HealthCheckRequest health_request;
  health::HealthCheckResponse health_response;
  EXPECT_TRUE(Call(&health::Health::Stub::Check, health_stub.get(), health_request, &health_response).ok());

  // The refusals are logged with the caller and the method, never a token.
  subscription_->Terminate(20s);
  delivery_->Terminate(20s);
  const std::string log = ReadLog("delivery") + ReadLog("subscription");
  EXPECT_THAT(ReadLog("delivery"), HasSubstr("grpc call refused"));
  EXPECT_THAT(ReadLog("delivery"), HasSubstr("\"caller\":\"gateway\""));
  for (const std::string& token : {kWrongToken, callers_.Token("admin"), callers_.Token("gateway"),
                                   callers_.Token("publisher"), callers_.Token("subscription")}) {
    EXPECT_THAT(log, Not(HasSubstr(token)));
  }
}

TEST_F(GrpcAuthMainTest, ServicesRefuseToStartWithoutValidCallerTokens) {
  std::unique_ptr<ChildProcess> child;
  const auto exit_code = [&](const char* binary, std::vector<std::string> args) {
    auto started = ChildProcess::Start({.binary = binary,
                                        .args = std::move(args),
                                        .env = {{"OCTO_DATABASE_URL", db_->conninfo()},
                                                {"OCTO_GRPC_CALLERS_DIR", ""},
                                                {"OCTO_DELIVERY_TOKEN_FILE", ""}},
                                        .log_path = dir_ + "/refused.log"});
    EXPECT_TRUE(started.ok());
    if (!started.ok()) return -1;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while ((*started)->IsRunning() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    return (*started)->Terminate(1s).exit_code;
  };
  const std::string listen = "--grpc_listen=127.0.0.1:0";
  // Each refusal's log line names the flag (and the file) to fix.
  auto log_since = [&, seen = std::size_t{0}]() mutable {
    const std::string log = ReadLog("refused");
    const std::string fresh = log.substr(std::min(seen, log.size()));
    seen = log.size();
    return fresh;
  };
  EXPECT_EQ(exit_code(OCTO_DELIVERY_BIN, {listen}), 2);
  EXPECT_THAT(log_since(), HasSubstr("--grpc_callers_dir"));
  EXPECT_EQ(exit_code(OCTO_SUBSCRIPTION_BIN, {listen, "--grpc_callers_dir=" + callers_.dir()}), 2)
      << "no --delivery_token_file";
  EXPECT_THAT(log_since(), HasSubstr("--delivery_token_file"));
  std::ofstream(callers_.dir() + "/admnistrator") << std::string(64, 'a');  // an unknown identity
  ::chmod((callers_.dir() + "/admnistrator").c_str(), 0600);  // refused for its name, not its mode
  EXPECT_EQ(exit_code(OCTO_DELIVERY_BIN, {listen, "--grpc_callers_dir=" + callers_.dir()}), 2);
  const std::string unknown = log_since();
  EXPECT_THAT(unknown, HasSubstr("unknown caller"));
  EXPECT_THAT(unknown, HasSubstr("admnistrator"));
  std::filesystem::remove(callers_.dir() + "/admnistrator");
  std::ofstream(callers_.dir() + "/publisher") << "short\n";  // not a random token (mode kept 0600)
  EXPECT_EQ(exit_code(OCTO_DELIVERY_BIN, {listen, "--grpc_callers_dir=" + callers_.dir()}), 2);
  const std::string short_token = log_since();
  EXPECT_THAT(short_token, HasSubstr("--grpc_callers_dir"));
  EXPECT_THAT(short_token, HasSubstr(callers_.dir() + "/publisher"));
  EXPECT_THAT(short_token, HasSubstr("shorter than"));
  EXPECT_THAT(ReadLog("refused"), Not(HasSubstr(callers_.Token("admin"))));
}

}  // namespace
}  // namespace octo::testing
