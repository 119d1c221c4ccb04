// The delivery operations over real HTTP, end to end: the REST
// extension routes of octo-gateway -> SubscriptionService -> octo-delivery's
// DeliveryOperationsService -> PostgreSQL, with real deliveries to a real
// receiver: the attempt log, redelivery, replay, the test ping, secret
// rotation, endpoint health (a real 410 disables) and re-enabling, tenant
// isolation and bad input on every route and RPC.
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tests/delivery_e2e/delivery_fixture.h"
#include "tests/support/http_client.h"

namespace octo::delivery_e2e {
namespace {

namespace json = boost::json;
namespace pb = ::octo::webhooks::v1;
using testing::Reply;

constexpr const char* kBooking =
    R"({"id":"bk-ops","uuid":"{uuid}","status":"CONFIRMED","contact":{"fullName":"Ada","locales":["en"]}})";

// An HTTP answer with its body parsed (null when not JSON).
struct Answer {
  int status = 0;
  std::string body;
  json::value json;
};

class OperationsE2eTest : public DeliveryTest {
 protected:
  // 3 attempts, 200/300 ms apart: a failing delivery fails within a second.
  static void SetUpTestSuite() {
    StartStack({.retry_schedule = "200ms,300ms",
                .request_timeout = "1s",
                .connect_timeout = "500ms",
                .lease_margin = "1s",
                .poll_interval = "100ms",
                .min_retry_after = "1s",
                .max_retry_after = "2500ms",
                .extra_args = {}});
  }
  static void TearDownTestSuite() { StopStack(); }

  // `path` below /octo/ext/webhooks/<id>.
  static std::string Ext(const std::string& webhook_id, const std::string& path) {
    return absl::StrCat("/octo/ext/webhooks/", webhook_id, path);
  }

  Answer Call(const e2e::Tenant& tenant, const std::string& method, const std::string& target,
              std::optional<std::string> body = std::nullopt, bool json_type = true) {
    testing::HttpClient http(stack_->gateway_port());
    testing::HttpRequest request{.method = method, .target = target, .headers = {}, .body = body};
    request.headers.push_back({"Authorization", absl::StrCat("Bearer ", tenant.api_key)});
    if (body && json_type) request.headers.push_back({"Content-Type", "application/json"});
    absl::StatusOr<testing::HttpResponse> r = http.Send(request);
    Answer a;
    if (!r.ok()) {
      ADD_FAILURE() << method << " " << target << ": " << r.status();
      return a;
    }
    a.status = r->status;
    a.body = r->body;
    boost::system::error_code ec;
    a.json = json::parse(r->body, ec);
    if (ec) a.json = nullptr;
    return a;
  }
  Answer Call(const std::string& method, const std::string& target,
              std::optional<std::string> body = std::nullopt) {
    return Call(tenant_, method, target, std::move(body));
  }

  void PublishBookings(int n) {
    for (int i = 0; i < n; ++i) {
      MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("ops")));
    }
  }

  // "state attempt_count" of each delivery of the webhook, oldest first.
  std::vector<std::string> States(const CreatedWebhook& hook) {
    std::vector<std::string> out;
    for (const auto& row : db().Rows(absl::StrCat("SELECT state || ' ' || attempt_count FROM deliveries "
                                                  "WHERE webhook_id = ",
                                                  SqlQuote(hook.id), " ORDER BY created_at, id"))) {
      out.push_back(row[0]);
    }
    return out;
  }
  ::testing::AssertionResult AllReach(const CreatedWebhook& hook, std::size_t n, const std::string& state,
                                      std::chrono::milliseconds timeout = 20s) {
    std::vector<std::string> last;
    if (Eventually(
            [&] {
              last = States(hook);
              if (last.size() != n) return false;
              for (const std::string& s : last) {
                if (!absl::StartsWith(s, state + " ")) return false;
              }
              return true;
            },
            timeout, 50ms)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "deliveries of " << hook.id << ": " << absl::StrJoin(last, ", ")
                                         << "; expected " << n << " " << state << "\n"
                                         << stack_->LogTails();
  }

  // A snapshot of what the operations could change, to check that a refused
  // request changed nothing.
  std::string Snapshot(const CreatedWebhook& hook) {
    return db().Scalar(absl::StrCat(
        "SELECT w.secret || '|' || coalesce(w.previous_secret, '-') || '|' || w.status || '|' || "
        "(SELECT coalesce(string_agg(d.id::text || ':' || d.state || ':' || d.attempt_count || ':' || "
        "d.next_attempt_at::text, ',' ORDER BY d.id), '') FROM deliveries d WHERE d.webhook_id = w.id) || '|' || "
        "(SELECT count(*) FROM events e WHERE e.connection_id = w.connection_id) "
        "FROM webhooks w WHERE w.id = ",
        SqlQuote(hook.id)));
  }

  std::unique_ptr<pb::SubscriptionService::Stub> Grpc() {
    return pb::SubscriptionService::NewStub(stack_->base().callers().Channel(
        absl::StrCat("127.0.0.1:", stack_->base().subscription_port()), "admin"));
  }
};

std::string Str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return "<not an object>";
  const json::value* m = v.as_object().if_contains(key);
  if (m == nullptr) return "<absent>";
  if (m->is_string()) return std::string(m->as_string());
  return json::serialize(*m);
}

// ------------------------------------------------------------ attempt log --

TEST_F(OperationsE2eTest, AttemptLogListsNewestFirstPagesAndFilters) {
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/log"));
  PublishBookings(3);
  ASSERT_TRUE(AllReach(hook, 3, "succeeded"));
  const std::vector<std::vector<std::string>> newest_first = db().Rows(absl::StrCat(
      "SELECT id::text FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id), " ORDER BY created_at DESC, id DESC"));

  Answer all = Call("GET", Ext(hook.id, "/deliveries"));
  ASSERT_EQ(all.status, 200) << all.body;
  const json::array& items = all.json.at("deliveries").as_array();
  ASSERT_EQ(items.size(), 3u) << all.body;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(Str(items[i], "id"), newest_first[i][0]);
    EXPECT_EQ(Str(items[i], "status"), "succeeded");
    EXPECT_EQ(Str(items[i], "event"), "booking_update");
    EXPECT_EQ(Str(items[i], "attemptCount"), "1");
    EXPECT_EQ(Str(items[i], "lastHttpStatus"), "200");
    EXPECT_EQ(Str(items[i], "webhookMessageId"),
              absl::StrCat("msg_", absl::StrReplaceAll(newest_first[i][0], {{"-", ""}})));
    EXPECT_FALSE(items[i].as_object().contains("attempts"));
  }
  EXPECT_TRUE(all.json.at("nextCursor").is_null());

  // Pages of two, then one, following the cursor.
  Answer first = Call("GET", Ext(hook.id, "/deliveries?limit=2"));
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(first.json.at("deliveries").as_array().size(), 2u);
  const std::string cursor = Str(first.json, "nextCursor");
  ASSERT_NE(cursor, "null");
  Answer second = Call("GET", Ext(hook.id, absl::StrCat("/deliveries?limit=2&cursor=", cursor)));
  ASSERT_EQ(second.status, 200) << second.body;
  ASSERT_EQ(second.json.at("deliveries").as_array().size(), 1u);
  EXPECT_EQ(Str(second.json.at("deliveries").as_array()[0], "id"), newest_first[2][0]);
  EXPECT_TRUE(second.json.at("nextCursor").is_null());

  // Filters.
  EXPECT_EQ(Call("GET", Ext(hook.id, "/deliveries?status=succeeded")).json.at("deliveries").as_array().size(), 3u);
  EXPECT_EQ(Call("GET", Ext(hook.id, "/deliveries?status=failed")).json.at("deliveries").as_array().size(), 0u);
  EXPECT_EQ(Call("GET", Ext(hook.id, "/deliveries?event=booking_update")).json.at("deliveries").as_array().size(),
            3u);
  EXPECT_EQ(Call("GET", Ext(hook.id, "/deliveries?event=webhook_test")).json.at("deliveries").as_array().size(), 0u);

  // One delivery with its attempt.
  Answer one = Call("GET", Ext(hook.id, absl::StrCat("/deliveries/", newest_first[0][0])));
  ASSERT_EQ(one.status, 200) << one.body;
  const json::array& attempts = one.json.at("attempts").as_array();
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(Str(attempts[0], "attemptNumber"), "1");
  EXPECT_EQ(Str(attempts[0], "httpStatus"), "200");
  EXPECT_EQ(Str(attempts[0], "errorClass"), "null");
  EXPECT_TRUE(attempts[0].at("durationMs").is_number());
  EXPECT_FALSE(Str(attempts[0], "startedAt").empty());
}

TEST_F(OperationsE2eTest, FailedDeliveryShowsEveryAttempt) {
  receiver_->SetDefaultAnswer(Reply(500).Body("boom"));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/fail"));
  PublishBookings(1);
  ASSERT_TRUE(AllReach(hook, 1, "failed"));
  const std::string id = db().Scalar(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = ",
                                                  SqlQuote(hook.id)));
  Answer one = Call("GET", Ext(hook.id, absl::StrCat("/deliveries/", id)));
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(Str(one.json, "status"), "failed");
  EXPECT_EQ(Str(one.json, "attemptCount"), "3");
  EXPECT_FALSE(Str(one.json, "completedAt").empty());
  EXPECT_EQ(Str(one.json, "nextAttemptAt"), "<absent>");
  const json::array& attempts = one.json.at("attempts").as_array();
  ASSERT_EQ(attempts.size(), 3u);
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    EXPECT_EQ(Str(attempts[i], "attemptNumber"), std::to_string(i + 1));
    EXPECT_EQ(Str(attempts[i], "httpStatus"), "500");
    EXPECT_EQ(Str(attempts[i], "responseSnippet"), "boom");
  }
  Answer failed = Call("GET", Ext(hook.id, "/deliveries?status=failed"));
  EXPECT_EQ(failed.json.at("deliveries").as_array().size(), 1u);
}

// ------------------------------------------------------------- redeliver --

TEST_F(OperationsE2eTest, RedeliverSendsTheSameDeliveryAgainAndIsSafeTwice) {
  receiver_->SetDefaultAnswer(Reply(503));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/redeliver"));
  PublishBookings(1);
  ASSERT_TRUE(AllReach(hook, 1, "failed"));
  ASSERT_TRUE(receiver_->WaitFor("/redeliver", 3, 5s));
  const ReceivedRequest original = receiver_->Requests("/redeliver").front();
  const std::string id = db().Scalar(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = ",
                                                  SqlQuote(hook.id)));

  receiver_->SetDefaultAnswer(Reply(200));
  Answer r1 = Call("POST", Ext(hook.id, absl::StrCat("/deliveries/", id, "/redeliver")));
  ASSERT_EQ(r1.status, 200) << r1.body;
  EXPECT_EQ(Str(r1.json, "status"), "pending");
  EXPECT_EQ(Str(r1.json, "id"), id);
  Answer r2 = Call("POST", Ext(hook.id, absl::StrCat("/deliveries/", id, "/redeliver")), "{}");
  ASSERT_EQ(r2.status, 200) << r2.body;

  ASSERT_TRUE(AllReach(hook, 1, "succeeded"));  // still one delivery row
  ASSERT_TRUE(receiver_->WaitFor("/redeliver", 4, 5s));
  const std::vector<ReceivedRequest> got = receiver_->Requests("/redeliver");
  const ReceivedRequest& again = got.back();
  EXPECT_EQ(WebhookId(again), WebhookId(original));
  EXPECT_EQ(again.body, original.body);
  EXPECT_TRUE(SignatureVerifies(again, hook.secret));
  const int attempts = std::stoi(db().Scalar(
      absl::StrCat("SELECT count(*) FROM delivery_attempts WHERE delivery_id = ", SqlQuote(id))));
  // 3 failed + 1 (both calls while pending) or 2 (the second after the first finished).
  EXPECT_GE(attempts, 4);
  EXPECT_LE(attempts, 5);
  EXPECT_EQ(static_cast<std::size_t>(attempts), got.size());
}

// ---------------------------------------------------------------- replay --

TEST_F(OperationsE2eTest, ReplayIsBoundedAndIdempotent) {
  receiver_->SetDefaultAnswer(Reply(500));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/replay"));
  const std::string before = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now() - absl::Seconds(5),
                                              absl::UTCTimeZone());
  PublishBookings(3);
  ASSERT_TRUE(AllReach(hook, 3, "failed"));

  // A `since` after them all queues nothing.
  const std::string later = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now() + absl::Hours(1),
                                             absl::UTCTimeZone());
  Answer none = Call("POST", Ext(hook.id, "/replay"), absl::StrCat(R"({"since":")", later, R"("})"));
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(none.body, R"({"queued":0,"more":false})");

  // Now they succeed; the first replay takes two of three (oldest first).
  receiver_->SetDefaultAnswer(Reply(200));
  Answer first = Call("POST", Ext(hook.id, "/replay"), absl::StrCat(R"({"since":")", before, R"(","limit":2})"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.body, R"({"queued":2,"more":true})");
  // Called again at once: the two are pending or succeeded, not counted again.
  Answer second = Call("POST", Ext(hook.id, "/replay"), absl::StrCat(R"({"since":")", before, R"(","limit":2})"));
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.body, R"({"queued":1,"more":false})");
  Answer third = Call("POST", Ext(hook.id, "/replay"), absl::StrCat(R"({"since":")", before, R"("})"));
  EXPECT_EQ(third.body, R"({"queued":0,"more":false})");

  ASSERT_TRUE(AllReach(hook, 3, "succeeded"));
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id))), "3");
  // Each replayed delivery kept its webhook-id: 3 distinct ids over 12 requests.
  ASSERT_TRUE(receiver_->WaitFor("/replay", 12, 5s));
  std::set<std::string> ids;
  for (const ReceivedRequest& r : receiver_->Requests("/replay")) ids.insert(WebhookId(r));
  EXPECT_EQ(ids.size(), 3u);
}

// ------------------------------------------------------------------ ping --

TEST_F(OperationsE2eTest, TestPingArrivesSignedAndIsRecorded) {
  const CreatedWebhook hook = Hook("order_update", receiver_->Url("/ping"));
  Answer ping = Call("POST", Ext(hook.id, "/test"));
  ASSERT_EQ(ping.status, 200) << ping.body;
  const std::string delivery_id = Str(ping.json, "id");
  EXPECT_EQ(Str(ping.json, "event"), "webhook_test");
  EXPECT_EQ(Str(ping.json, "status"), "pending");

  const ReceivedRequest got = OnlyRequest("/ping");
  EXPECT_TRUE(HasDeliveryHeaders(got, hook)) << Describe(got);
  EXPECT_EQ(WebhookId(got), absl::StrCat("msg_", absl::StrReplaceAll(delivery_id, {{"-", ""}})));
  absl::StatusOr<NodeResult> node = VerifyWithNode(got, hook.secret);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->exit_code, 0) << node->output;

  boost::system::error_code ec;
  const json::value body = json::parse(got.body, ec);
  ASSERT_FALSE(ec) << got.body;
  EXPECT_EQ(Str(body.at("webhook"), "id"), hook.id);
  EXPECT_EQ(Str(body.at("order"), "test"), "true");
  EXPECT_EQ(Str(body, "diff"), "[]");
  EXPECT_TRUE(body.as_object().contains("supplier"));

  ASSERT_TRUE(AllReach(hook, 1, "succeeded"));
  Answer log = Call("GET", Ext(hook.id, "/deliveries?event=webhook_test"));
  ASSERT_EQ(log.json.at("deliveries").as_array().size(), 1u) << log.body;
  EXPECT_EQ(Str(log.json.at("deliveries").as_array()[0], "id"), delivery_id);
}

// -------------------------------------------------------------- rotation --

TEST_F(OperationsE2eTest, RotationReturnsTheNewSecretOnceAndKeepsThePreviousOne) {
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/rotate"));
  Answer rotated = Call("POST", Ext(hook.id, "/rotate-secret"));
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  const std::string secret = Str(rotated.json, "secret");
  EXPECT_TRUE(absl::StartsWith(secret, "whsec_")) << secret;
  EXPECT_NE(secret, hook.secret);
  EXPECT_EQ(Str(rotated.json, "id"), hook.id);
  EXPECT_NE(Str(rotated.json, "previousSecretExpiresAt"), "<absent>");

  // Stored: the new secret, the old one as previous for 24 h.
  auto row = db().Rows(absl::StrCat(
      "SELECT secret, previous_secret, round(extract(epoch FROM previous_secret_expires_at - now()))::text "
      "FROM webhooks WHERE id = ", SqlQuote(hook.id)));
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0], secret);
  EXPECT_EQ(row[0][1], hook.secret);
  EXPECT_NEAR(std::stod(row[0][2]), 86400, 60);

  // Never shown again.
  Answer get = Call("GET", absl::StrCat("/octo/webhooks/", hook.id));
  EXPECT_EQ(Str(get.json, "secret"), "<absent>");
  EXPECT_EQ(get.body.find(secret), std::string::npos);
  Answer list = Call("GET", "/octo/webhooks");
  EXPECT_EQ(list.body.find(secret), std::string::npos);

  // Rotating again during the grace period: the secret just replaced is
  // the previous one now; a shorter grace as asked.
  Answer again = Call("POST", Ext(hook.id, "/rotate-secret"), R"({"gracePeriodSeconds":60})");
  ASSERT_EQ(again.status, 200) << again.body;
  row = db().Rows(absl::StrCat(
      "SELECT secret, previous_secret, round(extract(epoch FROM previous_secret_expires_at - now()))::text "
      "FROM webhooks WHERE id = ", SqlQuote(hook.id)));
  EXPECT_EQ(row[0][0], Str(again.json, "secret"));
  EXPECT_EQ(row[0][1], secret);
  EXPECT_NEAR(std::stod(row[0][2]), 60, 5);

  // No grace: no previous secret at all.
  Answer none = Call("POST", Ext(hook.id, "/rotate-secret"), R"({"gracePeriodSeconds":0})");
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT coalesce(previous_secret, '<none>') FROM webhooks WHERE id = ",
                                     SqlQuote(hook.id))),
            "<none>");
  EXPECT_EQ(Str(none.json, "previousSecretExpiresAt"), "<absent>");

  // Deliveries are signed with the newest secret.
  Answer ping = Call("POST", Ext(hook.id, "/test"));
  ASSERT_EQ(ping.status, 200) << ping.body;
  const ReceivedRequest got = OnlyRequest("/rotate");
  EXPECT_TRUE(SignatureVerifies(got, Str(none.json, "secret"))) << Describe(got);
}

// ---------------------------------------------------------------- health --

TEST_F(OperationsE2eTest, GoneDisablesAndEnableClearsIt) {
  receiver_->SetDefaultAnswer(Reply(410));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/gone"));
  PublishBookings(1);
  ASSERT_TRUE(Eventually(
      [&] { return db().Scalar(absl::StrCat("SELECT status FROM webhooks WHERE id = ", SqlQuote(hook.id))) ==
                   "disabled"; },
      15s, 50ms))
      << stack_->LogTails();

  Answer get = Call("GET", absl::StrCat("/octo/webhooks/", hook.id));
  ASSERT_EQ(get.status, 200) << get.body;
  EXPECT_EQ(Str(get.json, "status"), "disabled");
  EXPECT_NE(Str(get.json, "disabledReason"), "<absent>");
  EXPECT_NE(Str(get.json, "disabledAt"), "<absent>");
  Answer list = Call("GET", "/octo/webhooks");
  ASSERT_EQ(list.json.as_array().size(), 1u);
  EXPECT_EQ(Str(list.json.as_array()[0], "status"), "disabled");

  // The operations that would send refuse while disabled, and change nothing.
  const std::string delivery_id =
      db().Scalar(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id)));
  const std::string snapshot = Snapshot(hook);
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::optional<std::string>>>{
           {"/test", std::nullopt},
           {absl::StrCat("/deliveries/", delivery_id, "/redeliver"), std::nullopt},
           {"/replay", R"({"since":"2020-01-01T00:00:00Z"})"}}) {
    Answer refused = Call("POST", Ext(hook.id, path), body);
    EXPECT_EQ(refused.status, 422) << path << " " << refused.body;
    EXPECT_EQ(Str(refused.json, "error"), "UNPROCESSABLE_ENTITY") << refused.body;
    EXPECT_TRUE(absl::StrContains(Str(refused.json, "errorMessage"), "disabled")) << refused.body;
  }
  EXPECT_EQ(Snapshot(hook), snapshot);

  // Some failure history, to see enable clear it too.
  db().Scalar(absl::StrCat("UPDATE webhooks SET failing_since = now() - interval '1 day' WHERE id = ",
                           SqlQuote(hook.id), " RETURNING 1"));
  Answer enabled = Call("POST", Ext(hook.id, "/enable"));
  ASSERT_EQ(enabled.status, 200) << enabled.body;
  EXPECT_EQ(Str(enabled.json, "status"), "enabled");
  EXPECT_EQ(Str(enabled.json, "disabledReason"), "<absent>");
  EXPECT_EQ(Str(enabled.json, "disabledAt"), "<absent>");
  EXPECT_EQ(Str(enabled.json, "failingSince"), "<absent>");
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT status || ' ' || coalesce(disabled_reason, '-') || ' ' || "
                                     "coalesce(disabled_at::text, '-') || ' ' || coalesce(failing_since::text, '-') "
                                     "FROM webhooks WHERE id = ",
                                     SqlQuote(hook.id))),
            "enabled - - -");
  // Idempotent.
  EXPECT_EQ(Call("POST", Ext(hook.id, "/enable"), "{}").status, 200);

  // Delivering again works.
  receiver_->SetDefaultAnswer(Reply(200));
  Answer ping = Call("POST", Ext(hook.id, "/test"));
  ASSERT_EQ(ping.status, 200) << ping.body;
  ASSERT_TRUE(Eventually(
      [&] {
        return db().Scalar(absl::StrCat("SELECT state FROM deliveries WHERE id = ", SqlQuote(Str(ping.json, "id")))) ==
               "succeeded";
      },
      15s, 50ms));
}

// ------------------------------------------------------- endpoint limits --

TEST_F(OperationsE2eTest, PerEndpointLimitsAreSetShownChangedAndRemoved) {
  const CreatedWebhook hook =
      Hook("booking_update", receiver_->Url("/limits"), R"("rateLimitPerSecond":2.5,"maxConcurrency":3)");
  const auto stored = [&] {
    return db().Scalar(absl::StrCat("SELECT coalesce(rate_limit_per_second::text, '-') || ' ' || "
                                    "coalesce(max_concurrency::text, '-') FROM webhooks WHERE id = ",
                                    SqlQuote(hook.id)));
  };
  EXPECT_EQ(stored(), "2.5 3");
  Answer get = Call("GET", absl::StrCat("/octo/webhooks/", hook.id));
  EXPECT_EQ(Str(get.json, "rateLimitPerSecond"), "2.5E0");
  EXPECT_EQ(Str(get.json, "maxConcurrency"), "3");

  Answer patched = Call("PATCH", absl::StrCat("/octo/webhooks/", hook.id), R"({"maxConcurrency":10})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(stored(), "2.5 10");
  patched = Call("PATCH", absl::StrCat("/octo/webhooks/", hook.id), R"({"rateLimitPerSecond":0})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(stored(), "- 10");
  EXPECT_EQ(Str(patched.json, "rateLimitPerSecond"), "<absent>");

  // Bad values: 400 naming the field, nothing changed.
  for (const char* body : {R"({"rateLimitPerSecond":-1})", R"({"rateLimitPerSecond":100001})",
                           R"({"rateLimitPerSecond":0.0001})",
                           R"({"rateLimitPerSecond":"5"})", R"({"rateLimitPerSecond":null})",
                           R"({"maxConcurrency":10001})", R"({"maxConcurrency":-1})", R"({"maxConcurrency":1.5})",
                           R"({"maxConcurrency":99999999999})"}) {
    Answer bad = Call("PATCH", absl::StrCat("/octo/webhooks/", hook.id), body);
    EXPECT_EQ(bad.status, 400) << body << " -> " << bad.body;
    EXPECT_EQ(Str(bad.json, "error"), "BAD_REQUEST") << bad.body;
  }
  Answer bad_create = Call("POST", "/octo/webhooks",
                           absl::StrCat(R"({"event":"booking_update","url":")", receiver_->Url("/x"),
                                        R"(","maxConcurrency":20000})"));
  EXPECT_EQ(bad_create.status, 400) << bad_create.body;
  EXPECT_TRUE(absl::StartsWith(Str(bad_create.json, "errorMessage"), "maxConcurrency")) << bad_create.body;
  EXPECT_EQ(stored(), "- 10");
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT count(*) FROM webhooks WHERE connection_id = ",
                                     SqlQuote(tenant_.connection_id))),
            "1");
}

// ----------------------------------------------------- tenant isolation --

TEST_F(OperationsE2eTest, AnotherConnectionSeesNothingAndChangesNothing) {
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/mine"));
  PublishBookings(1);
  ASSERT_TRUE(AllReach(hook, 1, "succeeded"));
  const std::string delivery_id =
      db().Scalar(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id)));
  absl::StatusOr<e2e::Tenant> other = stack_->NewConnection(tenant_);
  ASSERT_TRUE(other.ok()) << other.status();
  const CreatedWebhook theirs = HookFor(*other, "booking_update", receiver_->Url("/theirs"));
  const std::string snapshot = Snapshot(hook);
  const std::string unknown = NewUuid();

  struct Route {
    std::string method;
    std::string path;  // {id}: the webhook id
    std::optional<std::string> body;
  };
  const std::vector<Route> routes = {
      {"GET", "/deliveries", std::nullopt},
      {"GET", absl::StrCat("/deliveries/", delivery_id), std::nullopt},
      {"POST", absl::StrCat("/deliveries/", delivery_id, "/redeliver"), std::nullopt},
      {"POST", "/replay", R"({"since":"2020-01-01T00:00:00Z"})"},
      {"POST", "/test", std::nullopt},
      {"POST", "/rotate-secret", std::nullopt},
      {"POST", "/enable", std::nullopt},
  };
  for (const Route& r : routes) {
    // My webhook through the other key answers exactly like an unknown id.
    Answer foreign = Call(*other, r.method, Ext(hook.id, r.path), r.body);
    Answer missing = Call(*other, r.method, Ext(unknown, r.path), r.body);
    EXPECT_EQ(foreign.status, 400) << r.path << " " << foreign.body;
    EXPECT_EQ(Str(foreign.json, "error"), "INVALID_WEBHOOK_ID") << foreign.body;
    EXPECT_EQ(absl::StrReplaceAll(foreign.body, {{hook.id, "ID"}}), absl::StrReplaceAll(missing.body, {{unknown, "ID"}}))
        << r.path;
  }
  // My delivery under their own webhook: INVALID_DELIVERY_ID, like an unknown one.
  for (const std::string& suffix : {std::string(""), std::string("/redeliver")}) {
    const std::string method = suffix.empty() ? "GET" : "POST";
    Answer foreign = Call(*other, method, Ext(theirs.id, absl::StrCat("/deliveries/", delivery_id, suffix)));
    Answer missing = Call(*other, method, Ext(theirs.id, absl::StrCat("/deliveries/", unknown, suffix)));
    EXPECT_EQ(foreign.status, 400) << foreign.body;
    EXPECT_EQ(Str(foreign.json, "error"), "INVALID_DELIVERY_ID") << foreign.body;
    EXPECT_EQ(absl::StrReplaceAll(foreign.body, {{delivery_id, "ID"}}),
              absl::StrReplaceAll(missing.body, {{unknown, "ID"}}));
  }
  EXPECT_EQ(Snapshot(hook), snapshot);
  EXPECT_EQ(Call(*other, "GET", Ext(theirs.id, "/deliveries")).json.at("deliveries").as_array().size(), 0u);
}

// ------------------------------------------------------------- bad input --

TEST_F(OperationsE2eTest, BadInputOnEveryRouteIsAnOctoErrorAndChangesNothing) {
  receiver_->SetDefaultAnswer(Reply(500));
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/bad"));
  PublishBookings(1);
  ASSERT_TRUE(AllReach(hook, 1, "failed"));
  const std::string delivery_id =
      db().Scalar(absl::StrCat("SELECT id::text FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id)));
  const std::string snapshot = Snapshot(hook);
  const std::string d = absl::StrCat("/deliveries/", delivery_id);

  struct Bad {
    std::string method;
    std::string target;
    std::optional<std::string> body;
    int status;
    std::string error;
  };
  const std::string w = Ext(hook.id, "");
  const std::vector<Bad> cases = {
      {"GET", Ext("not-a-uuid", "/deliveries"), std::nullopt, 400, "INVALID_WEBHOOK_ID"},
      {"GET", w + "/deliveries?status=done", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?event=booking", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?limit=0", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?limit=101", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?limit=-1", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?limit=1x", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?cursor=garbage", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?cursor=", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?sort=asc", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?limit=1&limit=2", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries?status=%zz", std::nullopt, 400, "BAD_REQUEST"},
      {"GET", w + "/deliveries/not-a-uuid", std::nullopt, 400, "INVALID_DELIVERY_ID"},
      {"GET", w + d + "?x=1", std::nullopt, 400, "BAD_REQUEST"},
      {"POST", w + "/deliveries/nope/redeliver", std::nullopt, 400, "INVALID_DELIVERY_ID"},
      {"POST", w + d + "/redeliver", R"({"now":true})", 400, "BAD_REQUEST"},
      {"POST", w + d + "/redeliver", "[]", 400, "BAD_REQUEST"},
      {"POST", w + d + "/redeliver", "{", 400, "BAD_REQUEST"},
      {"GET", w + d + "/redeliver", std::nullopt, 405, "BAD_REQUEST"},
      {"POST", w + "/replay", std::nullopt, 415, "BAD_REQUEST"},
      {"POST", w + "/replay", "{}", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":"yesterday"})", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":"2026-13-01T00:00:00Z"})", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":null})", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":1700000000})", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":"2020-01-01T00:00:00Z","limit":0})", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":"2020-01-01T00:00:00Z","limit":1001})", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":"2020-01-01T00:00:00Z","limit":2.5})", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":"2020-01-01T00:00:00Z","limit":"5"})", 400, "BAD_REQUEST"},
      {"POST", w + "/replay", R"({"since":"2020-01-01T00:00:00Z","extra":1})", 400, "BAD_REQUEST"},
      {"POST", w + "/test", R"({"event":"booking_update"})", 400, "BAD_REQUEST"},
      {"POST", w + "/test?x", std::nullopt, 400, "BAD_REQUEST"},
      {"POST", w + "/rotate-secret", R"({"gracePeriodSeconds":-1})", 400, "BAD_REQUEST"},
      {"POST", w + "/rotate-secret", R"({"gracePeriodSeconds":604801})", 400, "BAD_REQUEST"},
      {"POST", w + "/rotate-secret", R"({"gracePeriodSeconds":"60"})", 400, "BAD_REQUEST"},
      {"POST", w + "/rotate-secret", R"({"gracePeriodSeconds":1e99})", 400, "BAD_REQUEST"},
      {"POST", w + "/rotate-secret", R"({"secret":"whsec_x"})", 400, "BAD_REQUEST"},
      {"POST", w + "/enable", R"({"status":"enabled"})", 400, "BAD_REQUEST"},
      {"DELETE", w + "/enable", std::nullopt, 405, "BAD_REQUEST"},
      {"POST", w + "/unknown", std::nullopt, 404, "BAD_REQUEST"},
  };
  for (const Bad& c : cases) {
    Answer a = Call(c.method, c.target, c.body);
    EXPECT_EQ(a.status, c.status) << c.method << " " << c.target << " " << c.body.value_or("") << " -> " << a.body;
    EXPECT_EQ(Str(a.json, "error"), c.error) << c.method << " " << c.target << " -> " << a.body;
    EXPECT_NE(Str(a.json, "errorMessage"), "<absent>") << a.body;
  }
  // A body that is not declared JSON.
  Answer plain = Call(tenant_, "POST", w + "/test", "{}", /*json_type=*/false);
  EXPECT_EQ(plain.status, 415) << plain.body;
  // No key.
  testing::HttpClient http(stack_->gateway_port());
  absl::StatusOr<testing::HttpResponse> anonymous =
      http.Send({.method = "POST", .target = w + "/enable", .headers = {}, .body = std::nullopt});
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);

  EXPECT_EQ(Snapshot(hook), snapshot);
}

TEST_F(OperationsE2eTest, BadInputOnEveryRpcIsInvalidArgumentAndChangesNothing) {
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/rpc"));
  const std::string snapshot = Snapshot(hook);
  auto stub = Grpc();
  const auto call = [&](auto method, const auto& request, auto* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    return ((*stub).*method)(&context, request, response);
  };
  const std::string conn = tenant_.connection_id;

  pb::ListDeliveriesResponse list;
  pb::ListDeliveriesRequest l;
  l.set_connection_id("x");
  l.set_webhook_id(hook.id);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ListDeliveries, l, &list).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  l.set_connection_id(conn);
  l.set_page_size(101);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ListDeliveries, l, &list).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  l.set_page_size(-1);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ListDeliveries, l, &list).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  l.set_page_size(0);
  l.set_state(static_cast<pb::DeliveryState>(99));
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ListDeliveries, l, &list).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  l.set_state(pb::DELIVERY_STATE_UNSPECIFIED);
  l.set_event("booking");
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ListDeliveries, l, &list).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  l.set_event("");
  l.set_page_token("AAAA");
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ListDeliveries, l, &list).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  l.set_page_token("");
  l.set_webhook_id("nope");
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ListDeliveries, l, &list).error_code(),
            grpc::StatusCode::NOT_FOUND);
  l.set_webhook_id(hook.id);
  EXPECT_TRUE(call(&pb::SubscriptionService::Stub::ListDeliveries, l, &list).ok());

  pb::Delivery delivery;
  pb::GetDeliveryRequest g;
  g.set_connection_id(conn);
  g.set_webhook_id(hook.id);
  g.set_delivery_id("nope");
  grpc::Status s = call(&pb::SubscriptionService::Stub::GetDelivery, g, &delivery);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "deliveryId")) << s.error_message();

  pb::ReplayDeliveriesResponse replayed;
  pb::ReplayDeliveriesRequest r;
  r.set_connection_id(conn);
  r.set_webhook_id(hook.id);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ReplayDeliveries, r, &replayed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // since missing
  r.mutable_since()->set_seconds(0);
  r.mutable_since()->set_nanos(-1);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ReplayDeliveries, r, &replayed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.mutable_since()->set_nanos(0);
  r.mutable_since()->set_seconds(-1'000'000'000'000);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ReplayDeliveries, r, &replayed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.mutable_since()->set_seconds(0);
  r.set_max_count(1001);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ReplayDeliveries, r, &replayed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  r.set_max_count(-1);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::ReplayDeliveries, r, &replayed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  pb::RotateWebhookSecretResponse rotated;
  pb::RotateWebhookSecretRequest rot;
  rot.set_connection_id(conn);
  rot.set_webhook_id(hook.id);
  rot.set_grace_period_seconds(-5);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::RotateWebhookSecret, rot, &rotated).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  rot.set_grace_period_seconds(604801);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::RotateWebhookSecret, rot, &rotated).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  rot.set_connection_id("");
  rot.clear_grace_period_seconds();
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::RotateWebhookSecret, rot, &rotated).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  pb::Webhook webhook;
  pb::EnableWebhookRequest en;
  en.set_connection_id(conn);
  en.set_webhook_id("nope");
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::EnableWebhook, en, &webhook).error_code(),
            grpc::StatusCode::NOT_FOUND);

  pb::SendTestEventResponse sent;
  pb::SendTestEventRequest t;
  t.set_connection_id("not-a-uuid");
  t.set_webhook_id(hook.id);
  EXPECT_EQ(call(&pb::SubscriptionService::Stub::SendTestEvent, t, &sent).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(Snapshot(hook), snapshot);
}

}  // namespace
}  // namespace octo::delivery_e2e
