// The SSRF guard end to end: octo-delivery in
// production mode (no allow-list) must refuse every vector below at
// connect time, record the attempt as `blocked`, and send nothing: the
// receiver on 127.0.0.1 sees zero requests. octo-subscription here allows
// loopback (as run.sh does), so that webhooks pointing at the receiver can
// be created; the addresses creation refuses (10/8, 169.254.169.254) are
// set with SQL. Creation-time refusals are tested in tests/e2e.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/delivery_e2e/delivery_fixture.h"

namespace octo::delivery_e2e {
namespace {

constexpr const char* kBooking =
    R"({"id":"bk-g","uuid":"{uuid}","status":"CONFIRMED","contact":{"fullName":"Ada","locales":["en"]}})";

// A name only octo-delivery's --test_resolve entry answers (to 127.0.0.1):
// what a DNS rebinding attack amounts to, a name resolved to loopback at
// connect time, under the test's control whatever this machine's resolver
// says. Under .test (RFC 6761): were the entry ignored, the name would not
// resolve and the attempt would be `dns`, not `blocked`.
constexpr const char* kRebindingName = "rebinding.octo.test";

class SsrfGuardE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() {
    // The rebinding name's port: a receiver of the suite's own, known
    // before octo-delivery starts with the entry.
    auto decoy = testing::HttpReceiver::Start();
    if (!decoy.ok()) {
      ADD_FAILURE() << decoy.status();
      return;
    }
    decoy_ = decoy->release();
    StartStack({.retry_schedule = "",  // one attempt each: the outcome is final
                .request_timeout = "3s",
                .connect_timeout = "2s",
                .lease_margin = "1s",
                .poll_interval = "100ms",
                .min_retry_after = "1s",
                .max_retry_after = "2500ms",
                .allow_destination_cidrs = "",  // production
                .extra_args = {absl::StrCat("--test_resolve=", kRebindingName, ":", decoy_->port(),
                                            ":127.0.0.1")}});
  }
  static void TearDownTestSuite() {
    StopStack();
    if (decoy_ != nullptr) decoy_->Stop();
    delete decoy_;
    decoy_ = nullptr;
  }

  // (state, attempt error class, attempt duration in ms) of the webhook's
  // one delivery, once it has an attempt ("" while it has none).
  std::vector<std::string> Outcome(const CreatedWebhook& hook) {
    const auto rows = db().Rows(absl::StrCat(
        "SELECT d.state, coalesce(a.error_class, ''), coalesce(a.http_status::text, ''), a.duration_ms::text "
        "FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id WHERE d.webhook_id = ",
        SqlQuote(hook.id)));
    return rows.empty() ? std::vector<std::string>{} : rows.front();
  }

  static testing::HttpReceiver* decoy_;
};

testing::HttpReceiver* SsrfGuardE2eTest::decoy_ = nullptr;

TEST_F(SsrfGuardE2eTest, EveryVectorIsBlockedAtConnectTimeAndNothingIsSent) {
  const std::string port = std::to_string(receiver_->port());
  ASSERT_NE(decoy_, nullptr);
  struct Vector {
    std::string name;
    std::string url;           // as created through the REST API
    std::string sql_url;       // or set afterwards with SQL (creation refuses it)
  };
  const std::vector<Vector> vectors = {
      {"ipv4 loopback", "http://127.0.0.1:" + port + "/v4", ""},
      {"ipv6 loopback", "http://[::1]:" + port + "/v6", ""},
      {"ipv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + port + "/mapped", ""},
      // Names resolved to loopback only at connect time: what a DNS
      // rebinding attack amounts to. localhost is loopback by RFC 6761
      // (libcurl may answer it without asking the system)...
      {"localhost", "http://localhost:" + port + "/name", ""},
      // ...a name that resolves to 127.0.0.1 through the test's own entry.
      {"host name resolving to loopback",
       absl::StrCat("http://", kRebindingName, ":", decoy_->port(), "/rebinding"), ""},
      {"decimal ipv4", "http://2130706433:" + port + "/decimal", ""},
      {"octal ipv4", "http://0177.0.0.1:" + port + "/octal", ""},
      {"private 10/8", "http://127.0.0.1:" + port + "/placeholder-a", "http://10.255.255.1:" + port + "/private"},
      {"cloud metadata", "http://127.0.0.1:" + port + "/placeholder-b",
       "http://169.254.169.254/latest/meta-data/iam/security-credentials/"},
  };
  std::vector<CreatedWebhook> hooks;
  for (const Vector& v : vectors) {
    hooks.push_back(Hook("booking_update", v.url, R"("retryOnError":false)"));
    ASSERT_FALSE(hooks.back().id.empty()) << v.name;
    if (!v.sql_url.empty()) {
      db().Rows(absl::StrCat("UPDATE webhooks SET url = ", SqlQuote(v.sql_url), " WHERE id = ",
                             SqlQuote(hooks.back().id), " RETURNING id"));
    }
  }
  MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("ssrf")));

  for (std::size_t i = 0; i < vectors.size(); ++i) {
    std::vector<std::string> outcome;
    ASSERT_TRUE(Eventually([&] { return !(outcome = Outcome(hooks[i])).empty(); }, 15s, 50ms))
        << vectors[i].name << "\n" << stack_->LogTails();
    EXPECT_EQ(outcome[0], "failed") << vectors[i].name;
    // Refused by the guard: not a connect error, not a timeout, no status.
    EXPECT_EQ(outcome[1], "blocked") << vectors[i].name;
    EXPECT_EQ(outcome[2], "") << vectors[i].name;
    double duration_ms = 0;
    ASSERT_TRUE(absl::SimpleAtod(outcome[3], &duration_ms)) << outcome[3];
    // No packet went out: a SYN to 10.255.255.1 or 169.254.169.254 would
    // have waited for the 2 s connect timeout.
    EXPECT_LT(duration_ms, 1000) << vectors[i].name;
  }
  // The delivery rows carry the class too (the attempt log's summary).
  for (const CreatedWebhook& hook : hooks) {
    EXPECT_EQ(db().Scalar(absl::StrCat("SELECT last_error_class FROM deliveries WHERE webhook_id = ",
                                       SqlQuote(hook.id))),
              "blocked");
  }
  // The receiver on 127.0.0.1 never saw a request, nor even a connection.
  EXPECT_EQ(receiver_->Count(), 0u);
  EXPECT_EQ(receiver_->Connections(), 0);
  EXPECT_EQ(decoy_->Count(), 0u);
  EXPECT_EQ(decoy_->Connections(), 0);
}

}  // namespace
}  // namespace octo::delivery_e2e
