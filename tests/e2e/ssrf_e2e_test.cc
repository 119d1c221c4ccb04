// The SSRF guard at creation, end to end: a
// webhook URL whose host is a non-public IP literal, in any spelling, or a
// localhost name, is refused by POST and PATCH with a clear OCTO error, and
// nothing is stored; the allow-list (--allow_destination_cidrs) opens only
// its ranges. The guard at delivery time is tested in tests/delivery_e2e.
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/e2e/e2e_test_util.h"

namespace octo::e2e {
namespace {

namespace json = boost::json;

std::string WithUrl(const std::string& url) {
  return R"({"event":"booking_update","url":)" + json::serialize(json::value(url)) + "}";
}

// The OCTO error's message, "" when the body is not one.
std::string ErrorMessage(const testing::HttpResponse& r) {
  json::object body = ParseObject(r.body);
  const json::value* message = body.if_contains("errorMessage");
  return message != nullptr && message->is_string() ? std::string(message->as_string()) : "";
}

const std::vector<std::string>& Vectors() {
  static const std::vector<std::string> kVectors = {
      "http://127.0.0.1/hook",
      "https://127.0.0.1:8443/hook",
      "http://[::1]:8080/hook",
      "http://10.255.255.1/hook",
      "http://172.16.0.1/hook",
      "http://192.168.1.1/hook",
      "http://169.254.169.254/latest/meta-data/",
      "http://[fd00:ec2::254]/latest/meta-data/",
      "http://[::ffff:127.0.0.1]/hook",
      "http://[::ffff:a9fe:a9fe]/hook",
      "http://[64:ff9b::7f00:1]/hook",
      "http://2130706433/hook",
      "http://0177.0.0.1/hook",
      "http://0x7f.0.0.1/hook",
      "http://0x7f000001/hook",
      "http://127.1/hook",
      "http://0/hook",
      "http://100.64.0.1/hook",
      "http://224.0.0.1/hook",
      "http://localhost:8080/hook",
      "http://user:pass@[fe80::1]/hook",
  };
  return kVectors;
}

class SsrfValidationE2eTest : public ::testing::Test {
 protected:
  // Production: octo-subscription without an allow-list.
  static void SetUpTestSuite() {
    StackOptions options;
    options.allow_destination_cidrs = "";
    stack_ = new E2eStack(options);
    status_ = new absl::Status(stack_->StartAll());
  }
  static void TearDownTestSuite() {
    // A clean exit on SIGTERM (status 0): a sanitizer's report at exit would
    // make it non-zero.
    if (stack_ != nullptr && status_ != nullptr && status_->ok()) {
      const testing::ExitInfo gateway = stack_->StopGateway();
      const testing::ExitInfo subscription = stack_->StopSubscription();
      EXPECT_TRUE(gateway.Clean()) << "octo-gateway on SIGTERM: " << gateway.ToString() << "\n" << stack_->LogTails();
      EXPECT_TRUE(subscription.Clean()) << "octo-subscription on SIGTERM: " << subscription.ToString() << "\n"
                                        << stack_->LogTails();
    }
    delete stack_;
    delete status_;
    stack_ = nullptr;
    status_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(status_ != nullptr && status_->ok()) << (status_ ? status_->ToString() : "not started");
    absl::StatusOr<Tenant> tenant = stack_->CreateTenant();
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    api_ = std::make_unique<RestApi>(stack_->gateway_port(), tenant->api_key);
  }

  static E2eStack* stack_;
  static absl::Status* status_;
  std::unique_ptr<RestApi> api_;
};

E2eStack* SsrfValidationE2eTest::stack_ = nullptr;
absl::Status* SsrfValidationE2eTest::status_ = nullptr;

TEST_F(SsrfValidationE2eTest, CreateRefusesEveryNonPublicLiteralAndStoresNothing) {
  for (const std::string& url : Vectors()) {
    const testing::HttpResponse r = api_->Create(WithUrl(url));
    EXPECT_TRUE(IsOctoError(r, 400, "BAD_REQUEST")) << url;
    EXPECT_TRUE(absl::StartsWith(ErrorMessage(r), "url: must not point at a non-public address: ")) << url << ": "
                                                                                                     << r.body;
  }
  EXPECT_EQ(ErrorMessage(api_->Create(WithUrl("http://0177.0.0.1/hook"))),
            "url: must not point at a non-public address: 127.0.0.1 is a loopback address (127.0.0.0/8); "
            "webhooks are delivered over the internet only");
  EXPECT_TRUE(WebhooksOfList(api_->List()).empty());
  // An impossible numeric host is refused as such.
  const testing::HttpResponse bad = api_->Create(WithUrl("http://1.2.3.256/hook"));
  EXPECT_TRUE(IsOctoError(bad, 400, "BAD_REQUEST"));
  EXPECT_TRUE(absl::StartsWith(ErrorMessage(bad), "url: has an invalid IPv4 address")) << bad.body;
}

TEST_F(SsrfValidationE2eTest, PatchRefusesThemTooAndLeavesTheWebhookUnchanged) {
  const testing::HttpResponse created = api_->Create(WithUrl("https://hooks.partner.example/octo"));
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id(ParseObject(created.body)["id"].as_string());
  const std::string before = api_->Get(id).body;
  for (const std::string& url : Vectors()) {
    const testing::HttpResponse r = api_->Patch(id, R"({"url":)" + json::serialize(json::value(url)) + "}");
    EXPECT_TRUE(IsOctoError(r, 400, "BAD_REQUEST")) << url;
  }
  EXPECT_EQ(api_->Get(id).body, before);
}

TEST_F(SsrfValidationE2eTest, PublicAddressesAndHostNamesAreAccepted) {
  for (const std::string url : {"https://hooks.partner.example/octo", "http://8.8.8.8/hook",
                                "https://[2606:4700:4700::1111]/hook", "https://134744072/hook"}) {
    const testing::HttpResponse r = api_->Create(WithUrl(url));
    EXPECT_EQ(r.status, 200) << url << ": " << r.body;
  }
}

// The shared system of the other suites allows loopback (as run.sh does):
// loopback literals pass, every other range is still refused.
TEST(SsrfAllowListE2eTest, TheAllowListOpensOnlyItsRanges) {
  E2eStack stack;  // allow_destination_cidrs = 127.0.0.0/8,::1/128
  ASSERT_TRUE(stack.StartAll().ok()) << stack.LogTails();
  absl::StatusOr<Tenant> tenant = stack.CreateTenant();
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  RestApi api(stack.gateway_port(), tenant->api_key);
  for (const std::string url : {"http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook",
                                "http://2130706433:9/hook", "http://[::ffff:127.0.0.1]:9/hook"}) {
    const testing::HttpResponse r = api.Create(WithUrl(url));
    EXPECT_EQ(r.status, 200) << url << ": " << r.body;
  }
  for (const std::string url : {"http://10.0.0.1/hook", "http://169.254.169.254/", "http://[fd00::1]/"}) {
    EXPECT_TRUE(IsOctoError(api.Create(WithUrl(url)), 400, "BAD_REQUEST")) << url;
  }
  const testing::ExitInfo gateway = stack.StopGateway();
  const testing::ExitInfo subscription = stack.StopSubscription();
  EXPECT_TRUE(gateway.Clean()) << "octo-gateway on SIGTERM: " << gateway.ToString() << "\n" << stack.LogTails();
  EXPECT_TRUE(subscription.Clean()) << "octo-subscription on SIGTERM: " << subscription.ToString() << "\n"
                                    << stack.LogTails();
}

}  // namespace
}  // namespace octo::e2e
