// RunAdminCommand against an in-process gRPC server with a fake AdminService:
// output formats, the error line, and the read-merge-write of contact fields.
#include "tools/admin/admin_runner.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "tools/admin/admin_args.h"

namespace octo::admin {
namespace {

namespace v1 = ::octo::webhooks::v1;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr char kSupplierId[] = "7a0d3c52-8f61-4d5e-9a8b-0c1d2e3f4a5b";

class FakeAdmin final : public v1::AdminService::Service {
 public:
  grpc::Status GetSupplier(grpc::ServerContext*, const v1::GetSupplierRequest* request,
                           v1::Supplier* response) override {
    if (request->supplier_id() != kSupplierId) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "supplier not found");
    }
    absl::MutexLock lock(&mu_);
    *response = supplier_;
    return grpc::Status::OK;
  }
  grpc::Status UpdateSupplier(grpc::ServerContext*, const v1::UpdateSupplierRequest* request,
                              v1::Supplier* response) override {
    absl::MutexLock lock(&mu_);
    last_update_ = *request;
    if (request->has_name()) supplier_.set_name(request->name());
    if (request->has_contact()) *supplier_.mutable_contact() = request->contact();
    *response = supplier_;
    return grpc::Status::OK;
  }
  grpc::Status ListSuppliers(grpc::ServerContext*, const v1::ListSuppliersRequest*,
                             v1::ListSuppliersResponse* response) override {
    response->add_suppliers()->set_id("s-1");
    response->add_suppliers()->set_id("s-2");
    return grpc::Status::OK;
  }
  grpc::Status CreateApiKey(grpc::ServerContext*, const v1::CreateApiKeyRequest* request,
                            v1::CreateApiKeyResponse* response) override {
    response->mutable_api_key()->set_id("k-1");
    response->mutable_api_key()->set_connection_id(request->connection_id());
    response->mutable_api_key()->set_prefix("octo_abc");
    response->set_key("octo_abcdefgh");
    return grpc::Status::OK;
  }
  grpc::Status CreateConnection(grpc::ServerContext*, const v1::CreateConnectionRequest*,
                                v1::Connection*) override {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "name: must not be empty");
  }

  v1::UpdateSupplierRequest last_update() {
    absl::MutexLock lock(&mu_);
    return last_update_;
  }

 private:
  absl::Mutex mu_;
  v1::Supplier supplier_ = [] {
    v1::Supplier s;
    s.set_id(kSupplierId);
    s.set_name("Demo Tours");
    s.set_endpoint("https://api.demo.example/octo");
    s.mutable_contact()->set_email("old@demo.example");
    s.mutable_contact()->set_telephone("+44 1");
    return s;
  }();
  v1::UpdateSupplierRequest last_update_ ABSL_GUARDED_BY(mu_);
};

class FakeHealth final : public grpc::health::v1::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest* request,
                     HealthCheckResponse* response) override {
    response->set_status(request->service().empty() ? HealthCheckResponse::SERVING
                                                    : HealthCheckResponse::NOT_SERVING);
    return grpc::Status::OK;
  }
};

class AdminRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&admin_);
    builder.RegisterService(&health_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    target_ = "127.0.0.1:" + std::to_string(port_);
    auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
    admin_stub_ = v1::AdminService::NewStub(channel);
    health_stub_ = grpc::health::v1::Health::NewStub(channel);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // Parses `args` and runs them; returns the exit status.
  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), "octo-admin");
    absl::StatusOr<AdminInvocation> inv = ParseAdminArgs(args, target_);
    EXPECT_TRUE(inv.ok()) << inv.status();
    if (!inv.ok()) return -1;
    out_.str("");
    err_.str("");
    return RunAdminCommand(*inv, *admin_stub_, *health_stub_, out_, err_);
  }

  FakeAdmin admin_;
  FakeHealth health_;
  int port_ = 0;
  std::string target_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::AdminService::Stub> admin_stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(AdminRunnerTest, PrintsJsonByDefault) {
  ASSERT_EQ(Run({"supplier", "get", kSupplierId}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("\"name\": \"Demo Tours\""), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("\"email\": \"old@demo.example\""), std::string::npos) << out_.str();
  EXPECT_EQ(err_.str(), "");
}

TEST_F(AdminRunnerTest, OutputIdAndKey) {
  ASSERT_EQ(Run({"supplier", "list", "--output=id"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "s-1\ns-2\n");
  ASSERT_EQ(Run({"key", "create", "--connection=c-1", "--output=key"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "octo_abcdefgh\n");
  ASSERT_EQ(Run({"key", "create", "--connection=c-1", "--output=id"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "k-1\n");
  ASSERT_EQ(Run({"key", "create", "--connection=c-1"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("\"key\": \"octo_abcdefgh\""), std::string::npos) << out_.str();
}

TEST_F(AdminRunnerTest, ErrorsNameTheGrpcCode) {
  EXPECT_EQ(Run({"supplier", "get", "nope"}), kExitRpcFailed);
  EXPECT_EQ(err_.str(), "octo-admin: NOT_FOUND: supplier not found\n");
  EXPECT_EQ(out_.str(), "");

  EXPECT_EQ(Run({"connection", "create", "--supplier=s", "--name=n"}), kExitRpcFailed);
  EXPECT_EQ(err_.str(), "octo-admin: INVALID_ARGUMENT: name: must not be empty\n");

  // Not implemented by the fake: UNIMPLEMENTED, as from an older server.
  EXPECT_EQ(Run({"key", "revoke", "k-1"}), kExitRpcFailed);
  EXPECT_EQ(err_.str().rfind("octo-admin: UNIMPLEMENTED", 0), 0u) << err_.str();
}

TEST_F(AdminRunnerTest, UnreachableServerHintsAtTheTarget) {
  const std::string target = target_;
  server_->Shutdown();
  server_.reset();
  EXPECT_EQ(Run({"supplier", "list", "--timeout=2s"}), kExitRpcFailed);
  EXPECT_EQ(err_.str().rfind("octo-admin: UNAVAILABLE: ", 0), 0u) << err_.str();
  EXPECT_NE(err_.str().find("is octo-subscription running at " + target + "?"), std::string::npos)
      << err_.str();
}

TEST_F(AdminRunnerTest, SupplierUpdateMergesContactFields) {
  ASSERT_EQ(Run({"supplier", "update", kSupplierId, "--email=new@demo.example", "--address="}),
            kExitOk)
      << err_.str();
  const v1::UpdateSupplierRequest sent = admin_.last_update();
  EXPECT_FALSE(sent.has_name());
  ASSERT_TRUE(sent.has_contact());
  EXPECT_EQ(sent.contact().email(), "new@demo.example");  // given
  EXPECT_EQ(sent.contact().telephone(), "+44 1");         // kept from the current contact
  EXPECT_EQ(sent.contact().address(), "");                // given empty: cleared

  // Without contact flags the contact is left alone (not sent).
  ASSERT_EQ(Run({"supplier", "update", kSupplierId, "--name=Renamed"}), kExitOk) << err_.str();
  EXPECT_FALSE(admin_.last_update().has_contact());
  EXPECT_EQ(admin_.last_update().name(), "Renamed");
}

TEST_F(AdminRunnerTest, Health) {
  EXPECT_EQ(Run({"health"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("SERVING"), std::string::npos);
  EXPECT_EQ(Run({"health", "--service=other"}), kExitRpcFailed);
  EXPECT_EQ(err_.str(), "octo-admin: health: NOT_SERVING\n");
}

}  // namespace
}  // namespace octo::admin
