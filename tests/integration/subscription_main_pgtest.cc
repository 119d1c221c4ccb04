// The octo-subscription executable: flags, port file, health, logs and
// graceful shutdown, as a real child process against a real PostgreSQL.
#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/process.h"
#include "tests/support/test_callers.h"

#ifndef OCTO_SUBSCRIPTION_BIN
#error "OCTO_SUBSCRIPTION_BIN must name the octo-subscription binary"
#endif

namespace octo::testing {
namespace {

namespace pb = ::octo::webhooks::v1;
namespace health = ::grpc::health::v1;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

class SubscriptionMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    std::string pattern =
        (std::filesystem::temp_directory_path() / "octo-sub-main-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    child_.reset();
    db_.reset();
    if (dir_.empty()) return;
    if (HasFailure()) {
      std::cerr << "logs kept in " << dir_ << "\n";
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  // Starts the service on 127.0.0.1:0 and connects to it.
  void Start(std::vector<std::string> extra_args = {}) {
    const std::string port_file = dir_ + "/port";
    std::filesystem::remove(port_file);  // a previous run's would be stale
    std::vector<std::string> args = {"--grpc_listen=127.0.0.1:0", "--port_file=" + port_file,
                                     "--default_max_webhooks=5"};
    for (std::string& flag : callers_.SubscriptionFlags()) args.push_back(std::move(flag));
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto child = ChildProcess::Start({.binary = OCTO_SUBSCRIPTION_BIN,
                                      .args = args,
                                      .env = {{"OCTO_DATABASE_URL", db_->conninfo()}},
                                      .log_path = dir_ + "/subscription.log"});
    ASSERT_TRUE(child.ok()) << child.status();
    child_ = *std::move(child);
    auto port = child_->WaitForPortFile(port_file, 20s);
    ASSERT_TRUE(port.ok()) << port.status();
    // octo-admin's identity; the gateway's for AuthService.
    channel_ = callers_.Channel(absl::StrCat("127.0.0.1:", *port), "admin");
    gateway_channel_ = callers_.Channel(absl::StrCat("127.0.0.1:", *port), "gateway");
  }

  // SIGTERM and wait. The channel is closed first: an idle client channel
  // answers the server's shutdown GOAWAY ping only when gRPC's backup poller
  // runs (every 5 s), which would stretch every graceful stop by that much.
  ExitInfo Stop() {
    channel_.reset();
    gateway_channel_.reset();
    return child_->Terminate(15s);
  }

  // The health status of `service`, or -1 when the call fails.
  int Health(const std::string& service) {
    auto stub = health::Health::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    health::HealthCheckRequest request;
    request.set_service(service);
    health::HealthCheckResponse response;
    if (!stub->Check(&context, request, &response).ok()) return -1;
    return static_cast<int>(response.status());
  }

  // Polls the health status until it equals `want` (or 15 s pass).
  bool WaitForHealth(const std::string& service, int want) {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Health(service) == want) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::string ReadLog() const {
    std::ifstream in(dir_ + "/subscription.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  ExitInfo Run(std::vector<std::string> args,
               std::vector<std::pair<std::string, std::string>> env = {}) {
    // The callers' flags first: a test's own flags win over them.
    std::vector<std::string> all = callers_.SubscriptionFlags();
    all.insert(all.end(), args.begin(), args.end());
    auto child = ChildProcess::Start({.binary = OCTO_SUBSCRIPTION_BIN,
                                      .args = std::move(all),
                                      .env = std::move(env),
                                      .log_path = dir_ + "/run.log"});
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return {};
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while ((*child)->IsRunning() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    return (*child)->Terminate(1s);
  }

  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    Stub* stub, const Req& request, Resp* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    return (stub->*method)(&context, request, response);
  }

  std::string dir_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<ChildProcess> child_;
  octo::testing::TestCallers callers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::Channel> gateway_channel_;
};

constexpr int kServing = health::HealthCheckResponse::SERVING;
constexpr int kNotServing = health::HealthCheckResponse::NOT_SERVING;

TEST_F(SubscriptionMainTest, ServesHealthAndStopsCleanlyOnSigterm) {
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_TRUE(WaitForHealth("", kServing));
  EXPECT_TRUE(WaitForHealth("octo.webhooks.v1.postgres", kServing));
  const ExitInfo exit = Stop();
  EXPECT_TRUE(exit.Clean()) << exit.ToString() << "\n" << ReadLog();
}

TEST_F(SubscriptionMainTest, StopsCleanlyOnSigint) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(WaitForHealth("", kServing));
  channel_.reset();
  ASSERT_EQ(::kill(child_->pid(), SIGINT), 0);
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (child_->IsRunning() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  const ExitInfo exit = child_->Terminate(1s);
  EXPECT_TRUE(exit.Clean()) << exit.ToString();
}

TEST_F(SubscriptionMainTest, HealthFollowsPostgres) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(WaitForHealth("octo.webhooks.v1.postgres", kServing));
  db_.reset();  // DROP DATABASE ... WITH (FORCE): the service's connections die
  EXPECT_TRUE(WaitForHealth("octo.webhooks.v1.postgres", kNotServing));
  EXPECT_TRUE(WaitForHealth("", kNotServing));
}

// Every connection of the service dies (as in a server restart or
// failover) while it stays up: the first request afterwards must not fail on
// a dead pooled connection, and health must say SERVING only because the
// server answers.
TEST_F(SubscriptionMainTest, FirstRequestAfterItsConnectionsDiedSucceeds) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(WaitForHealth("octo.webhooks.v1.postgres", kServing));
  auto admin = pb::AdminService::NewStub(channel_);
  pb::CreateSupplierRequest create;
  create.set_name("Tours");
  create.set_endpoint("https://octo.example.com");
  pb::Supplier supplier;
  ASSERT_TRUE(Call(&pb::AdminService::Stub::CreateSupplier, admin.get(), create, &supplier).ok());

  pqxx::connection admin_conn(db_->conninfo());
  pqxx::nontransaction txn(admin_conn);
  const std::string others =
      "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
  ASSERT_GT(txn.exec1("SELECT count(*) " + others)[0].as<int>(), 0);
  // Waits (up to 10 s) until each is gone.
  txn.exec("SELECT pg_terminate_backend(pid, 10000) " + others);

  pb::ListSuppliersRequest list;
  pb::ListSuppliersResponse listed;
  const grpc::Status first =
      Call(&pb::AdminService::Stub::ListSuppliers, admin.get(), list, &listed);
  EXPECT_TRUE(first.ok()) << first.error_code() << " " << first.error_message() << "\n"
                          << ReadLog();
  EXPECT_EQ(listed.suppliers_size(), 1);
  pb::Supplier second;
  create.set_name("Tours 2");
  EXPECT_TRUE(Call(&pb::AdminService::Stub::CreateSupplier, admin.get(), create, &second).ok());
  EXPECT_TRUE(WaitForHealth("octo.webhooks.v1.postgres", kServing));
}

TEST_F(SubscriptionMainTest, LogsOneLinePerRequestWithoutSecrets) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto admin = pb::AdminService::NewStub(channel_);
  auto subscriptions = pb::SubscriptionService::NewStub(channel_);

  pb::CreateSupplierRequest supplier_request;
  supplier_request.set_name("Tours");
  supplier_request.set_endpoint("https://octo.example.com");
  pb::Supplier supplier;
  ASSERT_TRUE(
      Call(&pb::AdminService::Stub::CreateSupplier, admin.get(), supplier_request, &supplier).ok());
  pb::CreateConnectionRequest connection_request;
  connection_request.set_supplier_id(supplier.id());
  connection_request.set_name("Viator");
  pb::Connection connection;
  ASSERT_TRUE(
      Call(&pb::AdminService::Stub::CreateConnection, admin.get(), connection_request, &connection)
          .ok());
  EXPECT_EQ(connection.max_webhooks(), 5);  // --default_max_webhooks
  pb::CreateApiKeyRequest key_request;
  key_request.set_connection_id(connection.id());
  pb::CreateApiKeyResponse key;
  ASSERT_TRUE(Call(&pb::AdminService::Stub::CreateApiKey, admin.get(), key_request, &key).ok());

  pb::CreateWebhookRequest create;
  create.set_connection_id(connection.id());
  create.set_event("order_update");
  create.set_url("https://partner:hunter2hunter2@hooks.example.com/x");
  (*create.mutable_headers())["X-Api-Key"] = "headervaluesecret";
  pb::CreateWebhookResponse created;
  ASSERT_TRUE(
      Call(&pb::SubscriptionService::Stub::CreateWebhook, subscriptions.get(), create, &created)
          .ok());
  // A failing request with a header value in it.
  (*create.mutable_headers())["X-Api-Key"] = "invalidheadervaluesecret\n";
  pb::CreateWebhookResponse rejected;
  EXPECT_EQ(
      Call(&pb::SubscriptionService::Stub::CreateWebhook, subscriptions.get(), create, &rejected)
          .error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  auto auth = pb::AuthService::NewStub(gateway_channel_);
  pb::AuthenticateRequest auth_request;
  auth_request.set_api_key(key.key());
  pb::AuthenticateResponse who;
  ASSERT_TRUE(Call(&pb::AuthService::Stub::Authenticate, auth.get(), auth_request, &who).ok());

  admin.reset();  // the stubs share the channel; Stop() closes it
  subscriptions.reset();
  auth.reset();
  ASSERT_TRUE(Stop().Clean());
  const std::string log = ReadLog();
  for (const std::string& secret :
       {created.secret(), key.key(), std::string("hunter2hunter2"),
        std::string("headervaluesecret"), std::string("invalidheadervaluesecret"),
        callers_.Token("admin"), callers_.Token("gateway"), callers_.Token("subscription")}) {
    EXPECT_THAT(log, Not(HasSubstr(secret)));
  }
  int request_lines = 0;
  for (absl::string_view piece : absl::StrSplit(log, '\n')) {
    const std::string line(piece);
    if (line.find("\"msg\":\"rpc\"") == std::string::npos) continue;
    ++request_lines;
    EXPECT_THAT(line, HasSubstr("\"duration_ms\":"));
    if (line.find("SubscriptionService/CreateWebhook") != std::string::npos) {
      EXPECT_THAT(line, HasSubstr(connection.id()));
    }
    if (line.find("AuthService/Authenticate") != std::string::npos) {
      EXPECT_THAT(line, HasSubstr(connection.id()));
      EXPECT_THAT(line, HasSubstr("\"code\":\"OK\""));
    }
  }
  EXPECT_EQ(request_lines, 6);
}

TEST_F(SubscriptionMainTest, ServesAfterRestartWithMigrationsAlreadyApplied) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(WaitForHealth("", kServing));
  ASSERT_TRUE(Stop().Clean());
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_TRUE(WaitForHealth("", kServing));
}

// Server reflection answers list_services (grpcurl / grpc_cli rely on it).
// The reflection protos are not installed, so the request is hand-encoded:
// ServerReflectionRequest{list_services: ""} = field 7, length 0.
TEST_F(SubscriptionMainTest, ServesReflection) {
  ASSERT_NO_FATAL_FAILURE(Start());
  grpc::GenericStub stub(channel_);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  ASSERT_NE(call, nullptr);
  const auto step = [&](std::intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<std::intptr_t>(tag) == want;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step(1));
  grpc::Slice request_slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&request_slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(step(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(step(3));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  ASSERT_TRUE(step(4));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& slice : slices)
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_THAT(bytes, HasSubstr("octo.webhooks.v1.SubscriptionService"));
  EXPECT_THAT(bytes, HasSubstr("octo.webhooks.v1.AdminService"));
  EXPECT_THAT(bytes, HasSubstr("octo.webhooks.v1.AuthService"));
  EXPECT_THAT(bytes, HasSubstr("octo.webhooks.v1.EventService"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(step(5));
  EXPECT_TRUE(status.ok()) << status.error_message();
  call.reset();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(SubscriptionMainTest, RefusesNonLoopbackListenWithoutTheFlag) {
  const ExitInfo exit = Run({"--grpc_listen=0.0.0.0:0"}, {{"OCTO_DATABASE_URL", db_->conninfo()}});
  EXPECT_EQ(exit.exit_code, 2) << exit.ToString();
  std::ifstream in(dir_ + "/run.log");
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_THAT(s.str(), HasSubstr("--allow_non_loopback"));
}

TEST_F(SubscriptionMainTest, RequiresADatabaseUrl) {
  const ExitInfo exit = Run({"--grpc_listen=127.0.0.1:0"}, {{"OCTO_DATABASE_URL", ""}});
  EXPECT_EQ(exit.exit_code, 2) << exit.ToString();
}

TEST_F(SubscriptionMainTest, RejectsBadNumericFlags) {
  EXPECT_EQ(Run({"--db_pool_size=0", "--database_url=" + db_->conninfo()}).exit_code, 2);
  EXPECT_EQ(Run({"--default_max_webhooks=0", "--database_url=" + db_->conninfo()}).exit_code, 2);
}

TEST_F(SubscriptionMainTest, RejectsOutOfRangePostgresLimits) {
  const std::string db = "--database_url=" + db_->conninfo();
  EXPECT_EQ(Run({"--pg_connect_timeout=1s", db}).exit_code, 2);
  EXPECT_EQ(Run({"--pg_lock_timeout=-1s", db}).exit_code, 2);
  EXPECT_EQ(Run({"--pg_keepalives_count=0", db}).exit_code, 2);
}

TEST_F(SubscriptionMainTest, UnreachableDatabaseExitsNonZero) {
  const ExitInfo exit =
      Run({"--grpc_listen=127.0.0.1:0", "--database_url=host=127.0.0.1 port=1 connect_timeout=2"});
  EXPECT_EQ(exit.exit_code, 1) << exit.ToString();
}

}  // namespace
}  // namespace octo::testing
