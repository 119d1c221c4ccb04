// The SSRF guard end to end (issue 4, requirement 6): octo-delivery in
// production mode (no allow-list) must refuse every vector of the issue at
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

class SsrfGuardE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() {
    StartStack({.retry_schedule = "",  // one attempt each: the outcome is final
                .request_timeout = "3s",
                .connect_timeout = "2s",
                .lease_margin = "1s",
                .poll_interval = "100ms",
                .min_retry_after = "1s",
                .max_retry_after = "2500ms",
                .allow_destination_cidrs = "",  // production
                .extra_args = {}});
  }
  static void TearDownTestSuite() { StopStack(); }

  // (state, attempt error class, attempt duration in ms) of the webhook's
  // one delivery, once it has an attempt ("" while it has none).
  std::vector<std::string> Outcome(const CreatedWebhook& hook) {
    const auto rows = db().Rows(absl::StrCat(
        "SELECT d.state, coalesce(a.error_class, ''), coalesce(a.http_status::text, ''), a.duration_ms::text "
        "FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id WHERE d.webhook_id = ",
        SqlQuote(hook.id)));
    return rows.empty() ? std::vector<std::string>{} : rows.front();
  }
};

TEST_F(SsrfGuardE2eTest, EveryVectorIsBlockedAtConnectTimeAndNothingIsSent) {
  const std::string port = std::to_string(receiver_->port());
  struct Vector {
    std::string name;
    std::string url;           // as created through the REST API
    std::string sql_url;       // or set afterwards with SQL (creation refuses it)
  };
  const std::vector<Vector> vectors = {
      {"ipv4 loopback", "http://127.0.0.1:" + port + "/v4", ""},
      {"ipv6 loopback", "http://[::1]:" + port + "/v6", ""},
      {"ipv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + port + "/mapped", ""},
      // Resolved by the system (RFC 6761, /etc/hosts) to loopback at connect
      // time: what a DNS rebinding attack amounts to.
      {"name resolving to loopback", "http://localhost:" + port + "/name", ""},
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
}

}  // namespace
}  // namespace octo::delivery_e2e
