// Deliveries over HTTPS, and to a name that does not resolve, end to end.
// tls_receiver.py (python3, the openssl CLI) makes a local CA and four
// server certificates and serves HTTPS on 127.0.0.1 with each; octo-delivery
// trusts the CA through --ca_bundle. A valid chain for localhost /
// 127.0.0.1 is delivered; a self-signed, an expired and a wrong-host
// certificate fail with error class `tls` and the receiver reads no request.
// A host under .invalid (RFC 6761: never resolves) fails with class `dns`.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/delivery_e2e/delivery_fixture.h"
#include "tests/support/process.h"

namespace octo::delivery_e2e {
namespace {

constexpr const char* kBooking =
    R"({"id":"bk-tls","uuid":"{uuid}","status":"CONFIRMED","contact":{"fullName":"Ada","locales":["en"]}})";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class TlsDnsE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() {
    char dir[] = "/tmp/octo-tls-e2e-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return;
    }
    dir_ = new std::string(dir);
    auto receiver = testing::ChildProcess::Start({.binary = OCTO_PYTHON3,
                                                  .args = {OCTO_SOURCE_DIR "/tests/delivery_e2e/tls_receiver.py", dir},
                                                  .env = {},
                                                  .log_path = *dir_ + "/tls_receiver.log"});
    if (!receiver.ok()) {
      ADD_FAILURE() << receiver.status();
      return;
    }
    tls_ = receiver->release();
    // Making five keys and certificates takes a moment on a loaded machine.
    const bool listening = Eventually([] { return !ReadFile(*dir_ + "/ports.json").empty(); }, 60s, 50ms);
    if (!listening) {
      ADD_FAILURE() << "tls_receiver.py did not start:\n" << tls_->LogTail();
      return;
    }
    const boost::json::object ports = boost::json::parse(ReadFile(*dir_ + "/ports.json")).as_object();
    ports_ = new std::map<std::string, int>();
    for (const auto& [name, port] : ports) (*ports_)[std::string(name)] = static_cast<int>(port.as_int64());
    // The connect timeout covers name resolution: long enough for a
    // resolver that cannot be reached to give up (glibc: 2 x 5 s), so the
    // DNS case ends `dns` rather than `timeout` on such a machine too.
    StartStack({.retry_schedule = "",  // one attempt each: the outcome is final
                .request_timeout = "20s",
                .connect_timeout = "15s",
                .lease_margin = "1s",
                .poll_interval = "100ms",
                .min_retry_after = "1s",
                .max_retry_after = "2500ms",
                .allow_destination_cidrs = "127.0.0.0/8,::1/128",
                .extra_args = {"--ca_bundle=" + *dir_ + "/ca.pem"}});
  }
  static void TearDownTestSuite() {
    StopStack();
    if (tls_ != nullptr) tls_->Kill9();
    delete tls_;
    tls_ = nullptr;
    delete ports_;
    ports_ = nullptr;
    // Only the directory mkdtemp made for this suite.
    if (dir_ != nullptr) std::system(absl::StrCat("rm -rf '", *dir_, "'").c_str());
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(ports_, nullptr) << "the HTTPS receivers did not start";
    DeliveryTest::SetUp();
  }

  static std::string HttpsUrl(const std::string& host, const std::string& receiver, const std::string& path) {
    return absl::StrCat("https://", host, ":", ports_->at(receiver), path);
  }

  // The lines "<receiver> POST <path>" the HTTPS receivers logged.
  static std::string RequestLog() { return ReadFile(*dir_ + "/requests.log"); }

  // {state, error class, http status} of the webhook's one delivery once it
  // has ended (empty while it has not).
  std::vector<std::string> Outcome(const CreatedWebhook& hook) {
    const auto rows = db().Rows(absl::StrCat(
        "SELECT d.state, coalesce(a.error_class, ''), coalesce(a.http_status::text, '') "
        "FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id "
        "WHERE d.state IN ('succeeded', 'failed') AND d.webhook_id = ",
        SqlQuote(hook.id)));
    return rows.empty() ? std::vector<std::string>{} : rows.front();
  }

  std::vector<std::string> AwaitOutcome(const CreatedWebhook& hook, const std::string& what) {
    std::vector<std::string> outcome;
    EXPECT_TRUE(Eventually([&] { return !(outcome = Outcome(hook)).empty(); }, 30s, 50ms))
        << what << "\n" << stack_->LogTails();
    return outcome;
  }

  static std::string* dir_;
  static std::map<std::string, int>* ports_;
  static testing::ChildProcess* tls_;
};

std::string* TlsDnsE2eTest::dir_ = nullptr;
std::map<std::string, int>* TlsDnsE2eTest::ports_ = nullptr;
testing::ChildProcess* TlsDnsE2eTest::tls_ = nullptr;

TEST_F(TlsDnsE2eTest, ValidChainFromTheConfiguredCaIsDeliveredByNameAndByAddress) {
  const CreatedWebhook by_name = Hook("booking_update", HttpsUrl("localhost", "valid", "/by-name"));
  const CreatedWebhook by_address = Hook("booking_update", HttpsUrl("127.0.0.1", "valid", "/by-address"));
  ASSERT_FALSE(by_name.id.empty());
  ASSERT_FALSE(by_address.id.empty());
  MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("tls-ok")));

  EXPECT_EQ(AwaitOutcome(by_name, "localhost"), (std::vector<std::string>{"succeeded", "", "200"}));
  EXPECT_EQ(AwaitOutcome(by_address, "127.0.0.1"), (std::vector<std::string>{"succeeded", "", "200"}));
  const std::string log = RequestLog();
  EXPECT_NE(log.find("valid POST /by-name\n"), std::string::npos) << log;
  EXPECT_NE(log.find("valid POST /by-address\n"), std::string::npos) << log;
}

TEST_F(TlsDnsE2eTest, SelfSignedExpiredAndWrongHostCertificatesFailWithTls) {
  struct Case {
    std::string receiver;
    std::string path;
  };
  const std::vector<Case> cases = {{"self_signed", "/self-signed"}, {"expired", "/expired"},
                                   {"wrong_host", "/wrong-host"}};
  std::vector<CreatedWebhook> hooks;
  for (const Case& c : cases) {
    hooks.push_back(Hook("booking_update", HttpsUrl("localhost", c.receiver, c.path), R"("retryOnError":false)"));
    ASSERT_FALSE(hooks.back().id.empty()) << c.receiver;
  }
  MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("tls-bad")));

  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(AwaitOutcome(hooks[i], cases[i].receiver), (std::vector<std::string>{"failed", "tls", ""}))
        << cases[i].receiver;
    EXPECT_EQ(db().Scalar(absl::StrCat("SELECT last_error_class FROM deliveries WHERE webhook_id = ",
                                       SqlQuote(hooks[i].id))),
              "tls")
        << cases[i].receiver;
  }
  // No request got past a handshake the client refused.
  const std::string log = RequestLog();
  for (const Case& c : cases) EXPECT_EQ(log.find(c.receiver + " POST"), std::string::npos) << log;
}

TEST_F(TlsDnsE2eTest, HostThatDoesNotResolveFailsWithDns) {
  // Creation does not resolve names (delivery does, at connect time).
  const CreatedWebhook hook =
      Hook("booking_update", "http://no-such-receiver.octo.invalid/hook", R"("retryOnError":false)");
  ASSERT_FALSE(hook.id.empty());
  MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("dns")));
  EXPECT_EQ(AwaitOutcome(hook, "dns"), (std::vector<std::string>{"failed", "dns", ""}));
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT last_error_class FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id))),
            "dns");
}

}  // namespace
}  // namespace octo::delivery_e2e
