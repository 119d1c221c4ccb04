// The operators' dashboard in a real headless Chromium (Debian's
// /usr/bin/chromium, driven by npm playwright-core from dashboard.mjs)
// against the real stack: a fresh database on the throwaway cluster
// (OCTO_TEST_PG), octo-delivery, octo-subscription and octo-gateway on
// 127.0.0.1, and a real HTTP receiver standing in for the partner.
//
// The browser script asks this harness to publish an event by POSTing to the
// receiver's /control/publish (the harness watches for it and publishes over
// EventService gRPC, as a booking engine would). The receiver answers the
// webhook: 200 to the first delivery, 500 to the two attempts of the second
// (so it fails), then 200 again (the redelivery succeeds).
//
// Without OCTO_TEST_PG or OCTO_BROWSER_TESTS (tests/browser after `npm ci`,
// set by scripts/test.sh) the test fails; it never skips.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "octo/webhooks/v1/operators.grpc.pb.h"
#include "tests/delivery_e2e/delivery_stack.h"
#include "tests/delivery_e2e/delivery_test_util.h"
#include "tests/support/process.h"
#include "tests/support/receiver.h"

namespace octo::delivery_e2e {
namespace {

namespace v1 = octo::webhooks::v1;
using namespace std::chrono_literals;

constexpr const char* kBooking =
    R"({"id":"bk-{n}","uuid":"{uuid}","status":"CONFIRMED","productId":"prod-eye","optionId":"DEFAULT",)"
    R"("pricing":{"retail":2500,"currency":"GBP"},"contact":{"fullName":"Ada Lovelace","locales":["en-GB"]}})";

struct Login {
  std::string name;
  std::string password;
};

absl::StatusOr<Login> CreateOperator(e2e::E2eStack& stack, const std::string& supplier_id, const std::string& name) {
  auto channel = stack.callers().Channel(absl::StrCat("127.0.0.1:", stack.subscription_port()), "admin");
  auto stub = v1::OperatorService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::CreateOperatorRequest request;
  request.set_supplier_id(supplier_id);
  request.set_name(name);
  v1::CreateOperatorResponse response;
  const grpc::Status s = stub->CreateOperator(&context, request, &response);
  if (!s.ok()) return absl::InternalError(absl::StrCat("CreateOperator: ", s.error_message()));
  return Login{name, response.password()};
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DashboardBrowserTest, EveryScenarioInChromium) {
  const char* browser_dir = std::getenv("OCTO_BROWSER_TESTS");
  ASSERT_TRUE(browser_dir != nullptr && *browser_dir != '\0')
      << "OCTO_BROWSER_TESTS is not set: it must name tests/browser after `npm ci` there (scripts/test.sh does both)";
  const std::string script = absl::StrCat(browser_dir, "/dashboard.mjs");
  ASSERT_TRUE(std::filesystem::exists(script)) << script;
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "Debian's chromium is missing (scripts/install-deps.sh)";

  DeliveryFlags flags;
  flags.retry_schedule = "200ms";  // two attempts: the second delivery fails on the receiver's two 500s
  DeliveryStack stack(flags);
  ASSERT_TRUE(stack.Start().ok()) << stack.LogTails();
  auto receiver = testing::HttpReceiver::Start();
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  (*receiver)->SetPlan("/hook", {testing::Reply(200), testing::Reply(500).Body("upstream down"),
                                 testing::Reply(500).Body("upstream down")},
                       testing::Reply(200));

  absl::StatusOr<e2e::Tenant> mine = stack.NewTenant();
  absl::StatusOr<e2e::Tenant> theirs = stack.NewTenant();
  ASSERT_TRUE(mine.ok() && theirs.ok());
  const std::string suffix = NewUuid().substr(0, 8);
  absl::StatusOr<Login> alice = CreateOperator(stack.base(), mine->supplier_id, "alice-" + suffix);
  absl::StatusOr<Login> bob = CreateOperator(stack.base(), theirs->supplier_id, "bob-" + suffix);
  ASSERT_TRUE(alice.ok() && bob.ok()) << alice.status() << bob.status();

  const std::string screenshots = OCTO_BROWSER_SCREENSHOT_DIR;
  std::filesystem::create_directories(screenshots);
  const std::string log = stack.base().dir() + "/browser.log";
  auto node = testing::ChildProcess::Start({
      .binary = "/usr/bin/env",
      .args = {"node", script},
      .env = {{"DASHBOARD_URL", absl::StrCat("http://127.0.0.1:", stack.gateway_port(), "/dashboard/")},
              {"OPERATOR_NAME", alice->name},
              {"OPERATOR_PASSWORD", alice->password},
              {"OTHER_OPERATOR_NAME", bob->name},
              {"OTHER_OPERATOR_PASSWORD", bob->password},
              {"CONNECTION_ID", mine->connection_id},
              {"RECEIVER_URL", (*receiver)->Url("/hook")},
              {"CONTROL_URL", (*receiver)->Url("/control")},
              {"SCREENSHOT_DIR", screenshots},
              {"NODE_PATH", absl::StrCat(browser_dir, "/node_modules")}},
      .log_path = log,
  });
  ASSERT_TRUE(node.ok()) << node.status();

  // Publish on request until the script ends (bounded: 4 minutes).
  std::size_t published = 0;
  const auto deadline = std::chrono::steady_clock::now() + 240s;
  while ((*node)->IsRunning() && std::chrono::steady_clock::now() < deadline) {
    while ((*receiver)->Count("/control/publish") > published) {
      ++published;
      auto request = Event(*mine, "booking_update",
                           Fill(kBooking, {{"{n}", absl::StrCat(published)}, {"{uuid}", NewUuid()}}),
                           NewKey("browser"));
      auto result = stack.Publish(request);
      EXPECT_TRUE(result.ok()) << result.status();
    }
    std::this_thread::sleep_for(50ms);
  }
  const testing::ExitInfo exit = (*node)->Terminate(5s);
  EXPECT_TRUE(exit.Clean()) << exit.ToString() << "\n--- browser log ---\n" << ReadAll(log) << stack.LogTails();
  EXPECT_EQ(published, 2u) << ReadAll(log);
  // The webhook got what the browser saw: one success, two failures, the redelivery.
  EXPECT_GE((*receiver)->Count("/hook"), 4u);
  std::cout << ReadAll(log);
  stack.StopAllExpectClean();
}

}  // namespace
}  // namespace octo::delivery_e2e
