// octo-admin, the built binary, against the real stack: suppliers,
// connections, API keys and operators made with it work (the key
// authenticates at the gateway); webhooks it creates, lists and deletes are
// the ones the REST API sees; deliveries it lists, shows and redelivers are
// real sends to a receiver on 127.0.0.1. Bad input exits non-zero with a
// clear message and changes nothing.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "tests/delivery_e2e/delivery_fixture.h"

namespace octo::delivery_e2e {
namespace {

constexpr const char* kBooking =
    R"({"id":"bk-cli","uuid":"{uuid}","status":"CONFIRMED","contact":{"fullName":"Ada","locales":["en"]}})";

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string ShellQuote(const std::string& arg) {
  return absl::StrCat("'", absl::StrReplaceAll(arg, {{"'", "'\\''"}}), "'");
}

class AdminCliE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() { StartStack({}); }
  static void TearDownTestSuite() { StopStack(); }

  // Runs build/tools/octo-admin --target=<the stack's octo-subscription> ARGS.
  CliResult Admin(const std::vector<std::string>& args) {
    char err_path[] = "/tmp/octo-admin-stderr-XXXXXX";
    const int fd = mkstemp(err_path);
    EXPECT_GE(fd, 0);
    if (fd < 0) return {};
    close(fd);
    std::string command = absl::StrCat(ShellQuote(OCTO_ADMIN_BIN), " --target=127.0.0.1:",
                                       stack_->base().subscription_port(), " --token_file=",
                                       ShellQuote(stack_->base().callers().TokenFile("admin")));
    for (const std::string& a : args) absl::StrAppend(&command, " ", ShellQuote(a));
    absl::StrAppend(&command, " 2>", err_path);
    CliResult r;
    FILE* pipe = popen(command.c_str(), "r");
    EXPECT_NE(pipe, nullptr);
    if (pipe == nullptr) return r;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
    const int status = pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_path);
    std::stringstream text;
    text << in.rdbuf();
    r.err = text.str();
    unlink(err_path);
    return r;
  }

  // Runs a command that must succeed and print one id (--output=id).
  std::string AdminId(const std::vector<std::string>& args) {
    std::vector<std::string> with_output = args;
    with_output.push_back("--output=id");
    const CliResult r = Admin(with_output);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.err;
    const std::string id(absl::StripAsciiWhitespace(r.out));
    EXPECT_EQ(id.size(), 36u) << absl::StrJoin(args, " ") << ": " << r.out;
    return id;
  }
};

TEST_F(AdminCliE2eTest, TenantKeyAndOperatorMadeWithTheCliWork) {
  const std::string supplier =
      AdminId({"supplier", "create", "--name=Cli Tours", "--endpoint=https://cli-tours.example/octo"});
  ASSERT_EQ(supplier.size(), 36u);
  const CliResult got = Admin({"supplier", "get", supplier});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_NE(got.out.find("\"Cli Tours\""), std::string::npos) << got.out;

  const std::string connection = AdminId({"connection", "create", "--supplier=" + supplier, "--name=reseller"});
  ASSERT_EQ(connection.size(), 36u);
  const CliResult key = Admin({"key", "create", "--connection=" + connection, "--output=key"});
  ASSERT_EQ(key.exit_code, 0) << key.err;
  const e2e::Tenant tenant{.supplier_id = supplier,
                           .connection_id = connection,
                           .api_key_id = "",
                           .api_key = std::string(absl::StripAsciiWhitespace(key.out))};
  ASSERT_FALSE(tenant.api_key.empty());

  // The key authenticates at the gateway: the connection's webhooks, none yet.
  auto created = stack_->CreateWebhook(
      tenant, absl::StrCat(R"({"event":"booking_update","url":")", receiver_->Url("/rest"), R"("})"));
  ASSERT_TRUE(created.ok()) << created.status();
  const CliResult listed = Admin({"webhook", "list", "--connection=" + connection, "--output=id"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, created->id + "\n");

  const CliResult op = Admin({"operator", "create", "--supplier=" + supplier, "--name=night-shift",
                              "--output=password"});
  EXPECT_EQ(op.exit_code, 0) << op.err;
  EXPECT_GE(absl::StripAsciiWhitespace(op.out).size(), 12u) << op.out;
  const CliResult ops = Admin({"operator", "list", "--supplier=" + supplier});
  EXPECT_EQ(ops.exit_code, 0) << ops.err;
  EXPECT_NE(ops.out.find("night-shift"), std::string::npos) << ops.out;
}

TEST_F(AdminCliE2eTest, WebhookAndDeliveryCommandsActOnTheRealSystem) {
  const std::string connection = "--connection=" + tenant_.connection_id;
  const std::string webhook = AdminId(
      {"webhook", "create", connection, "--url=" + receiver_->Url("/cli"), "--event=booking_update", "--ordered"});
  ASSERT_EQ(webhook.size(), 36u);
  const std::string ordered_sql = absl::StrCat("SELECT ordered::text FROM webhooks WHERE id = ", SqlQuote(webhook));
  EXPECT_EQ(db().Scalar(ordered_sql), "true");
  // The REST API sees the webhook the CLI made.
  auto json = stack_->GetWebhookJson(tenant_, webhook);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_NE(json->find(receiver_->Url("/cli")), std::string::npos) << *json;
  EXPECT_NE(json->find("\"ordered\":true"), std::string::npos) << *json;

  MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("cli")));
  ASSERT_TRUE(receiver_->WaitFor("/cli", 1, 15s)) << stack_->LogTails();
  const std::string in_webhook = "--webhook=" + webhook;
  std::string delivery;
  ASSERT_TRUE(Eventually(
      [&] {
        const CliResult r = Admin({"delivery", "list", connection, in_webhook, "--status=succeeded"});
        if (r.exit_code != 0 || r.out.find("DELIVERY_STATE_SUCCEEDED") == std::string::npos) return false;
        delivery = Admin({"delivery", "list", connection, in_webhook, "--output=id"}).out;
        return true;
      },
      15s, 200ms));
  ASSERT_EQ(delivery.size(), 37u) << delivery;  // one id and its newline
  delivery.pop_back();
  const CliResult shown = Admin({"delivery", "show", delivery, connection, in_webhook});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("\"httpStatus\": 200"), std::string::npos) << shown.out;

  const CliResult redelivered = Admin({"delivery", "redeliver", delivery, connection, in_webhook});
  EXPECT_EQ(redelivered.exit_code, 0) << redelivered.err;
  ASSERT_TRUE(receiver_->WaitFor("/cli", 2, 15s)) << stack_->LogTails();

  // update: only what is given changes; ordered off, another URL.
  const CliResult updated =
      Admin({"webhook", "update", webhook, connection, "--ordered=false", "--url=" + receiver_->Url("/cli2")});
  EXPECT_EQ(updated.exit_code, 0) << updated.err;
  EXPECT_NE(updated.out.find("\"ordered\": false"), std::string::npos) << updated.out;
  EXPECT_EQ(db().Scalar(ordered_sql), "false");
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT url || ' ' || event FROM webhooks WHERE id = ", SqlQuote(webhook))),
            receiver_->Url("/cli2") + " booking_update");
  const CliResult again = Admin({"webhook", "update", webhook, connection, "--ordered"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(db().Scalar(ordered_sql), "true");
  const CliResult nothing = Admin({"webhook", "update", webhook, connection});
  EXPECT_EQ(nothing.exit_code, 2) << nothing.out;
  EXPECT_NE(nothing.err.find("say what to change"), std::string::npos) << nothing.err;

  const CliResult deleted = Admin({"webhook", "delete", webhook, connection});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  const CliResult after = Admin({"webhook", "list", connection, "--output=id"});
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(after.out, "") << after.out;
}

TEST_F(AdminCliE2eTest, BadInputExitsNonZeroWithAClearMessageAndChangesNothing) {
  const std::string connection = "--connection=" + tenant_.connection_id;
  // Refused by the service: exit 1, the gRPC code and the field on stderr.
  const CliResult bad_url =
      Admin({"webhook", "create", connection, "--url=ftp://files.example/hook", "--event=booking_update"});
  EXPECT_EQ(bad_url.exit_code, 1) << bad_url.out << bad_url.err;
  EXPECT_NE(bad_url.err.find("INVALID_ARGUMENT"), std::string::npos) << bad_url.err;
  EXPECT_NE(bad_url.err.find("url"), std::string::npos) << bad_url.err;
  EXPECT_EQ(bad_url.out, "");
  // Usage errors: exit 2, saying what is missing or unknown.
  const CliResult missing = Admin({"supplier", "create", "--name=No Endpoint"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("--endpoint"), std::string::npos) << missing.err;
  const CliResult unknown = Admin({"supplier", "explode"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("unknown command"), std::string::npos) << unknown.err;
  // Nothing was created.
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT count(*) FROM webhooks WHERE connection_id = ",
                                     SqlQuote(tenant_.connection_id))),
            "0");
  EXPECT_EQ(db().Scalar("SELECT count(*) FROM suppliers WHERE name = 'No Endpoint'"), "0");
}

}  // namespace
}  // namespace octo::delivery_e2e
