// The internal caller checks (services/common/grpc_auth.h): the access table,
// the token files, and a real in-process gRPC server whose calls are refused
// before any handler runs.
#include "services/common/grpc_auth.h"
#include "services/common/log_throttle.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace octo::grpc_auth {
namespace {

namespace pb = ::octo::webhooks::v1;
using ::testing::HasSubstr;

const std::string kGatewayToken(40, 'g');
const std::string kAdminToken(40, 'a');
const std::string kPublisherToken(40, 'p');

CallerTokens Tokens() {
  absl::StatusOr<CallerTokens> tokens = CallerTokens::FromPairs(
      {{"gateway", kGatewayToken}, {"admin", kAdminToken}, {"publisher", kPublisherToken}});
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  return *tokens;
}

std::string Bearer(const std::string& token) { return "Bearer " + token; }

TEST(GrpcAuthPolicy, EachCallerReachesOnlyItsServices) {
  const CallerTokens tokens = Tokens();
  EXPECT_TRUE(Authorize(tokens, "/octo.webhooks.v1.AdminService/CreateApiKey", Bearer(kAdminToken)).ok());
  EXPECT_TRUE(Authorize(tokens, "/octo.webhooks.v1.EventService/PublishEvent", Bearer(kPublisherToken)).ok());
  EXPECT_TRUE(Authorize(tokens, "/octo.webhooks.v1.SubscriptionService/ListWebhooks", Bearer(kGatewayToken)).ok());
  // The gateway may not publish; a publisher may not create API keys.
  EXPECT_EQ(Authorize(tokens, "/octo.webhooks.v1.EventService/PublishEvent", Bearer(kGatewayToken)).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Authorize(tokens, "/octo.webhooks.v1.AdminService/CreateApiKey", Bearer(kPublisherToken)).code(),
            absl::StatusCode::kPermissionDenied);
  // Nobody but octo-subscription stores events in octo-delivery.
  EXPECT_EQ(Authorize(tokens, "/octo.webhooks.v1.DeliveryService/Enqueue", Bearer(kAdminToken)).code(),
            absl::StatusCode::kPermissionDenied);
  // A service missing from the table is refused to everybody.
  EXPECT_EQ(Authorize(tokens, "/some.Other/Call", Bearer(kAdminToken)).code(),
            absl::StatusCode::kPermissionDenied);
}

// The internet-facing gateway gets of OperatorService only what its dashboard
// calls; operator administration is octo-admin's.
TEST(GrpcAuthPolicy, TheGatewayGetsOnlyTheOperatorMethodsItCalls) {
  const CallerTokens tokens = Tokens();
  const std::string ops = "/octo.webhooks.v1.OperatorService/";
  for (const char* method : {"Login", "AuthenticateSession", "Logout", "ListSupplierConnections",
                             "ListSupplierWebhooks", "GetSupplierWebhook"}) {
    EXPECT_TRUE(Authorize(tokens, ops + method, Bearer(kGatewayToken)).ok()) << method;
    EXPECT_TRUE(Authorize(tokens, ops + method, Bearer(kAdminToken)).ok()) << method;
  }
  for (const char* method : {"CreateOperator", "ListOperators", "DeleteOperator", "LoginX", ""}) {
    const absl::Status refused = Authorize(tokens, ops + method, Bearer(kGatewayToken));
    EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << method;
    EXPECT_TRUE(IsCallerRefusal(refused)) << method;
  }
  EXPECT_TRUE(Authorize(tokens, ops + "CreateOperator", Bearer(kAdminToken)).ok());
  EXPECT_EQ(Authorize(tokens, ops + "Login", Bearer(kPublisherToken)).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(MayCall("gateway", "/octo.webhooks.v1.OperatorService/Login"));
  EXPECT_FALSE(MayCall("gateway", "octo.webhooks.v1.OperatorService/Login"));  // no leading slash
  EXPECT_FALSE(MayCall("gateway", "/octo.webhooks.v1.OperatorService"));      // no method
}

TEST(GrpcAuthPolicy, MissingOrWrongTokenIsUnauthenticated) {
  const CallerTokens tokens = Tokens();
  const std::string method = "/octo.webhooks.v1.AdminService/CreateApiKey";
  EXPECT_EQ(Authorize(tokens, method, "").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(tokens, method, kAdminToken).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(tokens, method, Bearer(std::string(40, 'x'))).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(tokens, method, Bearer(kAdminToken + "x")).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(tokens, method, Bearer(kAdminToken.substr(1))).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(GrpcAuthPolicy, HealthIsOpenReflectionIsNot) {
  const CallerTokens tokens = Tokens();
  EXPECT_TRUE(Authorize(tokens, "/grpc.health.v1.Health/Check", "").ok());
  EXPECT_EQ(Authorize(tokens, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Authorize(tokens, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                        Bearer(kAdminToken)).ok());
}

TEST(GrpcAuthTokens, FindsTheCallerAndRefusesBadTables) {
  const CallerTokens tokens = Tokens();
  EXPECT_EQ(tokens.Find(kPublisherToken), "publisher");
  EXPECT_EQ(tokens.Find("nope"), std::nullopt);
  EXPECT_FALSE(CallerTokens::FromPairs({}).ok());
  EXPECT_FALSE(CallerTokens::FromPairs({{"intruder", kAdminToken}}).ok());
  EXPECT_FALSE(CallerTokens::FromPairs({{"admin", "short"}}).ok());
  EXPECT_FALSE(CallerTokens::FromPairs({{"admin", std::string(39, 'a') + " "}}).ok());
  const auto shared = CallerTokens::FromPairs({{"admin", kAdminToken}, {"gateway", kAdminToken}});
  ASSERT_FALSE(shared.ok());
  EXPECT_THAT(shared.status().message(), HasSubstr("share one token"));
  EXPECT_THAT(shared.status().message(), ::testing::Not(HasSubstr(kAdminToken)));
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/octo-grpc-auth-test.XXXXXX";
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  // Owner-only by default: a token file open to all is refused.
  void Write(const std::string& name, const std::string& content, mode_t mode = 0600) const {
    std::ofstream(path_ + "/" + name) << content;
    chmod((path_ + "/" + name).c_str(), mode);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(GrpcAuthTokens, LoadsADirectoryLikeAKubernetesSecretVolume) {
  TempDir dir;
  dir.Write("admin", kAdminToken + "\n");
  dir.Write("publisher", kPublisherToken);
  ASSERT_EQ(mkdir((dir.path() + "/..data").c_str(), 0700), 0);  // skipped
  absl::StatusOr<CallerTokens> tokens = CallerTokens::LoadDir(dir.path());
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_THAT(tokens->Identities(), ::testing::ElementsAre("admin", "publisher"));
  EXPECT_EQ(tokens->Find(kAdminToken), "admin");

  dir.Write("admni", kGatewayToken);  // a typo is an error, not a silent gap
  const auto typo = CallerTokens::LoadDir(dir.path());
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.status().message(), HasSubstr("admni"));
  EXPECT_FALSE(CallerTokens::LoadDir("").ok());
  EXPECT_FALSE(CallerTokens::LoadDir(dir.path() + "/missing").ok());
  EXPECT_FALSE(ReadTokenFile("--x", dir.path() + "/missing").ok());
  EXPECT_FALSE(ReadTokenFile("--x", "").ok());
  EXPECT_EQ(ReadTokenFile("--x", dir.path() + "/admin").value_or(""), kAdminToken);
}

// A Kubernetes Secret volume: the keys are symlinks into a `..data`
// directory (itself a symlink to a timestamped one), files 0440.
TEST(GrpcAuthTokens, LoadsTheSymlinkedLayoutOfASecretVolume) {
  TempDir dir;
  const std::string real = dir.path() + "/..2026_12_02_12_00_00.000000001";
  ASSERT_EQ(mkdir(real.c_str(), 0755), 0);
  ASSERT_EQ(symlink("..2026_12_02_12_00_00.000000001", (dir.path() + "/..data").c_str()), 0);
  for (const auto& [name, token] : {std::pair{"admin", kAdminToken}, std::pair{"gateway", kGatewayToken}}) {
    dir.Write(std::string("..2026_12_02_12_00_00.000000001/") + name, token + "\n", 0440);
    ASSERT_EQ(symlink((std::string("..data/") + name).c_str(), (dir.path() + "/" + name).c_str()), 0);
  }
  absl::StatusOr<CallerTokens> tokens = CallerTokens::LoadDir(dir.path());
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_THAT(tokens->Identities(), ::testing::ElementsAre("admin", "gateway"));
  EXPECT_EQ(ReadTokenFile("--x", dir.path() + "/gateway").value_or(""), kGatewayToken);

  // Opened to every user (the volume's default mode 0644): refused, naming the file.
  chmod((real + "/gateway").c_str(), 0644);
  const auto open_to_all = CallerTokens::LoadDir(dir.path());
  ASSERT_FALSE(open_to_all.ok());
  EXPECT_THAT(open_to_all.status().message(), HasSubstr(dir.path() + "/gateway"));
  EXPECT_THAT(open_to_all.status().message(), HasSubstr("0644"));
  const auto read_open = ReadTokenFile("--subscription_token_file", dir.path() + "/gateway");
  ASSERT_FALSE(read_open.ok());
  EXPECT_THAT(read_open.status().message(), HasSubstr("--subscription_token_file"));
  EXPECT_THAT(read_open.status().message(), HasSubstr("0644"));
  chmod((real + "/gateway").c_str(), 0602);  // writable by all is refused too
  EXPECT_FALSE(ReadTokenFile("--x", dir.path() + "/gateway").ok());
  chmod((real + "/gateway").c_str(), 0440);

  // Not a regular file: a directory, a dangling link.
  ASSERT_EQ(mkdir((dir.path() + "/publisher").c_str(), 0700), 0);
  const auto not_a_file = CallerTokens::LoadDir(dir.path());
  ASSERT_FALSE(not_a_file.ok());
  EXPECT_THAT(not_a_file.status().message(), HasSubstr(dir.path() + "/publisher"));
  EXPECT_THAT(not_a_file.status().message(), HasSubstr("not a regular file"));
  EXPECT_FALSE(ReadTokenFile("--x", dir.path() + "/publisher").ok());
  rmdir((dir.path() + "/publisher").c_str());
  ASSERT_EQ(symlink("..data/missing", (dir.path() + "/publisher").c_str()), 0);
  EXPECT_EQ(CallerTokens::LoadDir(dir.path()).status().code(), absl::StatusCode::kNotFound);
}

TEST(GrpcAuthTokens, ARotationAcceptsBothTokensAndSendsTheNewOne) {
  TempDir dir;
  const std::string next(40, 'n');
  dir.Write("gateway", kGatewayToken + "\n" + next + "\n");
  absl::StatusOr<CallerTokens> tokens = CallerTokens::LoadDir(dir.path());
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->Find(kGatewayToken), "gateway");
  EXPECT_EQ(tokens->Find(next), "gateway");
  EXPECT_EQ(ReadTokenFile("--x", dir.path() + "/gateway").value_or(""), next);
  dir.Write("empty", "\n");
  EXPECT_FALSE(ReadTokenFile("--x", dir.path() + "/empty").ok());
}

// A real server: the refused calls never reach a handler (the default
// AdminService / EventService handlers answer UNIMPLEMENTED, so UNIMPLEMENTED
// proves a call got through).
class GrpcAuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(Tokens()); }
  void Start(CallerTokens tokens) {
    if (server_ != nullptr) server_->Shutdown();
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", ServerCredentials(std::move(tokens)), &port_);
    builder.RegisterService(&admin_);
    builder.RegisterService(&events_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  std::shared_ptr<grpc::Channel> Channel(const std::string* token) {
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
    if (token != nullptr) interceptors.push_back(TokenInterceptor(*token));
    return grpc::experimental::CreateCustomChannelWithInterceptors(
        absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials(),
        grpc::ChannelArguments(), std::move(interceptors));
  }
  grpc::Status CreateApiKeyStatus(const std::string* token) {
    grpc::ClientContext context;
    pb::CreateApiKeyRequest request;
    pb::CreateApiKeyResponse response;
    return pb::AdminService::NewStub(Channel(token))->CreateApiKey(&context, request, &response);
  }
  grpc::StatusCode CreateApiKey(const std::string* token) {
    return CreateApiKeyStatus(token).error_code();
  }

  int port_ = 0;
  pb::AdminService::Service admin_;
  pb::EventService::Service events_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(GrpcAuthServerTest, RefusesBeforeTheHandler) {
  const std::string wrong(40, 'w');
  EXPECT_EQ(CreateApiKey(nullptr), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateApiKey(&wrong), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateApiKey(&kPublisherToken), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CreateApiKey(&kAdminToken), grpc::StatusCode::UNIMPLEMENTED);  // reached the handler
}

TEST_F(GrpcAuthServerTest, HealthAnswersWithoutAToken) {
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status =
      grpc::health::v1::Health::NewStub(Channel(nullptr))->Check(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// The refusal crosses the wire recognisably: a process calling on behalf of
// someone else answers INTERNAL for its own wrong token, while an upstream's
// ordinary UNAUTHENTICATED (a partner's bad API key) stays what it is.
TEST_F(GrpcAuthServerTest, ARefusalIsRecognisedAndBecomesInternal) {
  const std::string wrong(40, 'w');
  for (const grpc::Status& refused : {CreateApiKeyStatus(&wrong), CreateApiKeyStatus(nullptr),
                                      CreateApiKeyStatus(&kPublisherToken)}) {
    EXPECT_TRUE(IsCallerRefusal(refused)) << refused.error_message();
    const absl::Status mapped = FromInternalCall(refused, "octo-test");
    EXPECT_EQ(mapped.code(), absl::StatusCode::kInternal) << mapped;
    EXPECT_THAT(mapped.message(), HasSubstr("octo-test"));
  }
  const grpc::Status partner_key(grpc::StatusCode::UNAUTHENTICATED, "unknown API key");
  EXPECT_FALSE(IsCallerRefusal(partner_key));
  EXPECT_EQ(FromInternalCall(partner_key, "octo-test").code(), absl::StatusCode::kUnauthenticated);
  const grpc::Status forbidden(grpc::StatusCode::PERMISSION_DENIED, "not your webhook");
  EXPECT_EQ(FromInternalCall(forbidden, "octo-test").code(), absl::StatusCode::kPermissionDenied);
  // Only the refusal codes: an INTERNAL that quotes the prefix is not one.
  EXPECT_FALSE(IsCallerRefusal(absl::InternalError(std::string(kRefusalPrefix))));
  EXPECT_TRUE(FromInternalCall(grpc::Status::OK, "octo-test").ok());
}

// A rotation over the wire: a server whose caller file holds the old and the
// new token lets calls carrying either through; the retired one is refused
// once the file holds only the new token.
TEST_F(GrpcAuthServerTest, ATwoTokenFileAcceptsBothOverTheWire) {
  TempDir dir;
  const std::string next(40, 'n');
  dir.Write("admin", kAdminToken + "\n" + next + "\n");
  absl::StatusOr<CallerTokens> both = CallerTokens::LoadDir(dir.path());
  ASSERT_TRUE(both.ok()) << both.status();
  Start(*std::move(both));
  EXPECT_EQ(CreateApiKey(&kAdminToken), grpc::StatusCode::UNIMPLEMENTED);  // reached the handler
  EXPECT_EQ(CreateApiKey(&next), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(CreateApiKey(&kGatewayToken), grpc::StatusCode::UNAUTHENTICATED);
  dir.Write("admin", next + "\n");
  absl::StatusOr<CallerTokens> only_new = CallerTokens::LoadDir(dir.path());
  ASSERT_TRUE(only_new.ok()) << only_new.status();
  Start(*std::move(only_new));
  EXPECT_EQ(CreateApiKey(&next), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(CreateApiKey(&kAdminToken), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(LogThrottle, OneLineASecondPerKeyWithTheCountLeftOut) {
  log::Throttle throttle(std::chrono::seconds(1));
  const auto t0 = log::Throttle::Clock::time_point();
  EXPECT_EQ(throttle.Admit("a", t0), 0u);
  EXPECT_EQ(throttle.Admit("a", t0 + std::chrono::milliseconds(10)), std::nullopt);
  EXPECT_EQ(throttle.Admit("a", t0 + std::chrono::milliseconds(20)), std::nullopt);
  EXPECT_EQ(throttle.Admit("b", t0 + std::chrono::milliseconds(30)), 0u);  // keys apart
  EXPECT_EQ(throttle.Admit("a", t0 + std::chrono::seconds(1)), 2u);
  EXPECT_EQ(throttle.Admit("a", t0 + std::chrono::seconds(3)), 0u);
}

}  // namespace
}  // namespace octo::grpc_auth
