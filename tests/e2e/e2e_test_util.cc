#include "tests/e2e/e2e_test_util.h"

#include <exception>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace octo::e2e {
namespace {

namespace json = boost::json;

// The shared system: created on first use, stopped by the environment below
// after the last test (clean exits are checked there).
struct Shared {
  std::unique_ptr<E2eStack> stack;
  absl::Status status = absl::UnknownError("not started");
  bool attempted = false;
};

Shared& GetShared() {
  static Shared* shared = new Shared;  // never destroyed: torn down explicitly
  return *shared;
}

class SharedStackEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    Shared& shared = GetShared();
    if (!shared.stack) return;
    if (shared.status.ok()) {
      const testing::ExitInfo gateway = shared.stack->StopGateway();
      const testing::ExitInfo subscription = shared.stack->StopSubscription();
      EXPECT_TRUE(gateway.Clean()) << "octo-gateway on SIGTERM: " << gateway.ToString() << "\n"
                                   << shared.stack->LogTails();
      EXPECT_TRUE(subscription.Clean()) << "octo-subscription on SIGTERM: " << subscription.ToString() << "\n"
                                        << shared.stack->LogTails();
    }
    shared.stack.reset();
  }
};

[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new SharedStackEnvironment);

std::string Describe(const testing::HttpResponse& r) {
  std::ostringstream out;
  out << "HTTP " << r.status << " " << r.reason << "\n";
  for (const auto& [k, v] : r.headers) out << k << ": " << v << "\n";
  out << "\n" << r.body;
  return out.str();
}

}  // namespace

absl::StatusOr<E2eStack*> SharedStack() {
  Shared& shared = GetShared();
  if (!shared.attempted) {
    shared.attempted = true;
    try {
      shared.stack = std::make_unique<E2eStack>();
      shared.status = shared.stack->StartAll();
    } catch (const std::exception& e) {
      shared.status = absl::FailedPreconditionError(e.what());
    }
  }
  if (!shared.status.ok()) return shared.status;
  return shared.stack.get();
}

void E2eTest::SetUp() {
  absl::StatusOr<E2eStack*> stack = SharedStack();
  ASSERT_TRUE(stack.ok()) << "the system under test did not start: " << stack.status();
  stack_ = *stack;
  ASSERT_TRUE(stack_->gateway()->IsRunning()) << "octo-gateway died\n" << stack_->LogTails();
  ASSERT_TRUE(stack_->subscription()->IsRunning()) << "octo-subscription died\n" << stack_->LogTails();
  absl::StatusOr<Tenant> tenant = stack_->CreateTenant();
  ASSERT_TRUE(tenant.ok()) << tenant.status() << "\n" << stack_->LogTails();
  tenant_ = *tenant;
  api_ = std::make_unique<RestApi>(stack_->gateway_port(), tenant_.api_key, stack_->options().base_path);
  SnapshotList();
}

std::unique_ptr<RestApi> E2eTest::NewTenantApi(int max_webhooks, Tenant* tenant_out) {
  absl::StatusOr<Tenant> tenant = stack_->CreateTenant(max_webhooks);
  EXPECT_TRUE(tenant.ok()) << tenant.status();
  if (!tenant.ok()) return nullptr;
  if (tenant_out != nullptr) *tenant_out = *tenant;
  return std::make_unique<RestApi>(stack_->gateway_port(), tenant->api_key, stack_->options().base_path);
}

boost::json::object E2eTest::CreateWebhook(const std::string& body, const testing::HttpHeaders& extra) {
  testing::HttpResponse r = api_->Create(body, extra);
  EXPECT_EQ(r.status, 200) << "POST " << body << "\n" << Describe(r);
  return r.status == 200 ? ParseObject(r.body) : boost::json::object{};
}

void E2eTest::ExpectRejected(const testing::HttpResponse& r, int status, std::string_view code) {
  EXPECT_TRUE(IsOctoError(r, status, code));
  const std::string list = api_->List().body;
  EXPECT_EQ(list, list_snapshot_) << "a rejected request changed the stored webhooks";
}

boost::json::object ParseObject(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    ADD_FAILURE() << "not JSON (" << ec.message() << "): " << body;
    return {};
  }
  if (!v.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << body;
    return {};
  }
  return std::move(v.as_object());
}

boost::json::array ParseArray(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_array()) {
    ADD_FAILURE() << "not a JSON array: " << body;
    return {};
  }
  return std::move(v.as_array());
}

std::set<std::string> Keys(const boost::json::object& object) {
  std::set<std::string> keys;
  for (const auto& member : object) keys.emplace(member.key());
  return keys;
}

const std::set<std::string>& WebhookKeys() {
  static const std::set<std::string> kKeys = {"id",           "event",  "url",       "retryOnError",
                                              "useContactLanguage", "headers", "capabilities",
                                              "ordered",      "status",    "createdAt", "updatedAt"};
  return kKeys;
}

::testing::AssertionResult IsOctoError(const testing::HttpResponse& r, int status, std::string_view code,
                                       std::string_view webhook_id) {
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure() << why << "; expected " << status << " " << code << ", got:\n"
                                         << Describe(r);
  };
  if (r.status != status) return fail("wrong status");
  const std::optional<std::string> content_type = r.Header("Content-Type");
  if (!content_type || content_type->rfind("application/json", 0) != 0) return fail("not application/json");
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object()) return fail("body is not a JSON object");
  const json::object& body = v.as_object();
  std::set<std::string> expected_keys = {"error", "errorMessage"};
  if (code == "INVALID_WEBHOOK_ID") expected_keys.insert("webhookId");
  if (Keys(body) != expected_keys) return fail("unexpected members");
  if (!body.at("error").is_string() || body.at("error").as_string() != code) return fail("wrong error code");
  if (!body.at("errorMessage").is_string() || body.at("errorMessage").as_string().empty()) {
    return fail("errorMessage is not a non-empty string");
  }
  if (code == "INVALID_WEBHOOK_ID" &&
      (!body.at("webhookId").is_string() || body.at("webhookId").as_string() != webhook_id)) {
    return fail(absl::StrCat("webhookId is not \"", std::string(webhook_id), "\""));
  }
  return ::testing::AssertionSuccess();
}

boost::json::array WebhooksOfList(const testing::HttpResponse& r) {
  EXPECT_EQ(r.status, 200) << Describe(r);
  return ParseArray(r.body);
}

}  // namespace octo::e2e
