// SubscriptionService, AdminService and AuthService in-process on
// 127.0.0.1:0, over a real channel, against a real PostgreSQL.
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "services/common/crypto.h"
#include "services/subscription/admin_service.h"
#include "services/subscription/auth_service.h"
#include "services/subscription/subscription_service.h"
#include "tests/integration/pg_fixture.h"

namespace octo::testing {
namespace {

namespace pb = ::octo::webhooks::v1;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kMissingUuid[] = "00000000-0000-4000-8000-000000000000";
constexpr int kDefaultMaxWebhooks = 4;

MATCHER_P2(GrpcIs, code, prefix, "") {
  *result_listener << "status " << arg.error_code() << " '" << arg.error_message() << "'";
  return arg.error_code() == code && arg.error_message().rfind(prefix, 0) == 0;
}
MATCHER(GrpcOk, "") {
  *result_listener << "status " << arg.error_code() << " '" << arg.error_message() << "'";
  return arg.ok();
}

class GrpcServicesTest : public PgRepositoryTest {
 protected:
  void SetUp() override {
    PgRepositoryTest::SetUp();
    if (HasFatalFailure()) return;
    subscription_ = std::make_unique<subscription::SubscriptionServiceImpl>(repo_.get());
    admin_ = std::make_unique<subscription::AdminServiceImpl>(repo_.get(), kDefaultMaxWebhooks);
    auth_ = std::make_unique<subscription::AuthServiceImpl>(repo_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(subscription_.get());
    builder.RegisterService(admin_.get());
    builder.RegisterService(auth_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    subscriptions_ = pb::SubscriptionService::NewStub(channel);
    admin_stub_ = pb::AdminService::NewStub(channel);
    auth_stub_ = pb::AuthService::NewStub(channel);

    pb::CreateSupplierRequest supplier;
    supplier.set_name("Edinburgh Tours");
    supplier.set_endpoint("https://octo.example.com/v1");
    pb::Supplier created_supplier;
    ASSERT_THAT(Call(&pb::AdminService::Stub::CreateSupplier, admin_stub_.get(), supplier,
                     &created_supplier),
                GrpcOk());
    supplier_id_ = created_supplier.id();
    connection_id_ = NewConnection("Viator");
    other_connection_id_ = NewConnection("GetYourGuide");
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
    PgRepositoryTest::TearDown();
  }

  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    Stub* stub, const Req& request, Resp* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub->*method)(&context, request, response);
  }

  std::string NewConnection(const std::string& name, int max_webhooks = 0) {
    pb::CreateConnectionRequest request;
    request.set_supplier_id(supplier_id_);
    request.set_name(name);
    request.set_max_webhooks(max_webhooks);
    pb::Connection response;
    EXPECT_THAT(
        Call(&pb::AdminService::Stub::CreateConnection, admin_stub_.get(), request, &response),
        GrpcOk());
    return response.id();
  }

  pb::CreateWebhookRequest ValidCreate() const {
    pb::CreateWebhookRequest r;
    r.set_connection_id(connection_id_);
    r.set_event("booking_update");
    r.set_url("https://hooks.example.com/octo");
    return r;
  }

  grpc::Status Create(const pb::CreateWebhookRequest& request,
                      pb::CreateWebhookResponse* response) {
    return Call(&pb::SubscriptionService::Stub::CreateWebhook, subscriptions_.get(), request,
                response);
  }

  grpc::Status Get(const std::string& connection, const std::string& id, pb::Webhook* response) {
    pb::GetWebhookRequest r;
    r.set_connection_id(connection);
    r.set_webhook_id(id);
    return Call(&pb::SubscriptionService::Stub::GetWebhook, subscriptions_.get(), r, response);
  }

  grpc::Status List(const std::string& connection, int page_size, const std::string& token,
                    pb::ListWebhooksResponse* response) {
    pb::ListWebhooksRequest r;
    r.set_connection_id(connection);
    r.set_page_size(page_size);
    r.set_page_token(token);
    return Call(&pb::SubscriptionService::Stub::ListWebhooks, subscriptions_.get(), r, response);
  }

  grpc::Status Update(const pb::UpdateWebhookRequest& request, pb::Webhook* response) {
    return Call(&pb::SubscriptionService::Stub::UpdateWebhook, subscriptions_.get(), request,
                response);
  }

  grpc::Status Delete(const std::string& connection, const std::string& id, pb::Webhook* response) {
    pb::DeleteWebhookRequest r;
    r.set_connection_id(connection);
    r.set_webhook_id(id);
    return Call(&pb::SubscriptionService::Stub::DeleteWebhook, subscriptions_.get(), r, response);
  }

  grpc::Status CreateKey(const std::string& connection, pb::CreateApiKeyResponse* response) {
    pb::CreateApiKeyRequest r;
    r.set_connection_id(connection);
    r.set_name("ci");
    return Call(&pb::AdminService::Stub::CreateApiKey, admin_stub_.get(), r, response);
  }

  grpc::Status Authenticate(const std::string& key, pb::AuthenticateResponse* response) {
    pb::AuthenticateRequest r;
    r.set_api_key(key);
    return Call(&pb::AuthService::Stub::Authenticate, auth_stub_.get(), r, response);
  }

  long long StoredWebhooks() const { return Count("SELECT count(*) FROM webhooks"); }

  std::unique_ptr<subscription::SubscriptionServiceImpl> subscription_;
  std::unique_ptr<subscription::AdminServiceImpl> admin_;
  std::unique_ptr<subscription::AuthServiceImpl> auth_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<pb::SubscriptionService::Stub> subscriptions_;
  std::unique_ptr<pb::AdminService::Stub> admin_stub_;
  std::unique_ptr<pb::AuthService::Stub> auth_stub_;
  std::string supplier_id_;
  std::string connection_id_;
  std::string other_connection_id_;
};

// --------------------------------------------------------------- create --

TEST_F(GrpcServicesTest, CreateAppliesDefaultsAndReturnsTheSecretOnce) {
  pb::CreateWebhookRequest request = ValidCreate();
  request.add_capabilities("octo/pricing");
  pb::CreateWebhookResponse created;
  ASSERT_THAT(Create(request, &created), GrpcOk());
  const pb::Webhook& w = created.webhook();
  EXPECT_THAT(w.id(), SizeIs(36));
  EXPECT_EQ(w.connection_id(), connection_id_);
  EXPECT_EQ(w.event(), "booking_update");
  EXPECT_EQ(w.url(), "https://hooks.example.com/octo");
  EXPECT_TRUE(w.retry_on_error());
  EXPECT_TRUE(w.use_contact_language());
  EXPECT_THAT(w.capabilities(), ElementsAre("octo/pricing"));
  EXPECT_EQ(w.status(), pb::WEBHOOK_STATUS_ENABLED);
  EXPECT_GT(w.create_time().seconds(), 0);
  EXPECT_THAT(created.secret(), StartsWith("whsec_"));
  EXPECT_THAT(created.secret(), SizeIs(6 + 44));
  {
    auto raw = Raw();
    pqxx::work txn(*raw);
    EXPECT_EQ(txn.exec1("SELECT secret FROM webhooks")[0].as<std::string>(), created.secret());
  }

  // No other response carries it.
  pb::Webhook got;
  ASSERT_THAT(Get(connection_id_, w.id(), &got), GrpcOk());
  EXPECT_THAT(got.SerializeAsString(), Not(HasSubstr(created.secret())));
  pb::ListWebhooksResponse list;
  ASSERT_THAT(List(connection_id_, 0, "", &list), GrpcOk());
  EXPECT_THAT(list.SerializeAsString(), Not(HasSubstr(created.secret())));
  pb::UpdateWebhookRequest update;
  update.set_connection_id(connection_id_);
  update.set_webhook_id(w.id());
  update.set_retry_on_error(false);
  pb::Webhook updated;
  ASSERT_THAT(Update(update, &updated), GrpcOk());
  EXPECT_THAT(updated.SerializeAsString(), Not(HasSubstr(created.secret())));
  pb::Webhook deleted;
  ASSERT_THAT(Delete(connection_id_, w.id(), &deleted), GrpcOk());
  EXPECT_THAT(deleted.SerializeAsString(), Not(HasSubstr(created.secret())));

  // Every webhook gets its own secret.
  pb::CreateWebhookResponse second;
  ASSERT_THAT(Create(ValidCreate(), &second), GrpcOk());
  EXPECT_NE(second.secret(), created.secret());
}

TEST_F(GrpcServicesTest, ExplicitFalseFlagsAreKept) {
  pb::CreateWebhookRequest request = ValidCreate();
  request.set_retry_on_error(false);
  request.set_use_contact_language(false);
  pb::CreateWebhookResponse created;
  ASSERT_THAT(Create(request, &created), GrpcOk());
  EXPECT_FALSE(created.webhook().retry_on_error());
  EXPECT_FALSE(created.webhook().use_contact_language());
}

TEST_F(GrpcServicesTest, ResponsesMaskUrlCredentialsAndHeaderValues) {
  pb::CreateWebhookRequest request = ValidCreate();
  request.set_url("https://partner:hunter2@hooks.example.com/octo?x=1");
  (*request.mutable_headers())["X-Api-Key"] = "topsecretvalue";
  (*request.mutable_headers())["X-Tenant"] = "acme";
  pb::CreateWebhookResponse created;
  ASSERT_THAT(Create(request, &created), GrpcOk());

  const auto check = [](const pb::Webhook& w) {
    EXPECT_EQ(w.url(), "https://partner:***@hooks.example.com/octo?x=1");
    ASSERT_THAT(w.headers(), SizeIs(2));
    EXPECT_EQ(w.headers().at("X-Api-Key"), "***");
    EXPECT_EQ(w.headers().at("X-Tenant"), "***");
    const std::string bytes = w.SerializeAsString();
    EXPECT_THAT(bytes, AllOf(Not(HasSubstr("hunter2")), Not(HasSubstr("topsecretvalue")),
                             Not(HasSubstr("acme"))));
  };
  check(created.webhook());
  pb::Webhook got;
  ASSERT_THAT(Get(connection_id_, created.webhook().id(), &got), GrpcOk());
  check(got);
  pb::ListWebhooksResponse list;
  ASSERT_THAT(List(connection_id_, 10, "", &list), GrpcOk());
  ASSERT_THAT(list.webhooks(), SizeIs(1));
  check(list.webhooks(0));
  pb::UpdateWebhookRequest update;
  update.set_connection_id(connection_id_);
  update.set_webhook_id(created.webhook().id());
  update.set_event("order_update");
  pb::Webhook updated;
  ASSERT_THAT(Update(update, &updated), GrpcOk());
  check(updated);
  pb::Webhook deleted;
  ASSERT_THAT(Delete(connection_id_, created.webhook().id(), &deleted), GrpcOk());
  check(deleted);
}

TEST_F(GrpcServicesTest, StoredValuesAreUnmasked) {
  pb::CreateWebhookRequest request = ValidCreate();
  request.set_url("https://partner:hunter2@hooks.example.com/octo");
  (*request.mutable_headers())["X-Api-Key"] = "topsecretvalue";
  pb::CreateWebhookResponse created;
  ASSERT_THAT(Create(request, &created), GrpcOk());
  auto raw = Raw();
  pqxx::work txn(*raw);
  const auto row = txn.exec1("SELECT url, headers->>'X-Api-Key' FROM webhooks");
  EXPECT_EQ(row[0].as<std::string>(), "https://partner:hunter2@hooks.example.com/octo");
  EXPECT_EQ(row[1].as<std::string>(), "topsecretvalue");
}

// ----------------------------------------------------------- validation --

struct BadCreate {
  const char* name;
  void (*mutate)(pb::CreateWebhookRequest*);
  const char* field;  // the message starts with "<field>:"
};

const BadCreate kBadCreates[] = {
    {"MissingConnectionId", [](pb::CreateWebhookRequest* r) { r->clear_connection_id(); },
     "connectionId"},
    {"MalformedConnectionId", [](pb::CreateWebhookRequest* r) { r->set_connection_id("conn-1"); },
     "connectionId"},
    {"MissingEvent", [](pb::CreateWebhookRequest* r) { r->clear_event(); }, "event"},
    {"UnknownEvent", [](pb::CreateWebhookRequest* r) { r->set_event("booking_created"); }, "event"},
    {"EventWrongCase", [](pb::CreateWebhookRequest* r) { r->set_event("BOOKING_UPDATE"); },
     "event"},
    {"MissingUrl", [](pb::CreateWebhookRequest* r) { r->clear_url(); }, "url"},
    {"RelativeUrl", [](pb::CreateWebhookRequest* r) { r->set_url("/hooks"); }, "url"},
    {"FtpUrl", [](pb::CreateWebhookRequest* r) { r->set_url("ftp://hooks.example.com/x"); }, "url"},
    {"JavascriptUrl", [](pb::CreateWebhookRequest* r) { r->set_url("javascript:alert(1)"); },
     "url"},
    {"UrlWithoutHost", [](pb::CreateWebhookRequest* r) { r->set_url("https:///path"); }, "url"},
    {"UrlWithSpace",
     [](pb::CreateWebhookRequest* r) { r->set_url("https://hooks.example.com/a b"); }, "url"},
    {"UrlWithNewline",
     [](pb::CreateWebhookRequest* r) { r->set_url("https://hooks.example.com/a\r\nX: y"); }, "url"},
    {"UrlTooLong",
     [](pb::CreateWebhookRequest* r) {
       r->set_url("https://hooks.example.com/" + std::string(2048, 'a'));
     },
     "url"},
    {"UrlBadPort",
     [](pb::CreateWebhookRequest* r) { r->set_url("https://hooks.example.com:99999/"); }, "url"},
    {"HeaderValueWithCrLf",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["X-A"] = "a\r\nInjected: 1"; },
     "headers"},
    {"HeaderValueWithNul",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["X-A"] = std::string("a\0b", 3); },
     "headers"},
    {"HeaderNameNotAToken",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["X A"] = "1"; }, "headers"},
    {"HeaderNameEmpty", [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())[""] = "1"; },
     "headers"},
    {"ReservedHost",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["Host"] = "evil.example"; },
     "headers"},
    {"ReservedContentLength",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["content-length"] = "1"; },
     "headers"},
    {"ReservedTransferEncoding",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["Transfer-Encoding"] = "chunked"; },
     "headers"},
    {"ReservedConnection",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["Connection"] = "close"; },
     "headers"},
    {"ReservedContentType",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["Content-Type"] = "text/plain"; },
     "headers"},
    {"ReservedWebhookSignature",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["Webhook-Signature"] = "v1,x"; },
     "headers"},
    {"TooManyHeaders",
     [](pb::CreateWebhookRequest* r) {
       for (int i = 0; i < 21; ++i) (*r->mutable_headers())[absl::StrCat("X-H", i)] = absl::StrCat(i);
     },
     "headers"},
    {"HeaderValueTooLong",
     [](pb::CreateWebhookRequest* r) { (*r->mutable_headers())["X-A"] = std::string(4097, 'a'); },
     "headers"},
    {"CapabilityMalformed", [](pb::CreateWebhookRequest* r) { r->add_capabilities("pricing"); },
     "capabilities"},
    {"CapabilityDuplicate",
     [](pb::CreateWebhookRequest* r) {
       r->add_capabilities("octo/pricing");
       r->add_capabilities("octo/pricing");
     },
     "capabilities"},
};

class CreateValidationTest : public GrpcServicesTest,
                             public ::testing::WithParamInterface<BadCreate> {};

TEST_P(CreateValidationTest, IsInvalidArgumentAndStoresNothing) {
  pb::CreateWebhookRequest request = ValidCreate();
  GetParam().mutate(&request);
  pb::CreateWebhookResponse response;
  EXPECT_THAT(Create(request, &response),
              GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(GetParam().field, ": ")));
  EXPECT_EQ(StoredWebhooks(), 0);
  EXPECT_EQ(response.secret(), "");
}

INSTANTIATE_TEST_SUITE_P(BadRequests, CreateValidationTest, ::testing::ValuesIn(kBadCreates),
                         [](const ::testing::TestParamInfo<BadCreate>& info) {
                           return std::string(info.param.name);
                         });

TEST_F(GrpcServicesTest, ValidationErrorsNeverEchoHeaderValues) {
  pb::CreateWebhookRequest request = ValidCreate();
  (*request.mutable_headers())["X-A"] = "leakme\r\n";
  pb::CreateWebhookResponse response;
  const grpc::Status status = Create(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), Not(HasSubstr("leakme")));
}

TEST_F(GrpcServicesTest, UpdateValidatesEverySetFieldAndChangesNothingOnError) {
  pb::CreateWebhookRequest create = ValidCreate();
  (*create.mutable_headers())["X-A"] = "1";
  pb::CreateWebhookResponse created;
  ASSERT_THAT(Create(create, &created), GrpcOk());
  const std::string id = created.webhook().id();

  struct Case {
    const char* field;
    void (*mutate)(pb::UpdateWebhookRequest*);
  };
  const Case cases[] = {
      {"event", [](pb::UpdateWebhookRequest* r) { r->set_event("nope"); }},
      {"event", [](pb::UpdateWebhookRequest* r) { r->set_event(""); }},
      {"url", [](pb::UpdateWebhookRequest* r) { r->set_url(""); }},
      {"url", [](pb::UpdateWebhookRequest* r) { r->set_url("gopher://x.example"); }},
      {"headers",
       [](pb::UpdateWebhookRequest* r) {
         (*r->mutable_headers()->mutable_values())["Host"] = "x";
       }},
      {"headers",
       [](pb::UpdateWebhookRequest* r) {
         (*r->mutable_headers()->mutable_values())["X-B"] = "a\nb";
       }},
      {"connectionId", [](pb::UpdateWebhookRequest* r) { r->set_connection_id("nope"); }},
  };
  for (const Case& c : cases) {
    pb::UpdateWebhookRequest update;
    update.set_connection_id(connection_id_);
    update.set_webhook_id(id);
    update.set_retry_on_error(false);  // valid, must not be applied either
    c.mutate(&update);
    pb::Webhook response;
    EXPECT_THAT(Update(update, &response),
                GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(c.field, ": ")));
  }
  pb::Webhook got;
  ASSERT_THAT(Get(connection_id_, id, &got), GrpcOk());
  EXPECT_EQ(got.SerializeAsString(), created.webhook().SerializeAsString());
}

TEST_F(GrpcServicesTest, UpdateReplacesHeadersOnlyWhenSet) {
  pb::CreateWebhookRequest create = ValidCreate();
  (*create.mutable_headers())["X-A"] = "1";
  pb::CreateWebhookResponse created;
  ASSERT_THAT(Create(create, &created), GrpcOk());

  pb::UpdateWebhookRequest update;
  update.set_connection_id(connection_id_);
  update.set_webhook_id(created.webhook().id());
  update.set_url("https://new.example.com/h");
  pb::Webhook updated;
  ASSERT_THAT(Update(update, &updated), GrpcOk());
  EXPECT_EQ(updated.url(), "https://new.example.com/h");
  EXPECT_THAT(updated.headers(), SizeIs(1));
  EXPECT_TRUE(updated.retry_on_error());

  update.clear_url();
  update.mutable_headers();  // set but empty: remove all headers
  ASSERT_THAT(Update(update, &updated), GrpcOk());
  EXPECT_THAT(updated.headers(), IsEmpty());
  EXPECT_EQ(updated.url(), "https://new.example.com/h");
}

// ------------------------------------------------------ ids and tenancy --

TEST_F(GrpcServicesTest, UnknownMalformedAndForeignWebhookIdsAllAnswerNotFound) {
  pb::CreateWebhookRequest theirs = ValidCreate();
  theirs.set_connection_id(other_connection_id_);
  pb::CreateWebhookResponse created;
  ASSERT_THAT(Create(theirs, &created), GrpcOk());

  pb::Webhook response;
  const grpc::Status missing = Get(connection_id_, kMissingUuid, &response);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(missing.error_message(), StartsWith("webhookId:"));
  for (const std::string& id :
       {std::string("not-a-uuid"), std::string(""), created.webhook().id()}) {
    SCOPED_TRACE(id);
    for (const grpc::Status& s :
         {Get(connection_id_, id, &response), Delete(connection_id_, id, &response)}) {
      EXPECT_EQ(s.error_code(), missing.error_code());
      EXPECT_EQ(s.error_message(), missing.error_message());
    }
    pb::UpdateWebhookRequest update;
    update.set_connection_id(connection_id_);
    update.set_webhook_id(id);
    update.set_url("https://evil.example.com");
    const grpc::Status s = Update(update, &response);
    EXPECT_EQ(s.error_code(), missing.error_code());
    EXPECT_EQ(s.error_message(), missing.error_message());
  }
  pb::ListWebhooksResponse mine;
  ASSERT_THAT(List(connection_id_, 0, "", &mine), GrpcOk());
  EXPECT_THAT(mine.webhooks(), IsEmpty());
  pb::Webhook still;
  ASSERT_THAT(Get(other_connection_id_, created.webhook().id(), &still), GrpcOk());
  EXPECT_EQ(still.url(), "https://hooks.example.com/octo");
}

TEST_F(GrpcServicesTest, CreateForUnknownConnectionIsNotFound) {
  pb::CreateWebhookRequest request = ValidCreate();
  request.set_connection_id(kMissingUuid);
  pb::CreateWebhookResponse response;
  EXPECT_THAT(Create(request, &response), GrpcIs(grpc::StatusCode::NOT_FOUND, "connectionId:"));
}

// ----------------------------------------------------------------- list --

TEST_F(GrpcServicesTest, ListPaginatesAndValidatesItsArguments) {
  std::vector<std::string> ids;
  for (int i = 0; i < kDefaultMaxWebhooks; ++i) {
    pb::CreateWebhookResponse created;
    ASSERT_THAT(Create(ValidCreate(), &created), GrpcOk());
    ids.push_back(created.webhook().id());
  }
  std::vector<std::string> seen;
  pb::ListWebhooksResponse page;
  ASSERT_THAT(List(connection_id_, 3, "", &page), GrpcOk());
  ASSERT_THAT(page.webhooks(), SizeIs(3));
  ASSERT_NE(page.next_page_token(), "");
  for (const auto& w : page.webhooks()) seen.push_back(w.id());
  pb::ListWebhooksResponse last;
  ASSERT_THAT(List(connection_id_, 3, page.next_page_token(), &last), GrpcOk());
  for (const auto& w : last.webhooks()) seen.push_back(w.id());
  EXPECT_EQ(last.next_page_token(), "");
  EXPECT_EQ(seen, ids);

  pb::ListWebhooksResponse all;
  ASSERT_THAT(List(connection_id_, 0, "", &all), GrpcOk());  // 0 = default (100)
  EXPECT_THAT(all.webhooks(), SizeIs(kDefaultMaxWebhooks));
  ASSERT_THAT(List(connection_id_, 5000, "", &all), GrpcOk());  // served as the maximum
  EXPECT_THAT(all.webhooks(), SizeIs(kDefaultMaxWebhooks));

  pb::ListWebhooksResponse bad;
  EXPECT_THAT(List(connection_id_, 10, "bm90IGEgdG9rZW4", &bad),
              GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "pageToken:"));
  EXPECT_THAT(List(connection_id_, -1, "", &bad),
              GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "pageSize:"));
  EXPECT_THAT(List("x", 10, "", &bad), GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "connectionId:"));
}

// ------------------------------------------------------------------ cap --

TEST_F(GrpcServicesTest, CapIsResourceExhausted) {
  for (int i = 0; i < kDefaultMaxWebhooks; ++i) {
    pb::CreateWebhookResponse created;
    ASSERT_THAT(Create(ValidCreate(), &created), GrpcOk());
  }
  pb::CreateWebhookResponse response;
  EXPECT_THAT(Create(ValidCreate(), &response), GrpcIs(grpc::StatusCode::RESOURCE_EXHAUSTED, ""));
  EXPECT_EQ(StoredWebhooks(), kDefaultMaxWebhooks);
}

// ---------------------------------------------------------------- admin --

TEST_F(GrpcServicesTest, SupplierCrudOverGrpc) {
  pb::CreateSupplierRequest create;
  create.set_name("Highland Safaris");
  create.set_endpoint("https://api.highland.example/octo");
  create.mutable_contact()->set_email("ops@highland.example");
  create.mutable_contact()->set_telephone("+44 (0)1887 820071");
  create.mutable_contact()->set_website("https://highland.example");
  create.mutable_contact()->set_address("Aberfeldy, Scotland");
  pb::Supplier created;
  ASSERT_THAT(Call(&pb::AdminService::Stub::CreateSupplier, admin_stub_.get(), create, &created),
              GrpcOk());
  EXPECT_EQ(created.contact().telephone(), "+44 (0)1887 820071");

  pb::GetSupplierRequest get;
  get.set_supplier_id(created.id());
  pb::Supplier got;
  ASSERT_THAT(Call(&pb::AdminService::Stub::GetSupplier, admin_stub_.get(), get, &got), GrpcOk());
  EXPECT_EQ(got.SerializeAsString(), created.SerializeAsString());

  pb::UpdateSupplierRequest update;
  update.set_supplier_id(created.id());
  update.set_endpoint("https://api2.highland.example/octo");
  pb::Supplier updated;
  ASSERT_THAT(Call(&pb::AdminService::Stub::UpdateSupplier, admin_stub_.get(), update, &updated),
              GrpcOk());
  EXPECT_EQ(updated.endpoint(), "https://api2.highland.example/octo");
  EXPECT_EQ(updated.name(), "Highland Safaris");
  EXPECT_EQ(updated.contact().email(), "ops@highland.example");

  pb::ListSuppliersResponse list;
  ASSERT_THAT(Call(&pb::AdminService::Stub::ListSuppliers, admin_stub_.get(),
                   pb::ListSuppliersRequest(), &list),
              GrpcOk());
  EXPECT_THAT(list.suppliers(), SizeIs(2));  // with the fixture's

  get.set_supplier_id(kMissingUuid);
  EXPECT_THAT(Call(&pb::AdminService::Stub::GetSupplier, admin_stub_.get(), get, &got),
              GrpcIs(grpc::StatusCode::NOT_FOUND, "supplierId:"));
  get.set_supplier_id("abc");
  EXPECT_THAT(Call(&pb::AdminService::Stub::GetSupplier, admin_stub_.get(), get, &got),
              GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "supplierId:"));
}

TEST_F(GrpcServicesTest, SupplierValidation) {
  struct Case {
    const char* field;
    void (*mutate)(pb::CreateSupplierRequest*);
  };
  const Case cases[] = {
      {"name", [](pb::CreateSupplierRequest* r) { r->clear_name(); }},
      {"name", [](pb::CreateSupplierRequest* r) { r->set_name("   "); }},
      {"name", [](pb::CreateSupplierRequest* r) { r->set_name(std::string(201, 'a')); }},
      {"name", [](pb::CreateSupplierRequest* r) { r->set_name("a\nb"); }},
      {"endpoint", [](pb::CreateSupplierRequest* r) { r->clear_endpoint(); }},
      {"endpoint", [](pb::CreateSupplierRequest* r) { r->set_endpoint("octo.example.com"); }},
      {"endpoint", [](pb::CreateSupplierRequest* r) { r->set_endpoint("ftp://octo.example.com"); }},
      {"endpoint",
       [](pb::CreateSupplierRequest* r) { r->set_endpoint("https://u:p@octo.example.com"); }},
      {"contact.website",
       [](pb::CreateSupplierRequest* r) { r->mutable_contact()->set_website("www.example.com"); }},
      {"contact.email",
       [](pb::CreateSupplierRequest* r) { r->mutable_contact()->set_email("nobody"); }},
      {"contact.email",
       [](pb::CreateSupplierRequest* r) { r->mutable_contact()->set_email("a@b"); }},
      {"contact.email",
       [](pb::CreateSupplierRequest* r) { r->mutable_contact()->set_email("a b@c.example"); }},
      {"contact.email",
       [](pb::CreateSupplierRequest* r) {
         r->mutable_contact()->set_email(std::string(250, 'a') + "@b.example");
       }},
      {"contact.telephone",
       [](pb::CreateSupplierRequest* r) { r->mutable_contact()->set_telephone("call me"); }},
      {"contact.telephone",
       [](pb::CreateSupplierRequest* r) {
         r->mutable_contact()->set_telephone(std::string(51, '1'));
       }},
      {"contact.address",
       [](pb::CreateSupplierRequest* r) {
         r->mutable_contact()->set_address(std::string(501, 'a'));
       }},
      {"contact.address",
       [](pb::CreateSupplierRequest* r) { r->mutable_contact()->set_address("a\x01"); }},
  };
  for (const Case& c : cases) {
    pb::CreateSupplierRequest request;
    request.set_name("Valid");
    request.set_endpoint("https://octo.example.com");
    c.mutate(&request);
    pb::Supplier response;
    EXPECT_THAT(
        Call(&pb::AdminService::Stub::CreateSupplier, admin_stub_.get(), request, &response),
        GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(c.field, ": ")))
        << c.field;
  }
  EXPECT_EQ(Count("SELECT count(*) FROM suppliers"), 1);  // only the fixture's

  pb::UpdateSupplierRequest update;
  update.set_supplier_id(supplier_id_);
  update.set_name("");
  pb::Supplier response;
  EXPECT_THAT(Call(&pb::AdminService::Stub::UpdateSupplier, admin_stub_.get(), update, &response),
              GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "name: "));
}

TEST_F(GrpcServicesTest, ConnectionsOverGrpc) {
  pb::ListConnectionsRequest list_request;
  list_request.set_supplier_id(supplier_id_);
  pb::ListConnectionsResponse list;
  ASSERT_THAT(
      Call(&pb::AdminService::Stub::ListConnections, admin_stub_.get(), list_request, &list),
      GrpcOk());
  ASSERT_THAT(list.connections(), SizeIs(2));
  EXPECT_EQ(list.connections(0).id(), connection_id_);
  EXPECT_EQ(list.connections(0).max_webhooks(), kDefaultMaxWebhooks);  // 0 = the service default

  pb::CreateConnectionRequest create;
  create.set_supplier_id(supplier_id_);
  create.set_name("Expedia");
  create.set_max_webhooks(7);
  pb::Connection connection;
  ASSERT_THAT(
      Call(&pb::AdminService::Stub::CreateConnection, admin_stub_.get(), create, &connection),
      GrpcOk());
  EXPECT_EQ(connection.max_webhooks(), 7);

  EXPECT_THAT(
      Call(&pb::AdminService::Stub::CreateConnection, admin_stub_.get(), create, &connection),
      GrpcIs(grpc::StatusCode::ALREADY_EXISTS, "name:"));
  create.set_name("Other");
  create.set_max_webhooks(-1);
  EXPECT_THAT(
      Call(&pb::AdminService::Stub::CreateConnection, admin_stub_.get(), create, &connection),
      GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "maxWebhooks: "));
  create.set_max_webhooks(100001);
  EXPECT_THAT(
      Call(&pb::AdminService::Stub::CreateConnection, admin_stub_.get(), create, &connection),
      GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "maxWebhooks: "));
  create.set_max_webhooks(1);
  create.set_name("");
  EXPECT_THAT(
      Call(&pb::AdminService::Stub::CreateConnection, admin_stub_.get(), create, &connection),
      GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "name: "));
  create.set_name("Other");
  create.set_supplier_id("x");
  EXPECT_THAT(
      Call(&pb::AdminService::Stub::CreateConnection, admin_stub_.get(), create, &connection),
      GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "supplierId: "));
  create.set_supplier_id(kMissingUuid);
  EXPECT_THAT(
      Call(&pb::AdminService::Stub::CreateConnection, admin_stub_.get(), create, &connection),
      GrpcIs(grpc::StatusCode::NOT_FOUND, "supplierId:"));
  EXPECT_EQ(Count("SELECT count(*) FROM connections"), 3);
}

// ----------------------------------------------------------------- auth --

TEST_F(GrpcServicesTest, ApiKeysAuthenticateUntilRevoked) {
  pb::CreateApiKeyResponse key;
  ASSERT_THAT(CreateKey(connection_id_, &key), GrpcOk());
  EXPECT_THAT(key.key(), StartsWith("octo_"));
  EXPECT_EQ(key.api_key().prefix(), key.key().substr(0, 12));
  EXPECT_EQ(key.api_key().connection_id(), connection_id_);
  EXPECT_FALSE(key.api_key().has_revoke_time());
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM api_keys WHERE key_hash = decode('",
                               crypto::HexEncode(crypto::Sha256(key.key())), "', 'hex')")),
            1);

  pb::AuthenticateResponse who;
  ASSERT_THAT(Authenticate(key.key(), &who), GrpcOk());
  EXPECT_EQ(who.api_key_id(), key.api_key().id());
  EXPECT_EQ(who.connection_id(), connection_id_);
  EXPECT_EQ(who.supplier_id(), supplier_id_);

  // A second key of another connection resolves to that connection.
  pb::CreateApiKeyResponse other;
  ASSERT_THAT(CreateKey(other_connection_id_, &other), GrpcOk());
  ASSERT_THAT(Authenticate(other.key(), &who), GrpcOk());
  EXPECT_EQ(who.connection_id(), other_connection_id_);

  pb::ListApiKeysRequest list_request;
  list_request.set_connection_id(connection_id_);
  pb::ListApiKeysResponse list;
  ASSERT_THAT(Call(&pb::AdminService::Stub::ListApiKeys, admin_stub_.get(), list_request, &list),
              GrpcOk());
  ASSERT_THAT(list.api_keys(), SizeIs(1));
  EXPECT_THAT(list.SerializeAsString(), Not(HasSubstr(key.key())));

  pb::RevokeApiKeyRequest revoke;
  revoke.set_api_key_id(key.api_key().id());
  pb::ApiKey revoked;
  ASSERT_THAT(Call(&pb::AdminService::Stub::RevokeApiKey, admin_stub_.get(), revoke, &revoked),
              GrpcOk());
  EXPECT_TRUE(revoked.has_revoke_time());
  pb::ApiKey again;
  ASSERT_THAT(Call(&pb::AdminService::Stub::RevokeApiKey, admin_stub_.get(), revoke, &again),
              GrpcOk());
  EXPECT_EQ(again.SerializeAsString(), revoked.SerializeAsString());

  EXPECT_THAT(Authenticate(key.key(), &who), GrpcIs(grpc::StatusCode::UNAUTHENTICATED, ""));
  ASSERT_THAT(Authenticate(other.key(), &who), GrpcOk());  // others unaffected

  revoke.set_api_key_id(kMissingUuid);
  EXPECT_THAT(Call(&pb::AdminService::Stub::RevokeApiKey, admin_stub_.get(), revoke, &again),
              GrpcIs(grpc::StatusCode::NOT_FOUND, "apiKeyId:"));
  revoke.set_api_key_id("nope");
  EXPECT_THAT(Call(&pb::AdminService::Stub::RevokeApiKey, admin_stub_.get(), revoke, &again),
              GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "apiKeyId:"));
}

TEST_F(GrpcServicesTest, UnknownAndMalformedKeysAreUnauthenticated) {
  pb::AuthenticateResponse who;
  for (const std::string& key : {crypto::NewApiKey(), std::string(""), std::string("octo_"),
                                 std::string("Bearer octo_abc"), std::string("octo_abc def"),
                                 std::string("x") + crypto::NewApiKey(), std::string(10000, 'a')}) {
    SCOPED_TRACE(key.substr(0, 40));
    EXPECT_THAT(Authenticate(key, &who), GrpcIs(grpc::StatusCode::UNAUTHENTICATED, ""));
  }
}

TEST_F(GrpcServicesTest, ApiKeyValidation) {
  pb::CreateApiKeyResponse key;
  EXPECT_THAT(CreateKey("nope", &key),
              GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "connectionId: "));
  EXPECT_THAT(CreateKey(kMissingUuid, &key), GrpcIs(grpc::StatusCode::NOT_FOUND, "connectionId:"));
  pb::CreateApiKeyRequest request;
  request.set_connection_id(connection_id_);
  request.set_name(std::string(201, 'k'));
  EXPECT_THAT(Call(&pb::AdminService::Stub::CreateApiKey, admin_stub_.get(), request, &key),
              GrpcIs(grpc::StatusCode::INVALID_ARGUMENT, "name: "));
  EXPECT_EQ(key.key(), "");
  EXPECT_EQ(Count("SELECT count(*) FROM api_keys"), 0);
}

// ------------------------------------------------- delivery operations --

// The delivery operations are forwarded to octo-delivery: without it (not
// configured, or nothing listening) they answer UNAVAILABLE, a retryable
// code (REST 503), never INTERNAL.
TEST_F(GrpcServicesTest, DeliveryOperationsAreUnavailableWithoutTheDeliveryService) {
  pb::ListDeliveriesRequest request;
  request.set_connection_id(connection_id_);
  request.set_webhook_id("9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e");
  pb::ListDeliveriesResponse response;
  grpc::Status s = Call(&pb::SubscriptionService::Stub::ListDeliveries, subscriptions_.get(),
                        request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();

  // Port 1 on loopback: refused at once.
  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  auto operations = pb::DeliveryOperationsService::NewStub(channel);
  subscription::SubscriptionServiceImpl service(repo_.get(), operations.get(),
                                                std::chrono::milliseconds(2000));
  s = service.ListDeliveries(nullptr, &request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  pb::SendTestEventRequest test;
  test.set_connection_id(connection_id_);
  test.set_webhook_id(request.webhook_id());
  pb::SendTestEventResponse sent;
  s = service.SendTestEvent(nullptr, &test, &sent);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // The connection id is checked first, without calling octo-delivery.
  test.set_connection_id("nope");
  EXPECT_EQ(service.SendTestEvent(nullptr, &test, &sent).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace octo::testing
