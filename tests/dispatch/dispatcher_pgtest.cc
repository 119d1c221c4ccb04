// The dispatcher end to end against a real PostgreSQL (OCTO_TEST_PG) and a
// scripted HTTP receiver on 127.0.0.1: rows are inserted directly, the
// dispatcher claims, sends and records them, and the tests read the tables.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/crypto.h"
#include "services/common/migrations.h"
#include "services/delivery/dispatch_render.h"
#include "services/delivery/dispatcher.h"
#include "services/delivery/payload/render.h"
#include "services/delivery/payload/signing.h"
#include "services/schema/migrations.h"
#include "tests/dispatch/http_receiver.h"
#include "tests/support/pg_test_db.h"

namespace octo::delivery {
namespace {

using octo::testing::HttpReceiver;
using octo::testing::ReceivedRequest;
using octo::testing::Delayed;
using octo::testing::Raw;
using octo::testing::Reply;
using octo::testing::ResetConnection;
using octo::testing::ScriptedResponse;
using octo::testing::TestDatabase;
using octo::testing::UnusedPort;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kBooking[] =
    R"({"uuid":"b-1","testMode":false,"status":"CONFIRMED","contact":{"fullName":"Ana Example","locales":["de-AT","en"]},)"
    R"("pricing":{"retail":1000,"currency":"EUR"},"notes":"window seat"})";
constexpr char kDiff[] = R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}])";

struct DeliveryRow {
  std::string state;
  int attempt_count = 0;
  std::optional<int> last_http_status;
  std::optional<std::string> last_error_class;
  bool leased = false;
  bool completed = false;
  double due_in_ms = 0;  // next_attempt_at - now()
};

struct AttemptRow {
  int number = 0;
  std::optional<int> http_status;
  std::optional<std::string> error_class;
  std::string snippet;
  double duration_ms = 0;
  absl::Time started_at;
};

struct WebhookSpec {
  std::string url;
  bool retry_on_error = true;
  bool use_contact_language = true;
  std::string headers = "{}";
  std::string capabilities = "[]";
  std::string event = "booking_update";

  WebhookSpec& NoRetry() {
    retry_on_error = false;
    return *this;
  }
};

WebhookSpec Spec(std::string url) {
  WebhookSpec s;
  s.url = std::move(url);
  return s;
}

struct Webhook {
  std::string id;
  std::string secret;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    absl::Status migrated = ApplyMigrations(db_->conninfo(), schema::Migrations(), schema::kMigrationLockKey);
    ASSERT_TRUE(migrated.ok()) << migrated;
    conn_ = std::make_unique<pqxx::connection>(db_->conninfo());
    supplier_id_ = Scalar(
        "INSERT INTO suppliers (name, endpoint, contact) VALUES ('Tours Ltd', 'https://api.tours.example/octo', "
        "'{\"email\": \"ops@tours.example\", \"website\": \"https://tours.example\"}') RETURNING id::text");
    connection_id_ = Scalar(absl::StrCat("INSERT INTO connections (supplier_id, name, max_webhooks) VALUES ('",
                                         supplier_id_, "', 'partner', 100) RETURNING id::text"));
  }

  void TearDown() override {
    if (dispatcher_ != nullptr) dispatcher_->Stop();
    dispatcher_.reset();
    conn_.reset();
    db_.reset();
  }

  static DispatcherOptions FastOptions() {
    DispatcherOptions o;
    o.claim_batch = 50;
    o.max_in_flight = 100;
    o.max_per_host = 16;
    o.connect_timeout = milliseconds(1000);
    o.request_timeout = milliseconds(2000);
    o.lease_margin = milliseconds(2000);
    o.retry_schedule = {};
    o.min_retry_after = milliseconds(100);
    o.max_retry_after = milliseconds(5000);
    o.poll_interval = milliseconds(50);
    // The receivers run on loopback, which the production SSRF policy refuses.
    o.destination_policy = *DestinationPolicy::Parse("127.0.0.0/8,::1/128");
    return o;
  }

  void StartDispatcher(DispatcherOptions o = FastOptions()) {
    o.database_url = db_->conninfo();
    absl::StatusOr<std::unique_ptr<Dispatcher>> d = Dispatcher::Start(std::move(o));
    ASSERT_TRUE(d.ok()) << d.status();
    dispatcher_ = std::move(*d);
  }

  std::string Scalar(const std::string& sql) {
    pqxx::work w(*conn_);
    const pqxx::row r = w.exec1(sql);
    w.commit();
    return r[0].is_null() ? "" : r[0].as<std::string>();
  }

  void Exec(const std::string& sql) {
    pqxx::work w(*conn_);
    w.exec(sql);
    w.commit();
  }

  Webhook AddWebhook(const WebhookSpec& spec) {
    Webhook w;
    w.secret = crypto::NewSigningSecret();
    pqxx::work txn(*conn_);
    w.id = txn.exec_params1(
                  "INSERT INTO webhooks (connection_id, event, url, retry_on_error, use_contact_language, headers, "
                  "capabilities, secret) VALUES ($1::uuid, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8) RETURNING id::text",
                  connection_id_, spec.event, spec.url, spec.retry_on_error, spec.use_contact_language, spec.headers,
                  spec.capabilities, w.secret)[0]
               .as<std::string>();
    txn.commit();
    return w;
  }

  std::string AddEvent(const std::string& resource = kBooking, const std::string& localized = "{}",
                       const std::string& diff = kDiff) {
    pqxx::work txn(*conn_);
    const std::string id =
        txn.exec_params1(
               "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, resource, "
               "localized, diff, occurred_at) VALUES ($1::uuid, $2, 'booking_update', 'booking', 'b-1', $3::json, "
               "$4::json, $5::json, now()) RETURNING id::text",
               supplier_id_, absl::StrCat("key-", ++event_seq_), resource, localized, diff)[0]
            .as<std::string>();
    txn.commit();
    return id;
  }

  // `next_attempt_in_ms` from now; lease (relative, ms) when given.
  std::string AddDelivery(const std::string& event_id, const std::string& webhook_id, int next_attempt_in_ms = 0,
                          std::optional<int> lease_in_ms = std::nullopt, bool notify = true) {
    pqxx::work txn(*conn_);
    const std::string id =
        txn.exec_params1(
               "INSERT INTO deliveries (event_id, webhook_id, next_attempt_at, lease_expires_at) VALUES "
               "($1::uuid, $2::uuid, now() + $3::int * interval '1 millisecond', "
               "now() + $4::int * interval '1 millisecond') RETURNING id::text",
               event_id, webhook_id, next_attempt_in_ms, lease_in_ms)[0]
            .as<std::string>();
    if (notify) txn.exec("NOTIFY octo_deliveries");
    txn.commit();
    return id;
  }

  DeliveryRow Delivery(const std::string& id) {
    pqxx::work txn(*conn_);
    const pqxx::result r = txn.exec_params(
        "SELECT state, attempt_count, last_http_status, last_error_class, lease_expires_at IS NOT NULL, "
        "completed_at IS NOT NULL, extract(epoch FROM next_attempt_at - now()) * 1000 "
        "FROM deliveries WHERE id = $1::uuid",
        id);
    txn.commit();
    DeliveryRow d;
    if (r.empty()) return d;
    d.state = r[0][0].as<std::string>();
    d.attempt_count = r[0][1].as<int>();
    if (!r[0][2].is_null()) d.last_http_status = r[0][2].as<int>();
    if (!r[0][3].is_null()) d.last_error_class = r[0][3].as<std::string>();
    d.leased = r[0][4].as<bool>();
    d.completed = r[0][5].as<bool>();
    d.due_in_ms = r[0][6].as<double>();
    return d;
  }

  std::vector<AttemptRow> Attempts(const std::string& id) {
    pqxx::work txn(*conn_);
    const pqxx::result r = txn.exec_params(
        "SELECT attempt_number, http_status, error_class, response_snippet, duration_ms, "
        "(extract(epoch FROM started_at) * 1000000)::bigint "
        "FROM delivery_attempts WHERE delivery_id = $1::uuid ORDER BY attempt_number",
        id);
    txn.commit();
    std::vector<AttemptRow> out;
    for (const pqxx::row& row : r) {
      AttemptRow a;
      a.number = row[0].as<int>();
      if (!row[1].is_null()) a.http_status = row[1].as<int>();
      if (!row[2].is_null()) a.error_class = row[2].as<std::string>();
      a.snippet = row[3].as<std::string>();
      a.duration_ms = row[4].as<double>();
      a.started_at = absl::FromUnixMicros(row[5].as<long long>());
      out.push_back(std::move(a));
    }
    return out;
  }

  // Polls until the delivery leaves 'pending' (or the timeout).
  DeliveryRow WaitDone(const std::string& id, absl::Duration timeout = absl::Seconds(15)) {
    const absl::Time deadline = absl::Now() + timeout;
    DeliveryRow d = Delivery(id);
    while (d.state == "pending" && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      d = Delivery(id);
    }
    return d;
  }

  // Polls until the dispatcher's LISTEN connection is listening.
  bool WaitListening(absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    const std::string sql =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'";
    while (Scalar(sql) == "0") {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

  // Polls until `n` attempts are recorded.
  std::vector<AttemptRow> WaitAttempts(const std::string& id, std::size_t n,
                                       absl::Duration timeout = absl::Seconds(15)) {
    const absl::Time deadline = absl::Now() + timeout;
    std::vector<AttemptRow> a = Attempts(id);
    while (a.size() < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      a = Attempts(id);
    }
    return a;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::string supplier_id_;
  std::string connection_id_;
  int event_seq_ = 0;
};

TEST(DispatcherStart, RejectsBadOptions) {
  DispatcherOptions o;
  EXPECT_EQ(Dispatcher::Start(o).status().code(), absl::StatusCode::kInvalidArgument);  // no database
  o.database_url = "host=127.0.0.1 port=1";
  o.claim_batch = 0;
  EXPECT_EQ(Dispatcher::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.claim_batch = 10;
  o.retry_schedule = {milliseconds(-1)};
  EXPECT_EQ(Dispatcher::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.retry_schedule = {};
  o.max_retry_after = milliseconds(10);
  o.min_retry_after = milliseconds(20);
  EXPECT_EQ(Dispatcher::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  // Valid options, unreachable database.
  o.min_retry_after = milliseconds(1);
  o.database_url = absl::StrCat("host=127.0.0.1 port=", UnusedPort(), " connect_timeout=2");
  EXPECT_EQ(Dispatcher::Start(o).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(DispatcherTest, SuccessIsRecordedWithOneAttempt) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Reply(200, "thanks"); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/hook")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  StartDispatcher();
  const DeliveryRow d = WaitDone(id);
  EXPECT_EQ(d.state, "succeeded");
  EXPECT_EQ(d.attempt_count, 1);
  EXPECT_EQ(d.last_http_status, 200);
  EXPECT_EQ(d.last_error_class, std::nullopt);
  EXPECT_FALSE(d.leased);
  EXPECT_TRUE(d.completed);
  const std::vector<AttemptRow> a = Attempts(id);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].number, 1);
  EXPECT_EQ(a[0].http_status, 200);
  EXPECT_EQ(a[0].error_class, std::nullopt);
  EXPECT_EQ(a[0].snippet, "thanks");
  EXPECT_GT(a[0].duration_ms, 0);
  EXPECT_LT(absl::Now() - a[0].started_at, absl::Seconds(30));
  EXPECT_EQ(receiver.Requests().size(), 1u);
}

TEST_F(DispatcherTest, TheRequestIsExactlyRight) {
  HttpReceiver receiver;
  WebhookSpec spec;
  spec.url = absl::StrCat("http://partner%40x:s%3Acret@127.0.0.1:", receiver.port(), "/octo/hook?tenant=7");
  spec.headers = R"({"X-Api-Key": "k-123", "X-Trace": "on"})";
  spec.capabilities = R"(["octo/pricing"])";
  spec.use_contact_language = false;
  const Webhook w = AddWebhook(spec);
  const std::string id = AddDelivery(AddEvent(), w.id);
  const absl::Time before = absl::Now();
  StartDispatcher();
  ASSERT_EQ(WaitDone(id).state, "succeeded");
  const absl::Time after = absl::Now();

  const std::vector<ReceivedRequest> got = receiver.Requests();
  ASSERT_EQ(got.size(), 1u);
  const ReceivedRequest& r = got[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/octo/hook?tenant=7");

  // The body, byte for byte: what octo_payload renders for this webhook.
  payload::DeliveryPayloadInput input;
  input.webhook.id = w.id;
  input.webhook.event = "booking_update";
  input.webhook.url = spec.url;
  input.webhook.retry_on_error = true;
  input.webhook.use_contact_language = false;
  input.webhook.headers = {{"X-Api-Key", "k-123"}, {"X-Trace", "on"}};
  input.webhook.capabilities = {"octo/pricing"};
  input.kind = payload::ResourceKind::kBooking;
  input.resource = boost::json::parse(kBooking);
  input.diff = boost::json::parse(kDiff).as_array();
  input.supplier = {supplier_id_, "Tours Ltd", "https://api.tours.example/octo",
                    {"https://tours.example", "ops@tours.example", "", ""}};
  EXPECT_EQ(r.body, payload::RenderDeliveryBody(input));
  EXPECT_THAT(r.body, HasSubstr(absl::StrCat(R"("url":"http://partner%40x:***@127.0.0.1:)", receiver.port())));
  EXPECT_THAT(r.body, HasSubstr(R"("headers":{"X-Api-Key":"***","X-Trace":"***"})"));
  EXPECT_THAT(r.body, HasSubstr(R"("pricing":{"retail":1000,"currency":"EUR"})"));
  EXPECT_THAT(r.body, HasSubstr(R"("diff":[{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}])"));
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("s%3Acret")));

  // The headers, in order.
  const std::string message_id = WebhookMessageId(id);
  std::vector<std::string> names;
  for (const auto& [n, v] : r.headers) names.push_back(n);
  EXPECT_THAT(names, ElementsAre("Host", "Content-Type", "User-Agent", "X-Api-Key", "X-Trace", "Authorization",
                                 "webhook-id", "webhook-timestamp", "webhook-signature", "Content-Length"));
  EXPECT_EQ(r.Header("Host"), absl::StrCat("127.0.0.1:", receiver.port()));
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  EXPECT_EQ(r.Header("User-Agent"), absl::StrCat("octo-webhooks/", OCTO_WEBHOOKS_VERSION));
  EXPECT_EQ(r.Header("X-Api-Key"), "k-123");
  EXPECT_EQ(r.Header("X-Trace"), "on");
  EXPECT_EQ(r.Header("Authorization"), absl::StrCat("Basic ", absl::Base64Escape("partner@x:s:cret")));
  EXPECT_EQ(r.Header("webhook-id"), message_id);
  EXPECT_EQ(message_id.size(), 4u + 32u);
  EXPECT_EQ(r.Header("Content-Length"), std::to_string(r.body.size()));
  EXPECT_EQ(r.HeaderCount("Expect"), 0);
  int64_t timestamp = 0;
  ASSERT_TRUE(absl::SimpleAtoi(r.Header("webhook-timestamp").value_or(""), &timestamp));
  EXPECT_GE(timestamp, absl::ToUnixSeconds(before) - 1);
  EXPECT_LE(timestamp, absl::ToUnixSeconds(after) + 1);
  EXPECT_TRUE(payload::VerifySignatureHeader(r.Header("webhook-signature").value_or(""), message_id, timestamp, r.body,
                                             w.secret));
  EXPECT_FALSE(payload::VerifySignatureHeader(r.Header("webhook-signature").value_or(""), message_id, timestamp,
                                              r.body + " ", w.secret));
}

TEST_F(DispatcherTest, TheGuestsLanguageVariantWithContentLanguage) {
  HttpReceiver receiver;
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string localized =
      R"({"fr": {"uuid":"b-1","status":"CONFIRMÉ"}, "de": {"uuid":"b-1","status":"BESTÄTIGT"}})";
  const std::string id = AddDelivery(AddEvent(kBooking, localized), w.id);
  StartDispatcher();
  ASSERT_EQ(WaitDone(id).state, "succeeded");
  const ReceivedRequest r = receiver.Requests().at(0);
  EXPECT_EQ(r.Header("Content-Language"), "de");
  EXPECT_THAT(r.body, HasSubstr(R"("booking":{"uuid":"b-1","status":"BESTÄTIGT"})"));
}

TEST_F(DispatcherTest, ServerErrorsAreRetriedOnScheduleThenFailed) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Reply(500, "boom"); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  DispatcherOptions o = FastOptions();
  o.retry_schedule = {milliseconds(100), milliseconds(200)};
  o.poll_interval = milliseconds(5000);  // the retries must come from the schedule, not the poll
  StartDispatcher(o);
  const DeliveryRow d = WaitDone(id);
  EXPECT_EQ(d.state, "failed");
  EXPECT_EQ(d.attempt_count, 3);
  EXPECT_EQ(d.last_http_status, 500);
  const std::vector<AttemptRow> a = Attempts(id);
  ASSERT_EQ(a.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a[i].number, i + 1);
    EXPECT_EQ(a[i].http_status, 500);
    EXPECT_EQ(a[i].snippet, "boom");
  }
  // Delays with +-20 % jitter: >= 80 ms, then >= 160 ms.
  EXPECT_GE(a[1].started_at - a[0].started_at, absl::Milliseconds(80));
  EXPECT_GE(a[2].started_at - a[1].started_at, absl::Milliseconds(160));
  EXPECT_LT(a[2].started_at - a[0].started_at, absl::Seconds(3));
  // Every retry of one delivery carries the same webhook-id.
  const std::vector<ReceivedRequest> got = receiver.Requests();
  ASSERT_EQ(got.size(), 3u);
  for (const ReceivedRequest& r : got) EXPECT_EQ(r.Header("webhook-id"), WebhookMessageId(id));
}

TEST_F(DispatcherTest, OneAttemptWhenRetryOnErrorIsFalse) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Reply(503); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")).NoRetry());
  const std::string id = AddDelivery(AddEvent(), w.id);
  DispatcherOptions o = FastOptions();
  o.retry_schedule = {milliseconds(10), milliseconds(10)};
  StartDispatcher(o);
  const DeliveryRow d = WaitDone(id);
  // Failed is final: claims take pending deliveries only, so nothing more
  // can come (the decision itself: PipelineTest.NoRetryWhenRetryOnErrorIsOff).
  EXPECT_EQ(d.state, "failed");
  EXPECT_EQ(d.attempt_count, 1);
  EXPECT_EQ(Attempts(id).size(), 1u);
  EXPECT_EQ(receiver.Requests().size(), 1u);
}

TEST_F(DispatcherTest, ConnectionRefusedIsAConnectError) {
  const Webhook w = AddWebhook(Spec(absl::StrCat("http://127.0.0.1:", UnusedPort(), "/")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  StartDispatcher();
  const DeliveryRow d = WaitDone(id);
  EXPECT_EQ(d.state, "failed");
  EXPECT_EQ(d.last_error_class, "connect");
  EXPECT_EQ(d.last_http_status, std::nullopt);
  const std::vector<AttemptRow> a = Attempts(id);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].error_class, "connect");
  EXPECT_EQ(a[0].http_status, std::nullopt);
}

TEST_F(DispatcherTest, ASlowReceiverTimesOut) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Seconds(5)); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  DispatcherOptions o = FastOptions();
  o.request_timeout = milliseconds(300);
  StartDispatcher(o);
  const DeliveryRow d = WaitDone(id);
  EXPECT_EQ(d.state, "failed");
  EXPECT_EQ(d.last_error_class, "timeout");
  const std::vector<AttemptRow> a = Attempts(id);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].error_class, "timeout");
  EXPECT_GE(a[0].duration_ms, 250);
  EXPECT_LT(a[0].duration_ms, 2000);
}

TEST_F(DispatcherTest, RetryAfterIsHonouredOn429) {
  HttpReceiver receiver;
  int calls = 0;
  receiver.SetHandler([&](const ReceivedRequest&) {
    if (++calls == 1) return Reply(429, "", {{"Retry-After", "1"}});
    return Reply(200);
  });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  DispatcherOptions o = FastOptions();
  o.retry_schedule = {milliseconds(10)};  // what a 429 without Retry-After would get
  StartDispatcher(o);
  const DeliveryRow d = WaitDone(id);
  EXPECT_EQ(d.state, "succeeded");
  const std::vector<AttemptRow> a = Attempts(id);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].http_status, 429);
  EXPECT_EQ(a[1].http_status, 200);
  EXPECT_GE(a[1].started_at - a[0].started_at, absl::Milliseconds(950));
  EXPECT_LT(a[1].started_at - a[0].started_at, absl::Seconds(4));
}

TEST_F(DispatcherTest, RetryAfterIsClampedToTheMaximum) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) {
    return Reply(503, "", {{"Retry-After", "86400"}});
  });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  DispatcherOptions o = FastOptions();
  o.retry_schedule = {milliseconds(10)};
  o.max_retry_after = milliseconds(60000);
  StartDispatcher(o);
  ASSERT_EQ(WaitAttempts(id, 1).size(), 1u);
  const DeliveryRow d = Delivery(id);
  EXPECT_EQ(d.state, "pending");
  EXPECT_EQ(d.attempt_count, 1);
  EXPECT_FALSE(d.leased);
  EXPECT_GT(d.due_in_ms, 55000);
  EXPECT_LE(d.due_in_ms, 60000);
}

TEST_F(DispatcherTest, GoneDisablesTheWebhookAndCancelsItsPendingDeliveries) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Reply(410, "gone"); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const Webhook other = AddWebhook(Spec(receiver.Url("/other")));
  const std::string first = AddDelivery(AddEvent(), w.id);
  const std::string later = AddDelivery(AddEvent(), w.id, /*next_attempt_in_ms=*/3'600'000);
  const std::string unrelated = AddDelivery(AddEvent(), other.id, /*next_attempt_in_ms=*/3'600'000);
  DispatcherOptions o = FastOptions();
  o.retry_schedule = {milliseconds(10)};
  StartDispatcher(o);
  const DeliveryRow d = WaitDone(first);
  EXPECT_EQ(d.state, "failed");
  EXPECT_EQ(d.last_http_status, 410);
  EXPECT_EQ(Attempts(first).size(), 1u);
  EXPECT_EQ(Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = '", w.id, "'")), "disabled");
  EXPECT_THAT(Scalar(absl::StrCat("SELECT disabled_reason FROM webhooks WHERE id = '", w.id, "'")),
              HasSubstr("410 Gone"));
  const DeliveryRow cancelled = Delivery(later);
  EXPECT_EQ(cancelled.state, "cancelled");
  EXPECT_TRUE(cancelled.completed);
  EXPECT_EQ(cancelled.attempt_count, 0);
  EXPECT_EQ(Delivery(unrelated).state, "pending");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = '", other.id, "'")), "enabled");
}

TEST_F(DispatcherTest, RedirectsAreNotFollowed) {
  HttpReceiver receiver;
  receiver.SetHandler([&](const ReceivedRequest&) {
    return Reply(302, "", {{"Location", receiver.Url("/moved")}});
  });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")).NoRetry());
  const std::string id = AddDelivery(AddEvent(), w.id);
  StartDispatcher();
  const DeliveryRow d = WaitDone(id);
  EXPECT_EQ(d.state, "failed");
  EXPECT_EQ(d.last_http_status, 302);
  const std::vector<AttemptRow> a = Attempts(id);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].http_status, 302);
  const std::vector<ReceivedRequest> got = receiver.Requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target, "/");
}

TEST_F(DispatcherTest, AnExpiredLeaseIsReclaimedALiveOneIsNot) {
  HttpReceiver receiver;
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  // Left leased by a claimer that crashed a while ago, and one still held.
  const std::string crashed = AddDelivery(AddEvent(), w.id, -60'000, /*lease_in_ms=*/-1000);
  const std::string held = AddDelivery(AddEvent(), w.id, -60'000, /*lease_in_ms=*/600'000);
  // Due later, without a notification: claimed by a poll after the ones
  // that found the crashed delivery, so once it is done several claims
  // have passed over the held one.
  const std::string later = AddDelivery(AddEvent(), w.id, /*next_attempt_in_ms=*/300, std::nullopt, /*notify=*/false);
  StartDispatcher();
  EXPECT_EQ(WaitDone(crashed).state, "succeeded");
  EXPECT_EQ(Attempts(crashed).size(), 1u);
  EXPECT_EQ(WaitDone(later).state, "succeeded");
  const DeliveryRow d = Delivery(held);
  EXPECT_EQ(d.state, "pending");
  EXPECT_TRUE(d.leased);
  EXPECT_EQ(d.attempt_count, 0);
  EXPECT_EQ(receiver.Requests().size(), 2u);  // the crashed one and the later one
}

TEST_F(DispatcherTest, DeliveriesOfADisabledWebhookAreCancelledUnsent) {
  HttpReceiver receiver;
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  Exec(absl::StrCat("UPDATE webhooks SET status = 'disabled', disabled_at = now() WHERE id = '", w.id, "'"));
  const std::string id = AddDelivery(AddEvent(), w.id);
  StartDispatcher();
  const DeliveryRow d = WaitDone(id);
  EXPECT_EQ(d.state, "cancelled");
  EXPECT_EQ(d.attempt_count, 0);
  EXPECT_TRUE(Attempts(id).empty());
  EXPECT_TRUE(receiver.Requests().empty());
}

TEST_F(DispatcherTest, NotifyWakesTheDispatcherWithoutWaitingForThePoll) {
  HttpReceiver receiver;
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  DispatcherOptions o = FastOptions();
  o.poll_interval = milliseconds(60'000);
  StartDispatcher(o);
  ASSERT_TRUE(WaitListening());
  const absl::Time start = absl::Now();
  const std::string id = AddDelivery(AddEvent(), w.id, 0, std::nullopt, /*notify=*/true);
  EXPECT_EQ(WaitDone(id, absl::Seconds(10)).state, "succeeded");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(DispatcherTest, ResultsOfDeletedWebhooksAreDroppedQuietly) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest& r) {
    if (r.target == "/slow") return Delayed(absl::Milliseconds(500));
    return Reply(200);
  });
  const Webhook slow = AddWebhook(Spec(receiver.Url("/slow")));
  const Webhook fast = AddWebhook(Spec(receiver.Url("/fast")));
  const std::string doomed = AddDelivery(AddEvent(), slow.id);
  // One slot: the next delivery is claimed only once the doomed one's
  // result has been written (and dropped), no sleep needed to know it.
  DispatcherOptions o = FastOptions();
  o.max_in_flight = 1;
  StartDispatcher(o);
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(10)));
  Exec(absl::StrCat("DELETE FROM webhooks WHERE id = '", slow.id, "'"));
  // The dispatcher carries on.
  const std::string id = AddDelivery(AddEvent(), fast.id);
  EXPECT_EQ(WaitDone(id).state, "succeeded");
  // The doomed delivery's result was written (its slot freed for this one)
  // and left nothing behind: no delivery row brought back, no attempt.
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE id = '", doomed, "'")), "0");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM delivery_attempts WHERE delivery_id = '", doomed, "'")), "0");
}

TEST_F(DispatcherTest, StopFinishesInFlightTransfersAndWritesTheirResults) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Milliseconds(400)); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  StartDispatcher();
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(10)));
  dispatcher_->Stop();
  // Written before Stop returned.
  const DeliveryRow d = Delivery(id);
  EXPECT_EQ(d.state, "succeeded");
  EXPECT_FALSE(d.leased);
  EXPECT_EQ(Attempts(id).size(), 1u);
  dispatcher_->Stop();  // idempotent
}

TEST_F(DispatcherTest, StopReleasesClaimedButUnsentDeliveries) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Milliseconds(400)); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  std::vector<std::string> ids;
  const std::string event = AddEvent();
  for (int i = 0; i < 5; ++i) {
    // One event, five deliveries to the same host: one per webhook.
    const Webhook wi = i == 0 ? w : AddWebhook(Spec(receiver.Url("/")));
    ids.push_back(AddDelivery(event, wi.id));
  }
  DispatcherOptions o = FastOptions();
  o.max_per_host = 1;
  StartDispatcher(o);
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(10)));
  dispatcher_->Stop();
  int succeeded = 0, released = 0;
  for (const std::string& id : ids) {
    const DeliveryRow d = Delivery(id);
    EXPECT_FALSE(d.leased) << id;
    if (d.state == "succeeded") ++succeeded;
    if (d.state == "pending" && d.attempt_count == 0) ++released;
  }
  EXPECT_GE(succeeded, 1);
  EXPECT_EQ(succeeded + released, 5);
}

TEST_F(DispatcherTest, NeverMoreInFlightThanTheCap) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Milliseconds(100)); });
  std::vector<std::string> ids;
  const std::string event = AddEvent();
  for (int i = 0; i < 20; ++i) {
    const Webhook w = AddWebhook(Spec(receiver.Url("/")));
    ids.push_back(AddDelivery(event, w.id));
  }
  DispatcherOptions o = FastOptions();
  o.max_in_flight = 4;
  o.claim_batch = 10;
  StartDispatcher(o);
  for (const std::string& id : ids) EXPECT_EQ(WaitDone(id).state, "succeeded");
  EXPECT_LE(receiver.MaxConcurrent(), 4);
  EXPECT_GE(receiver.MaxConcurrent(), 2);
  // And never more leased than the cap at any time: every delivery got one attempt.
  EXPECT_EQ(Scalar("SELECT count(*) FROM delivery_attempts"), "20");
}

TEST_F(DispatcherTest, ABackloggedDestinationIsDeferredNotFailed) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Milliseconds(50)); });
  std::vector<std::string> ids;
  const std::string event = AddEvent();
  for (int i = 0; i < 12; ++i) ids.push_back(AddDelivery(event, AddWebhook(Spec(receiver.Url("/"))).id));
  DispatcherOptions o = FastOptions();
  o.max_per_host = 1;
  o.max_queued_per_host = 4;  // so at most 1 running + 4 waiting: the rest is released and deferred
  StartDispatcher(o);
  for (const std::string& id : ids) EXPECT_EQ(WaitDone(id).state, "succeeded");
  // Deferral is not an attempt.
  EXPECT_EQ(Scalar("SELECT count(*) FROM delivery_attempts"), "12");
  EXPECT_EQ(Scalar("SELECT max(attempt_count) FROM deliveries"), "1");
  EXPECT_EQ(receiver.MaxConcurrent(), 1);
}

TEST_F(DispatcherTest, SurvivesLostDatabaseConnections) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Milliseconds(300)); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string first = AddDelivery(AddEvent(), w.id);
  StartDispatcher();
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(10)));
  // Every other connection to the database is cut while the request is out.
  Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
       "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  EXPECT_EQ(WaitDone(first).state, "succeeded");
  EXPECT_EQ(Attempts(first).size(), 1u);
  // And it goes on claiming (woken by NOTIFY again, or the poll).
  const std::string second = AddDelivery(AddEvent(), w.id);
  EXPECT_EQ(WaitDone(second).state, "succeeded");
}

TEST_F(DispatcherTest, AResultTheDatabaseRefusesForAMomentIsWrittenLater) {
  HttpReceiver receiver;
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  // A sequence counts the refusals (nextval survives the rollback).
  Exec("CREATE SEQUENCE refusals");
  Exec("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
       "$$ BEGIN PERFORM nextval('refusals'); RAISE EXCEPTION 'refused'; END $$");
  Exec("CREATE TRIGGER refuse BEFORE INSERT ON delivery_attempts FOR EACH ROW EXECUTE FUNCTION refuse()");
  const std::string id = AddDelivery(AddEvent(), w.id);
  StartDispatcher();
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(10)));
  // Refused twice (the batch, then the result on its own).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  const auto refusals = [&] {
    return std::stoll(Scalar("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM refusals"));
  };
  while (refusals() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_GE(refusals(), 2);  // else the trigger was dropped before the retry this test is about
  Exec("DROP TRIGGER refuse ON delivery_attempts");
  EXPECT_EQ(WaitDone(id).state, "succeeded");
  EXPECT_EQ(Attempts(id).size(), 1u);
  EXPECT_EQ(receiver.Requests().size(), 1u);  // written, not sent again
}

TEST_F(DispatcherTest, WhileResultsCannotBeRecordedTheLeaseExpiresAndTheDeliveryIsResent) {
  HttpReceiver receiver;
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  // Recording results fails until the trigger is dropped (the attempt a
  // re-claim records as interrupted is let through).
  Exec("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
       "$$ BEGIN IF NEW.error_class IS DISTINCT FROM 'interrupted' THEN RAISE EXCEPTION 'refused'; END IF; "
       "RETURN NEW; END $$");
  Exec("CREATE TRIGGER refuse BEFORE INSERT ON delivery_attempts FOR EACH ROW EXECUTE FUNCTION refuse()");
  const std::string id = AddDelivery(AddEvent(), w.id);
  // The first claim's lease, read inside the handler of its request (so
  // while that claim holds it: it is the token the claim set; a later claim
  // would set a later one), on a connection of the handler's own.
  pqxx::connection lease_conn(db_->conninfo());
  std::mutex lease_mu;
  std::optional<absl::Time> first_lease;
  receiver.SetHandler([&](const ReceivedRequest&) {
    std::lock_guard lock(lease_mu);
    if (!first_lease.has_value()) {
      pqxx::work txn(lease_conn);
      first_lease = absl::FromUnixMicros(
          txn.exec1("SELECT (extract(epoch FROM lease_expires_at) * 1000000)::bigint FROM deliveries WHERE id = " +
                    txn.quote(id))[0]
              .as<int64_t>());
      txn.commit();
    }
    return Reply(200);
  });
  DispatcherOptions o = FastOptions();
  o.request_timeout = milliseconds(500);
  o.lease_margin = milliseconds(500);
  const absl::Time started = absl::Now();
  StartDispatcher(o);
  // The result cannot be recorded; the lease (1 s) expires and the delivery
  // is sent again, with the same webhook-id.
  ASSERT_TRUE(receiver.WaitForRequests(2, absl::Seconds(10)));
  // The re-claim recorded the first claim's attempt as interrupted.
  EXPECT_GE(Delivery(id).attempt_count, 1);
  const std::vector<AttemptRow> lost = Attempts(id);
  ASSERT_FALSE(lost.empty());
  EXPECT_EQ(lost.front().error_class, "interrupted");
  Exec("DROP TRIGGER refuse ON delivery_attempts");
  // Once the database accepts results again, the delivery is recorded.
  EXPECT_EQ(WaitDone(id).state, "succeeded");
  EXPECT_GE(Attempts(id).size(), 1u);
  const std::vector<ReceivedRequest> got = receiver.Requests();
  for (const ReceivedRequest& r : got) EXPECT_EQ(r.Header("webhook-id"), WebhookMessageId(id));
  // Sent again only once the first claim's lease had run out: never before
  // a lease taken after the dispatcher started, nor before the one read.
  EXPECT_GE(got[1].received_at, started + absl::Seconds(1));
  absl::Time lease;
  {
    std::lock_guard lock(lease_mu);
    ASSERT_TRUE(first_lease.has_value());
    lease = *first_lease;
  }
  EXPECT_GE(got[1].received_at, lease);
}

TEST_F(DispatcherTest, TwoDispatchersShareTheQueueWithoutDuplicates) {
  HttpReceiver receiver;
  std::vector<std::string> ids;
  const std::string event = AddEvent();
  for (int i = 0; i < 40; ++i) {
    const Webhook w = AddWebhook(Spec(receiver.Url("/")));
    ids.push_back(AddDelivery(event, w.id, 0, std::nullopt, false));
  }
  DispatcherOptions o = FastOptions();
  o.claim_batch = 5;
  o.database_url = db_->conninfo();
  auto second = Dispatcher::Start(o);
  ASSERT_TRUE(second.ok()) << second.status();
  StartDispatcher(o);
  for (const std::string& id : ids) EXPECT_EQ(WaitDone(id).state, "succeeded");
  (*second)->Stop();
  EXPECT_EQ(Scalar("SELECT count(*) FROM delivery_attempts"), "40");
  EXPECT_EQ(receiver.Requests().size(), 40u);
}

}  // namespace
}  // namespace octo::delivery

// --

namespace octo::delivery {
namespace {

// Production SSRF policy: the receiver on loopback is refused at connect
// time, recorded as `blocked` (not `connect`), and sees nothing.
TEST_F(DispatcherTest, TheSsrfGuardRecordsBlockedAndSendsNothing) {
  HttpReceiver receiver;
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  DispatcherOptions o = FastOptions();
  o.destination_policy = DestinationPolicy();  // production
  StartDispatcher(o);
  const DeliveryRow d = WaitDone(id);
  EXPECT_EQ(d.state, "failed");
  EXPECT_EQ(d.last_error_class, "blocked");
  const std::vector<AttemptRow> a = Attempts(id);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].error_class, "blocked");
  EXPECT_EQ(a[0].http_status, std::nullopt);
  EXPECT_EQ(receiver.Connections(), 0);
}

TEST_F(DispatcherTest, AWebhookFailingLongerThanTheLimitIsDisabled) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Reply(500, "down"); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string first = AddDelivery(AddEvent(), w.id);
  const std::string later = AddDelivery(AddEvent(), w.id, /*next_attempt_in_ms=*/3'600'000);
  DispatcherOptions o = FastOptions();
  o.retry_schedule = std::vector<milliseconds>(20, milliseconds(100));
  o.disable_after_failing_for = milliseconds(400);
  StartDispatcher(o);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = '", w.id, "'")) != "disabled" &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = '", w.id, "'")), "disabled");
  EXPECT_THAT(Scalar(absl::StrCat("SELECT disabled_reason FROM webhooks WHERE id = '", w.id, "'")),
              ::testing::MatchesRegex("failing since 20[0-9-]+T[0-9:]+Z: last attempt HTTP 500"));
  EXPECT_EQ(Scalar(absl::StrCat("SELECT disabled_at - failing_since >= interval '400 milliseconds' FROM webhooks "
                                "WHERE id = '", w.id, "'")),
            "t");
  // More than one attempt (the first did not disable it), fewer than the schedule allows.
  const std::size_t attempts = Attempts(first).size();
  EXPECT_GE(attempts, 3u);
  EXPECT_LT(attempts, 15u);
  EXPECT_EQ(Delivery(later).state, "cancelled");
  EXPECT_EQ(WaitDone(first).state, "cancelled");  // its own retries stop too
}

TEST_F(DispatcherTest, ASuccessClearsFailingSince) {
  HttpReceiver receiver;
  std::atomic<int> calls{0};
  receiver.SetHandler([&](const ReceivedRequest&) { return Reply(++calls == 1 ? 503 : 200); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  const std::string id = AddDelivery(AddEvent(), w.id);
  DispatcherOptions o = FastOptions();
  o.retry_schedule = {milliseconds(300)};
  StartDispatcher(o);
  ASSERT_EQ(WaitAttempts(id, 1).size(), 1u);
  // Written with the first attempt, before the retry.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  std::string since;
  while ((since = Scalar(absl::StrCat("SELECT failing_since IS NOT NULL FROM webhooks WHERE id = '", w.id, "'"))) !=
             "t" &&
         Delivery(id).state == "pending" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(since, "t");
  EXPECT_EQ(WaitDone(id).state, "succeeded");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT failing_since IS NULL FROM webhooks WHERE id = '", w.id, "'")), "t");
  EXPECT_EQ(Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = '", w.id, "'")), "enabled");
}

// Over its limits a delivery is released without an attempt and comes back.
TEST_F(DispatcherTest, PerEndpointLimitsDeferWithoutCountingAttempts) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Milliseconds(200)); });
  const Webhook w = AddWebhook(Spec(receiver.Url("/")));
  Exec(absl::StrCat("UPDATE webhooks SET max_concurrency = 1, rate_limit_per_second = 20 WHERE id = '", w.id, "'"));
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(AddDelivery(AddEvent(), w.id));
  StartDispatcher();
  for (const std::string& id : ids) {
    const DeliveryRow d = WaitDone(id);
    EXPECT_EQ(d.state, "succeeded") << id;
    EXPECT_EQ(d.attempt_count, 1) << id;  // deferrals are not attempts
  }
  EXPECT_EQ(receiver.MaxConcurrent(), 1);
  EXPECT_EQ(receiver.Requests().size(), 5u);
}

}  // namespace
}  // namespace octo::delivery

namespace octo::delivery {
namespace {

// Ten webhooks on one receiver whose listen queue is small (5, as Python's
// http.server), three events published one after another right after the
// webhooks were created: every delivery of every burst arrives well within
// a second, the first burst included. Opening a connection per delivery of
// the first burst at once overflowed the receiver's listen queue; the
// dropped SYNs were retransmitted after Linux's 1 s initial RTO.
// This network namespace's count of connections a full listen queue
// refused (TcpExt ListenOverflows in /proc/net/netstat).
std::optional<long> ListenOverflows() {
  std::ifstream in("/proc/net/netstat");
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind("TcpExt:", 0) != 0) continue;
    std::istringstream n(names), v(values);
    std::string name, value;
    while (n >> name && v >> value) {
      if (name == "ListenOverflows") return std::stol(value);
    }
  }
  return std::nullopt;
}

TEST_F(DispatcherTest, TheFirstBurstToANewDestinationIsNotStalled) {
  HttpReceiver receiver(/*listen_backlog=*/5);
  std::vector<Webhook> hooks;
  for (int i = 0; i < 10; ++i) hooks.push_back(AddWebhook(Spec(receiver.Url("/"))));
  DispatcherOptions o = FastOptions();
  o.poll_interval = milliseconds(60'000);  // only NOTIFY wakes it
  o.max_per_host = 64;
  o.connect_timeout = milliseconds(5000);  // the defaults: a dropped SYN is retransmitted, not given up
  o.request_timeout = milliseconds(5000);
  StartDispatcher(o);
  ASSERT_TRUE(WaitListening());
  const std::optional<long> overflows_before = ListenOverflows();
  ASSERT_TRUE(overflows_before.has_value()) << "TcpExt ListenOverflows not found in /proc/net/netstat";
  std::vector<absl::Time> published;
  std::vector<std::vector<std::string>> ids(3);
  for (int burst = 0; burst < 3; ++burst) {
    const std::string event = AddEvent();
    pqxx::work txn(*conn_);
    for (const Webhook& w : hooks) {
      ids[burst].push_back(
          txn.exec_params1("INSERT INTO deliveries (event_id, webhook_id) VALUES ($1::uuid, $2::uuid) RETURNING id::text",
                           event, w.id)[0]
              .as<std::string>());
    }
    txn.exec("NOTIFY octo_deliveries");
    txn.commit();
    published.push_back(absl::Now());
  }
  ASSERT_TRUE(receiver.WaitForRequests(30, absl::Seconds(10)));
  std::set<std::string> arrived;
  for (const ReceivedRequest& r : receiver.Requests()) arrived.insert(r.Header("webhook-id").value_or(""));
  for (int burst = 0; burst < 3; ++burst) {
    for (const std::string& id : ids[burst]) ASSERT_TRUE(arrived.count(WebhookMessageId(id))) << id;
  }
  // The stall was the kernel dropping SYNs of a burst that overflowed the
  // receiver's listen queue (each retransmitted a second later): behaviour,
  // not a latency, is what is checked. Before the cold-start rule the 30
  // connections of the burst overflowed this queue of 5 by about 25; with it,
  // about 1 run in 10 on a loaded machine still sees up to 2 overflows (the
  // counter is system-wide, and warm-up opens 12 connections in all), so the
  // bound is below what an unpaced burst causes, not 0.
  EXPECT_LE(*ListenOverflows() - *overflows_before, 2) << "connections " << receiver.Connections();
}

}  // namespace
}  // namespace octo::delivery
