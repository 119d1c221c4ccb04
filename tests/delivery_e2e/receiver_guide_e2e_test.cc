// The receiver's guide cannot rot: its verification snippets
// (docs/receiving/verify.{mjs,py,go}) run against real signed deliveries
// from the stack -- a webhook's full body and a subscription's thin body --
// and must accept them, and refuse a changed body and a wrong secret.
//
// verify.mjs needs the `standardwebhooks` package: it runs from a copy next
// to $OCTO_NODE_VERIFIER, whose node_modules has it (scripts/test.sh).
// verify.go is built with `go build` (Debian golang-go, scripts/install-deps.sh).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/delivery_e2e/delivery_fixture.h"
#include "tests/delivery_e2e/notifications_test_util.h"

#ifndef OCTO_SOURCE_DIR
#error OCTO_SOURCE_DIR must name the source tree
#endif

namespace octo::delivery_e2e {
namespace {

namespace fs = std::filesystem;

struct Snippet {
  std::string name;
  std::string command;
};

class ReceiverGuideE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() { StartStack({}); }
  static void TearDownTestSuite() { StopStack(); }

  void TearDown() override {
    if (!node_copy_.empty()) fs::remove(node_copy_);
    if (!go_binary_.empty()) fs::remove(go_binary_);
    DeliveryTest::TearDown();
  }

  // The three snippets as commands reading the verifier input on stdin.
  std::vector<Snippet> Snippets() {
    const fs::path guide = fs::path(OCTO_SOURCE_DIR) / "docs" / "receiving";
    std::vector<Snippet> out;
    const char* node_verifier = std::getenv("OCTO_NODE_VERIFIER");
    if (node_verifier == nullptr || *node_verifier == '\0') {
      ADD_FAILURE() << "OCTO_NODE_VERIFIER is not set (scripts/test.sh sets it after npm ci in tests/node)";
    } else {
      node_copy_ = (fs::path(node_verifier).parent_path() / absl::StrCat(".guide-verify-", ::getpid(), ".mjs")).string();
      fs::copy_file(guide / "verify.mjs", node_copy_, fs::copy_options::overwrite_existing);
      out.push_back({"node", absl::StrCat("node '", node_copy_, "'")});
    }
    out.push_back({"python", absl::StrCat("python3 '", (guide / "verify.py").string(), "'")});
    // Built once (go build caches in GOCACHE), then run like the others.
    const std::string go_cache = (fs::temp_directory_path() / absl::StrCat("octo-go-cache-", ::getuid())).string();
    const std::string go_binary = absl::StrCat(go_cache, "/guide-verify-", ::getpid());
    if (!fs::exists(go_binary)) {
      const std::string build = absl::StrCat("GOCACHE='", go_cache, "' GOPATH='", go_cache,
                                             "/path' GO111MODULE=off go build -o '", go_binary, "' '",
                                             (guide / "verify.go").string(), "' 2>&1");
      EXPECT_EQ(std::system(build.c_str()), 0) << build << " failed (Debian golang-go: scripts/install-deps.sh)";
    }
    go_binary_ = go_binary;
    out.push_back({"go", absl::StrCat("'", go_binary, "'")});
    return out;
  }

  void ExpectSnippetsAgree(const ReceivedRequest& request, const CreatedWebhook& w) {
    for (const Snippet& s : Snippets()) {
      SCOPED_TRACE(s.name);
      NodeResult ok = RunVerifier(s.command, request, w.secret, request.body);
      EXPECT_EQ(ok.exit_code, 0) << ok.output << Describe(request);
      EXPECT_NE(ok.output.find("verified:"), std::string::npos) << ok.output;
      NodeResult changed = RunVerifier(s.command, request, w.secret, request.body + " ");
      EXPECT_EQ(changed.exit_code, 1) << changed.output;
      NodeResult wrong = RunVerifier(s.command, request, "whsec_" + std::string(43, 'A') + "=", request.body);
      EXPECT_EQ(wrong.exit_code, 1) << wrong.output;
    }
  }

  std::string node_copy_;
  std::string go_binary_;
};

TEST_F(ReceiverGuideE2eTest, SnippetsVerifyARealWebhookAndARealNotification) {
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/hook"), R"("headers":{"X-Partner":"p"})");
  absl::StatusOr<CreatedWebhook> sub = Subscribe(*stack_, tenant_, R"(["BOOKING_UPDATE"])", receiver_->Url("/sub"));
  ASSERT_TRUE(sub.ok()) << sub.status();
  const std::string resource =
      Fill(R"({"id":"bk-guide","uuid":"{uuid}","status":"CONFIRMED","notes":"Zoë \"quoted\" / ünïcode"})",
           {{"{uuid}", NewUuid()}});
  EXPECT_EQ(MustPublish(Event(tenant_, "booking_update", resource, NewKey("guide"))).delivery_count(), 2);
  const ReceivedRequest fat = OnlyRequest("/hook");
  const ReceivedRequest thin = OnlyRequest("/sub");
  {
    SCOPED_TRACE("webhook");
    ExpectSnippetsAgree(fat, hook);
  }
  {
    SCOPED_TRACE("subscription");
    ExpectSnippetsAgree(thin, *sub);
  }
}

}  // namespace
}  // namespace octo::delivery_e2e
