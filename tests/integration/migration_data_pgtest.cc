// Upgrading a database that holds data: the schema of an older release
// (migrations up to kOldVersion) filled as that release wrote it, then the
// current octo-delivery and octo-subscription started on it, whose start-up
// applies the newer migrations. The rows must come through intact and
// usable: the old API key authenticates, the old webhook and its
// deliveries (attempts included) read through the services, and the old
// event's pending delivery is rendered and delivered to a receiver on
// 127.0.0.1.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "services/common/migrations.h"
#include "services/schema/migrations.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/process.h"
#include "tests/support/receiver.h"
#include "tests/support/test_callers.h"

namespace octo::testing {
namespace {

namespace pb = ::octo::webhooks::v1;
using namespace std::chrono_literals;

// The schema of the first release with deliveries: 0001_init, 0002_delivery.
constexpr int kOldVersion = 2;

constexpr char kSupplier[] = "5a000000-0000-4000-8000-000000000001";
constexpr char kConnection[] = "5a000000-0000-4000-8000-000000000002";
constexpr char kApiKeyId[] = "5a000000-0000-4000-8000-000000000003";
constexpr char kWebhook[] = "5a000000-0000-4000-8000-000000000004";
constexpr char kEvent[] = "5a000000-0000-4000-8000-000000000005";
constexpr char kDelivered[] = "5a000000-0000-4000-8000-000000000006";
constexpr char kPending[] = "5a000000-0000-4000-8000-000000000007";
constexpr char kOtherWebhook[] = "5a000000-0000-4000-8000-000000000008";
constexpr char kApiKey[] = "octo_old_release_key_0123456789";
constexpr char kBookingUuid[] = "b0000000-0000-4000-8000-0000000000aa";
constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+AfLHbBs7Wk=";

// What the old release stored: a supplier, its connection and API key, a
// webhook, one event with two deliveries (one succeeded, one pending after
// a failed first attempt) and their attempts, in the old columns only.
std::string OldReleaseRows(const std::string& webhook_url) {
  return absl::StrCat(
      "INSERT INTO suppliers (id, name, endpoint, contact) VALUES ('", kSupplier,
      "', 'Old Tours', 'https://old-tours.example/octo', '{\"email\":\"ops@old-tours.example\"}');"
      "INSERT INTO connections (id, supplier_id, name, max_webhooks) VALUES ('", kConnection, "', '",
      kSupplier, "', 'reseller', 10);",
      "INSERT INTO api_keys (id, connection_id, name, prefix, key_hash) VALUES ('", kApiKeyId, "', '",
      kConnection, "', 'old key', 'octo_old', sha256('", kApiKey, "'::bytea));",
      "INSERT INTO webhooks (id, connection_id, event, url, secret, created_at, updated_at) VALUES ('",
      kWebhook, "', '", kConnection, "', 'booking_update', '", webhook_url, "', '", kSecret,
      "', now() - interval '2 days', now() - interval '2 days');",
      "INSERT INTO events (id, supplier_id, idempotency_key, event, resource_kind, resource_key, resource, "
      "occurred_at, delivery_count) VALUES ('", kEvent, "', '", kSupplier,
      "', 'old-key-1', 'booking_update', 'booking', '", kBookingUuid, "', '{\"uuid\":\"", kBookingUuid,
      "\",\"status\":\"CONFIRMED\"}', now() - interval '1 day', 2);",
      // The succeeded delivery went to a second webhook of the connection.
      "INSERT INTO webhooks (id, connection_id, event, url, secret) VALUES ('", kOtherWebhook, "', '",
      kConnection, "', 'booking_update', 'https://old-receiver.example/hook', '", kSecret, "');",
      "INSERT INTO deliveries (id, event_id, webhook_id, state, attempt_count, created_at, completed_at, "
      "last_http_status) VALUES ('", kDelivered, "', '", kEvent, "', '", kOtherWebhook,
      "', 'succeeded', 1, now() - interval '1 day', now() - interval '1 day', 204);",
      "INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, http_status) "
      "VALUES ('", kDelivered, "', 1, now() - interval '1 day', 12.5, 204);",
      "INSERT INTO deliveries (id, event_id, webhook_id, attempt_count, next_attempt_at, created_at, "
      "last_error_class) VALUES ('", kPending, "', '", kEvent, "', '", kWebhook,
      "', 1, now(), now() - interval '1 day', 'connect');",
      "INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, error_class, "
      "response_snippet) VALUES ('", kPending, "', 1, now() - interval '1 day', 3, 'connect', 'refused');");
}

std::string Scalar(const std::string& conninfo, const std::string& sql) {
  pqxx::connection conn(conninfo);
  pqxx::work txn(conn);
  const pqxx::row row = txn.exec1(sql);
  return row[0].is_null() ? "NULL" : row[0].as<std::string>();
}

class MigrationWithDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    dir_ = std::filesystem::temp_directory_path() / ("octo-migration-data-" + db_->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    for (auto* child : {&subscription_, &delivery_}) {
      if (*child) (*child)->Terminate(10s);
    }
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Starts a service binary on the test database; its gRPC port, 0 on failure.
  int Start(std::unique_ptr<ChildProcess>& out, const char* binary, const std::string& name,
            std::vector<std::string> args) {
    const std::string port_file = (dir_ / (name + ".port")).string();
    args.insert(args.end(), {"--grpc_listen=127.0.0.1:0", "--port_file=" + port_file,
                             "--allow_destination_cidrs=127.0.0.0/8,::1/128"});
    auto child = ChildProcess::Start({.binary = binary,
                                      .args = args,
                                      .env = {{"OCTO_DATABASE_URL", db_->conninfo()}},
                                      .log_path = (dir_ / (name + ".log")).string()});
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return 0;
    out = *std::move(child);
    auto port = out->WaitForPortFile(port_file, 30s);
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : 0;
  }

  std::unique_ptr<TestDatabase> db_;
  std::filesystem::path dir_;
  std::unique_ptr<ChildProcess> delivery_;
  std::unique_ptr<ChildProcess> subscription_;
  octo::testing::TestCallers callers_;  // the services' internal tokens
};

template <typename Stub, typename Request, typename Response>
grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*), Stub* stub,
                  const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  return (stub->*method)(&context, request, response);
}

TEST_F(MigrationWithDataTest, OldReleasesRowsSurviveTheCurrentMigrationsAndStayUsable) {
  std::vector<Migration> old_set;
  for (const Migration& m : schema::Migrations()) {
    if (m.version <= kOldVersion) old_set.push_back(m);
  }
  ASSERT_EQ(old_set.size(), static_cast<std::size_t>(kOldVersion));
  ASSERT_LT(old_set.size(), schema::Migrations().size()) << "no newer migration to apply";
  ASSERT_TRUE(ApplyMigrations(db_->conninfo(), old_set, schema::kMigrationLockKey).ok());
  auto receiver = HttpReceiver::Start();
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  {
    pqxx::connection conn(db_->conninfo());
    pqxx::work txn(conn);
    txn.exec(OldReleaseRows((*receiver)->Url("/old-hook")));
    txn.commit();
  }

  // The current binaries migrate the database as they start.
  std::vector<std::string> delivery_args = callers_.DeliveryFlags();
  delivery_args.push_back("--poll_interval=100ms");
  const int delivery_port = Start(delivery_, OCTO_DELIVERY_BIN, "delivery", delivery_args);
  ASSERT_GT(delivery_port, 0);
  std::vector<std::string> subscription_args = callers_.SubscriptionFlags();
  subscription_args.push_back(absl::StrCat("--delivery_target=127.0.0.1:", delivery_port));
  const int subscription_port = Start(subscription_, OCTO_SUBSCRIPTION_BIN, "subscription", subscription_args);
  ASSERT_GT(subscription_port, 0);
  EXPECT_EQ(Scalar(db_->conninfo(), "SELECT max(version) FROM schema_migrations"),
            std::to_string(schema::Migrations().back().version));

  // The old event's pending delivery is rendered and sent (its 2nd attempt).
  ASSERT_TRUE((*receiver)->WaitFor("/old-hook", 1, 20s)) << delivery_->LogTail();
  const std::vector<ReceivedRequest> sent = (*receiver)->Requests("/old-hook");
  EXPECT_NE(sent[0].body.find(kBookingUuid), std::string::npos) << sent[0].body;
  EXPECT_NE(sent[0].body.find("Old Tours"), std::string::npos) << sent[0].body;

  // The old rows, through the services.
  auto channel = callers_.Channel(absl::StrCat("127.0.0.1:", subscription_port), "gateway");
  auto auth = pb::AuthService::NewStub(channel);
  auto subscriptions = pb::SubscriptionService::NewStub(channel);
  pb::AuthenticateRequest auth_request;
  auth_request.set_api_key(kApiKey);
  pb::AuthenticateResponse who;
  ASSERT_TRUE(Call(&pb::AuthService::Stub::Authenticate, auth.get(), auth_request, &who).ok());
  EXPECT_EQ(who.api_key_id(), kApiKeyId);
  EXPECT_EQ(who.connection_id(), kConnection);

  pb::GetWebhookRequest get_webhook;
  get_webhook.set_connection_id(kConnection);
  get_webhook.set_webhook_id(kWebhook);
  pb::Webhook webhook;
  ASSERT_TRUE(Call(&pb::SubscriptionService::Stub::GetWebhook, subscriptions.get(), get_webhook, &webhook).ok());
  EXPECT_EQ(webhook.url(), (*receiver)->Url("/old-hook"));
  EXPECT_EQ(webhook.event(), "booking_update");
  // Migration 0012: the old webhooks come out unordered, their deliveries
  // without an order (which the order check accepts; 0013 copies them into
  // partitions where it is validated).
  EXPECT_FALSE(webhook.ordered());
  EXPECT_EQ(Scalar(db_->conninfo(), "SELECT count(*) FILTER (WHERE ordered) || '/' || count(*) FROM webhooks"),
            "0/2");
  EXPECT_EQ(Scalar(db_->conninfo(), "SELECT count(*) FROM deliveries WHERE ordered_resource_id IS NOT NULL"
                                    " OR sequence IS NOT NULL OR ordered_at IS NOT NULL"),
            "0");

  pb::GetDeliveryRequest get_delivery;
  get_delivery.set_connection_id(kConnection);
  get_delivery.set_webhook_id(kOtherWebhook);
  get_delivery.set_delivery_id(kDelivered);
  pb::Delivery delivered;
  ASSERT_TRUE(
      Call(&pb::SubscriptionService::Stub::GetDelivery, subscriptions.get(), get_delivery, &delivered).ok());
  EXPECT_EQ(delivered.state(), pb::DELIVERY_STATE_SUCCEEDED);
  ASSERT_EQ(delivered.attempts_size(), 1);
  EXPECT_EQ(delivered.attempts(0).http_status(), 204);
  EXPECT_DOUBLE_EQ(delivered.attempts(0).duration_ms(), 12.5);

  // The pending one ends succeeded, its old failed attempt kept before the new one.
  get_delivery.set_webhook_id(kWebhook);
  get_delivery.set_delivery_id(kPending);
  pb::Delivery resent;
  bool succeeded = false;
  for (int i = 0; i < 100 && !succeeded; ++i) {
    ASSERT_TRUE(Call(&pb::SubscriptionService::Stub::GetDelivery, subscriptions.get(), get_delivery, &resent).ok());
    succeeded = resent.state() == pb::DELIVERY_STATE_SUCCEEDED;
    if (!succeeded) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(succeeded) << resent.DebugString();
  ASSERT_EQ(resent.attempts_size(), 2);
  EXPECT_EQ(resent.attempts(0).error_class(), "connect");
  EXPECT_EQ(resent.attempts(0).response_snippet(), "refused");
  EXPECT_EQ(resent.attempts(1).http_status(), 200);

  // Columns the newer migrations added got their defaults on the old rows.
  EXPECT_EQ(Scalar(db_->conninfo(), absl::StrCat("SELECT dialect FROM webhooks WHERE id = '", kWebhook, "'")),
            "webhook");
  EXPECT_EQ(Scalar(db_->conninfo(), absl::StrCat("SELECT secret FROM webhooks WHERE id = '", kWebhook, "'")),
            kSecret);
  EXPECT_EQ(Scalar(db_->conninfo(), "SELECT count(*) FROM events"), "1");
}

}  // namespace
}  // namespace octo::testing
