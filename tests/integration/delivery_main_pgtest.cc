// The octo-delivery executable as a real child process against a real
// PostgreSQL: flags, health, shutdown, the shared migrations, and publishing
// end to end through both real services (octo-subscription -> octo-delivery).
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octo/webhooks/v1/delivery.grpc.pb.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "services/schema/migrations.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/process.h"
#include "tests/support/test_callers.h"

#ifndef OCTO_DELIVERY_BIN
#error "OCTO_DELIVERY_BIN must name the octo-delivery binary"
#endif
#ifndef OCTO_SUBSCRIPTION_BIN
#error "OCTO_SUBSCRIPTION_BIN must name the octo-subscription binary"
#endif

namespace octo::testing {
namespace {

namespace pb = ::octo::webhooks::v1;
namespace health = ::grpc::health::v1;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr int kServing = health::HealthCheckResponse::SERVING;

class DeliveryMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    std::string pattern =
        (std::filesystem::temp_directory_path() / "octo-delivery-main-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    delivery_channel_.reset();
    subscription_channel_.reset();
    publisher_channel_.reset();
    subscription_.reset();
    delivery_.reset();
    db_.reset();
    if (dir_.empty()) return;
    if (HasFailure()) {
      std::cerr << "logs kept in " << dir_ << "\n";
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  // Starts octo-delivery on `listen` (127.0.0.1:0 by default) without the
  // dispatcher unless `extra_args` says otherwise; returns its port.
  int StartDelivery(std::vector<std::string> extra_args = {"--dispatch=false"},
                    const std::string& listen = "127.0.0.1:0") {
    const std::string port_file = dir_ + "/delivery.port";
    std::filesystem::remove(port_file);
    std::vector<std::string> args = {"--grpc_listen=" + listen, "--port_file=" + port_file,
                                     "--allow_destination_cidrs=127.0.0.0/8,::1/128"};
    for (std::string& flag : callers_.DeliveryFlags()) args.push_back(std::move(flag));
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto child = ChildProcess::Start({.binary = OCTO_DELIVERY_BIN,
                                      .args = args,
                                      .env = {{"OCTO_DATABASE_URL", db_->conninfo()}},
                                      .log_path = dir_ + "/delivery.log"});
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return 0;
    delivery_ = *std::move(child);
    auto port = delivery_->WaitForPortFile(port_file, 20s);
    EXPECT_TRUE(port.ok()) << port.status();
    if (!port.ok()) return 0;
    delivery_channel_ = callers_.Channel(absl::StrCat("127.0.0.1:", *port), "subscription");
    return *port;
  }

  int StartSubscription(int delivery_port) {
    const std::string port_file = dir_ + "/subscription.port";
    std::filesystem::remove(port_file);
    std::vector<std::string> args = {"--grpc_listen=127.0.0.1:0", "--port_file=" + port_file,
                                     absl::StrCat("--delivery_target=127.0.0.1:", delivery_port),
                                     "--allow_destination_cidrs=127.0.0.0/8,::1/128"};
    for (std::string& flag : callers_.SubscriptionFlags()) args.push_back(std::move(flag));
    auto child =
        ChildProcess::Start({.binary = OCTO_SUBSCRIPTION_BIN,
                             .args = std::move(args),
                             .env = {{"OCTO_DATABASE_URL", db_->conninfo()}},
                             .log_path = dir_ + "/subscription.log"});
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return 0;
    subscription_ = *std::move(child);
    auto port = subscription_->WaitForPortFile(port_file, 20s);
    EXPECT_TRUE(port.ok()) << port.status();
    if (!port.ok()) return 0;
    subscription_channel_ = callers_.Channel(absl::StrCat("127.0.0.1:", *port), "admin");
    publisher_channel_ = callers_.Channel(absl::StrCat("127.0.0.1:", *port), "publisher");
    return *port;
  }

  // SIGTERM and wait; the channel is closed first (see subscription_main_pgtest).
  ExitInfo StopDelivery() {
    delivery_channel_.reset();
    return delivery_->Terminate(20s);
  }

  int Health(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
    auto stub = health::Health::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    health::HealthCheckRequest request;
    request.set_service(service);
    health::HealthCheckResponse response;
    if (!stub->Check(&context, request, &response).ok()) return -1;
    return static_cast<int>(response.status());
  }

  bool WaitForHealth(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Health(channel, service) == kServing) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::string ReadLog(const std::string& name) const {
    std::ifstream in(dir_ + "/" + name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Runs octo-delivery to completion (it should exit by itself).
  ExitInfo Run(std::vector<std::string> args,
               std::vector<std::pair<std::string, std::string>> env = {}) {
    std::vector<std::string> all = callers_.DeliveryFlags();  // the test's own flags win
    all.insert(all.end(), args.begin(), args.end());
    auto child = ChildProcess::Start({.binary = OCTO_DELIVERY_BIN,
                                      .args = std::move(all),
                                      .env = std::move(env),
                                      .log_path = dir_ + "/run.log"});
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return {};
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while ((*child)->IsRunning() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    return (*child)->Terminate(1s);
  }

  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    Stub* stub, const Req& request, Resp* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    return (stub->*method)(&context, request, response);
  }

  long long Count(const std::string& sql) const {
    pqxx::connection conn(db_->conninfo());
    pqxx::work txn(conn);
    return txn.exec1(sql)[0].as<long long>();
  }

  std::string dir_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<ChildProcess> delivery_;
  std::unique_ptr<ChildProcess> subscription_;
  TestCallers callers_;
  std::shared_ptr<grpc::Channel> delivery_channel_;
  std::shared_ptr<grpc::Channel> subscription_channel_;  // octo-admin's identity
  std::shared_ptr<grpc::Channel> publisher_channel_;
};

TEST_F(DeliveryMainTest, ServesHealthAndStopsCleanlyOnSigterm) {
  ASSERT_GT(StartDelivery(), 0);
  EXPECT_TRUE(WaitForHealth(delivery_channel_, ""));
  EXPECT_TRUE(WaitForHealth(delivery_channel_, "octo.webhooks.v1.postgres"));
  // It applied the whole shared migration set.
  EXPECT_EQ(Count("SELECT count(*) FROM schema_migrations"),
            static_cast<long long>(schema::Migrations().size()));
  // Partitions exist for this week and the next (created at start-up).
  EXPECT_EQ(Count("SELECT count(*) FROM octo_retention_slices() AS w WHERE w >= octo_retention_week(now())"), 2);
  const ExitInfo exit = StopDelivery();
  EXPECT_TRUE(exit.Clean()) << exit.ToString() << "\n" << ReadLog("delivery.log");
}

TEST_F(DeliveryMainTest, RunsTheDispatcherAndStopsCleanly) {
  ASSERT_GT(StartDelivery({"--poll_interval=50ms", "--retry_schedule=10ms"}), 0);
  EXPECT_TRUE(WaitForHealth(delivery_channel_, ""));
  const ExitInfo exit = StopDelivery();
  EXPECT_TRUE(exit.Clean()) << exit.ToString() << "\n" << ReadLog("delivery.log");
}

TEST_F(DeliveryMainTest, BothServicesMigrateAFreshDatabaseTogether) {
  // Started back to back on an empty database: one advisory lock, one
  // migration set, whoever is first applies it.
  const std::string delivery_port_file = dir_ + "/delivery.port";
  std::vector<std::string> args = {"--grpc_listen=127.0.0.1:0", "--port_file=" + delivery_port_file,
                                   "--dispatch=false"};
  for (std::string& flag : callers_.DeliveryFlags()) args.push_back(std::move(flag));
  auto delivery =
      ChildProcess::Start({.binary = OCTO_DELIVERY_BIN,
                           .args = std::move(args),
                           .env = {{"OCTO_DATABASE_URL", db_->conninfo()}},
                           .log_path = dir_ + "/delivery.log"});
  ASSERT_TRUE(delivery.ok()) << delivery.status();
  delivery_ = *std::move(delivery);
  ASSERT_GT(StartSubscription(1), 0);
  ASSERT_TRUE(delivery_->WaitForPortFile(delivery_port_file, 20s).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM schema_migrations"),
            static_cast<long long>(schema::Migrations().size()));
  const std::string logs = ReadLog("delivery.log") + ReadLog("subscription.log");
  std::size_t applied = 0;
  for (std::size_t at = 0; (at = logs.find("migration applied", at)) != std::string::npos; ++at)
    ++applied;
  EXPECT_EQ(applied, schema::Migrations().size()) << logs;
}

TEST_F(DeliveryMainTest, PublishEventEndToEndThroughBothServices) {
  const int delivery_port = StartDelivery();
  ASSERT_GT(delivery_port, 0);
  ASSERT_GT(StartSubscription(delivery_port), 0);
  auto admin = pb::AdminService::NewStub(subscription_channel_);
  auto subscriptions = pb::SubscriptionService::NewStub(subscription_channel_);
  auto events = pb::EventService::NewStub(publisher_channel_);

  pb::CreateSupplierRequest supplier_request;
  supplier_request.set_name("Edinburgh Tours");
  supplier_request.set_endpoint("https://octo.example.com/v1");
  pb::Supplier supplier;
  ASSERT_TRUE(
      Call(&pb::AdminService::Stub::CreateSupplier, admin.get(), supplier_request, &supplier).ok());
  std::vector<std::string> connections;
  for (const char* name : {"Viator", "GetYourGuide"}) {
    pb::CreateConnectionRequest request;
    request.set_supplier_id(supplier.id());
    request.set_name(name);
    pb::Connection connection;
    ASSERT_TRUE(
        Call(&pb::AdminService::Stub::CreateConnection, admin.get(), request, &connection).ok());
    connections.push_back(connection.id());
  }
  std::vector<std::string> webhooks;
  for (const auto& [connection, event] : {std::pair{connections[0], "booking_update"},
                                          {connections[1], "booking_update"},
                                          {connections[1], "order_update"}}) {
    pb::CreateWebhookRequest request;
    request.set_connection_id(connection);
    request.set_event(event);
    request.set_url("https://hooks.example.com/octo");
    pb::CreateWebhookResponse created;
    ASSERT_TRUE(
        Call(&pb::SubscriptionService::Stub::CreateWebhook, subscriptions.get(), request, &created)
            .ok());
    webhooks.push_back(created.webhook().id());
  }

  pb::PublishEventRequest booking;
  booking.set_idempotency_key("booking-1-v1");
  booking.set_supplier_id(supplier.id());
  booking.set_event("booking_update");
  booking.set_resource_json(R"({"uuid":"b-1","status":"CONFIRMED"})");
  booking.mutable_occurred_at()->set_seconds(1767323045);
  pb::PublishEventResponse published;
  ASSERT_TRUE(Call(&pb::EventService::Stub::PublishEvent, events.get(), booking, &published).ok());
  EXPECT_EQ(published.delivery_count(), 2);
  EXPECT_FALSE(published.duplicate());
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries WHERE event_id = '" + published.event_id() +
                  "' AND webhook_id IN ('" + webhooks[0] + "', '" + webhooks[1] +
                  "') AND state = 'pending'"),
            2);

  pb::PublishEventsRequest batch;
  pb::PublishEventRequest order = booking;
  order.set_idempotency_key("order-1-v1");
  order.set_event("order_update");
  order.set_resource_json(R"({"id":"o-1","status":"CONFIRMED"})");
  order.set_connection_id(connections[1]);
  *batch.add_events() = order;
  *batch.add_events() = booking;  // again: a duplicate
  pb::PublishEventsResponse results;
  ASSERT_TRUE(Call(&pb::EventService::Stub::PublishEvents, events.get(), batch, &results).ok());
  ASSERT_EQ(results.results_size(), 2);
  EXPECT_EQ(results.results(0).delivery_count(), 1);
  EXPECT_TRUE(results.results(1).duplicate());
  EXPECT_EQ(results.results(1).event_id(), published.event_id());
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 3);

  // Without the delivery service, publishing is UNAVAILABLE (retry later)...
  ASSERT_TRUE(StopDelivery().Clean());
  pb::PublishEventRequest later = booking;
  later.set_idempotency_key("booking-1-v2");
  pb::PublishEventResponse response;
  const grpc::Status down =
      Call(&pb::EventService::Stub::PublishEvent, events.get(), later, &response);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE) << down.error_message();
  // ...and works again once it is back on its port.
  ASSERT_GT(StartDelivery({"--dispatch=false"}, absl::StrCat("127.0.0.1:", delivery_port)), 0);
  grpc::Status up;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  do {
    std::this_thread::sleep_for(200ms);
    up = Call(&pb::EventService::Stub::PublishEvent, events.get(), later, &response);
  } while (up.error_code() == grpc::StatusCode::UNAVAILABLE &&
           std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(up.ok()) << up.error_message();
  EXPECT_EQ(response.delivery_count(), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 3);
}

TEST_F(DeliveryMainTest, RejectsBadFlags) {
  const std::string db = "--database_url=" + db_->conninfo();
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--grpc_listen=0.0.0.0:0", db},
           {"--grpc_listen=127.0.0.1:0"},  // no database
           {"--db_pool_size=0", db},
           {"--claim_batch=0", db},
           {"--max_per_host=2000", db},
           {"--connect_timeout=0s", db},
           {"--connect_timeout=20s", "--request_timeout=10s", db},
           {"--min_retry_after=2h", db},
           {"--retry_schedule=soon", db},
           // Attempts that could outlast what the dashboard's health sees.
           {"--retry_schedule=20h,20h", db},
           {"--max_retry_after=168h", db},
           {"--ca_bundle=/nonexistent/ca.pem", db},
           {"--test_resolve=rebinding.octo.test:80", db},  // no address
       }) {
    const ExitInfo exit = Run(args, {{"OCTO_DATABASE_URL", ""}});
    EXPECT_EQ(exit.exit_code, 2) << args[0] << ": " << exit.ToString();
  }
  EXPECT_THAT(ReadLog("run.log"), HasSubstr("--allow_non_loopback"));
  EXPECT_THAT(ReadLog("run.log"), HasSubstr("the dashboard's 24-hour health sees attempts up to 48h"));
  EXPECT_THAT(ReadLog("run.log"), HasSubstr("--ca_bundle: cannot read /nonexistent/ca.pem"));
  EXPECT_THAT(ReadLog("run.log"), HasSubstr("--test_resolve: want host:port:address"));
  const ExitInfo bad_env = Run({db}, {{"OCTO_DELIVERY_POLL_INTERVAL", "often"}});
  EXPECT_EQ(bad_env.exit_code, 2) << bad_env.ToString();
  EXPECT_THAT(ReadLog("run.log"), HasSubstr("OCTO_DELIVERY_POLL_INTERVAL"));
}

// --retention (docs/delivery.md, "Retention"): refused at start-up with a
// message naming the flag and the accepted form, before anything runs.
TEST_F(DeliveryMainTest, RejectsABadRetention) {
  const std::string db = "--database_url=" + db_->conninfo();
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--retention=soon", db}, "--retention: want a duration such as 30d or 720h, got \"soon\""},
           {{"--retention=0d", db}, "--retention: must be between 1d and 3650d, got \"0d\""},
           {{"--retention=-5d", db}, "--retention: must be between 1d and 3650d"},
           {{"--retention=12h", db}, "--retention: must be between 1d and 3650d, got \"12h\""},
           {{"--retention=3651d", db}, "--retention: must be between 1d and 3650d"},
           {{"--retention_interval=0s", db}, "--retention_interval: must be between 1s and 24h"},
       }) {
    const ExitInfo exit = Run(args, {{"OCTO_DATABASE_URL", ""}});
    EXPECT_EQ(exit.exit_code, 2) << args[0] << ": " << exit.ToString();
    EXPECT_THAT(ReadLog("run.log"), HasSubstr(message)) << args[0];
  }
  const ExitInfo bad_env = Run({db}, {{"OCTO_DELIVERY_RETENTION", "forever"}});
  EXPECT_EQ(bad_env.exit_code, 2) << bad_env.ToString();
  EXPECT_THAT(ReadLog("run.log"), HasSubstr("--retention: want a duration such as 30d or 720h, got \"forever\""));
}

TEST_F(DeliveryMainTest, UnreachableDatabaseExitsNonZero) {
  const ExitInfo exit = Run({"--grpc_listen=127.0.0.1:0", "--dispatch=false",
                             "--database_url=host=127.0.0.1 port=1 connect_timeout=2"});
  EXPECT_EQ(exit.exit_code, 1) << exit.ToString();
}

}  // namespace
}  // namespace octo::testing
