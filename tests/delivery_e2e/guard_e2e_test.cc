// The SSRF guard end to end: octo-delivery in
// production mode (no allow-list) must refuse every vector of the issue at
// connect time, record the attempt as `blocked`, and send nothing: the
// receiver on 127.0.0.1 sees zero requests. octo-subscription here allows
// loopback (as run.sh does), so that webhooks pointing at the receiver can
// be created; the addresses creation refuses (10/8, 169.254.169.254) are
// set with SQL. Creation-time refusals are tested in tests/e2e.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/common/address_guard.h"
#include "tests/delivery_e2e/delivery_fixture.h"

namespace octo::delivery_e2e {
namespace {

constexpr const char* kBooking =
    R"({"id":"bk-g","uuid":"{uuid}","status":"CONFIRMED","contact":{"fullName":"Ada","locales":["en"]}})";

// This machine's host name when the system resolver (/etc/hosts, DNS)
// gives only loopback addresses for it, as Debian's /etc/hosts does
// (127.0.1.1, or 127.0.0.1): a name that is not "localhost", resolved by
// getaddrinfo at connect time, like a rebinding name. Else "" (the test then
// fails rather than connect anywhere else).
std::string LoopbackHostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(name, nullptr, &hints, &found) != 0 || found == nullptr) return "";
  bool only_loopback = true;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const std::optional<IpAddress> ip = IpAddress::FromSockaddr(a->ai_addr, a->ai_addrlen);
    const std::optional<BlockedRange> range = ip ? ClassifyAddress(*ip) : std::nullopt;
    if (!range || range->name != "loopback") only_loopback = false;
  }
  freeaddrinfo(found);
  return only_loopback ? std::string(name) : "";
}

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
  const std::string host_name = LoopbackHostName();
  ASSERT_FALSE(host_name.empty()) << "this machine's host name does not resolve to loopback addresses only";
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
      // ...this machine's name is resolved by the system (getaddrinfo,
      // /etc/hosts) to 127.0.x.1.
      {"host name resolving to loopback", "http://" + host_name + ":" + port + "/hostname", ""},
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
