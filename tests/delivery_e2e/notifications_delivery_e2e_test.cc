// What a notification subscription receives, end to end: subscriptions made
// over REST (/notifications/subscriptions), events published over gRPC, the
// thin body of each type received by a real HTTP receiver and verified with
// the public `standardwebhooks` package; one event delivered fat to a
// webhook and thin to a subscription of the same connection; an
// availability publish collapsed into one range per product; retryOnError;
// the test ping, the attempt log and redelivery through the extension routes.
//
// Expected bodies are literal strings from the contract (docs/receiving.md,
// payload/notification_body.h), not produced by the code under test.
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/delivery_e2e/delivery_fixture.h"
#include "tests/delivery_e2e/notifications_test_util.h"

namespace octo::delivery_e2e {
namespace {

namespace json = boost::json;
using testing::Reply;

constexpr const char* kBooking =
    R"({"id":"bk-n1","uuid":"{uuid}","status":"CONFIRMED","productId":"prod-eye","optionId":"DEFAULT","contact":{"fullName":"Ada","locales":["en"]}})";
constexpr const char* kProduct = R"({"id":"prod-eye","internalName":"Eye GA","options":[]})";
// {day} is replaced: one availability slot that day.
constexpr const char* kAvailability =
    R"({"id":"2024-06-{day}T10:00:00+01:00","localDateTimeStart":"2024-06-{day}T10:00:00+01:00","localDateTimeEnd":"2024-06-{day}T11:00:00+01:00","allDay":false,"available":true,"status":"AVAILABLE","vacancies":4,"capacity":40})";
// Event()'s default occurred_at, as the body's timestamp.
constexpr const char* kTimestamp = "2024-06-01T08:00:00Z";

webhooks::v1::PublishEventRequest Availability(const e2e::Tenant& tenant, const std::string& product,
                                               const std::string& option, const std::string& day) {
  webhooks::v1::PublishEventRequest e =
      Event(tenant, "availability_update", Fill(kAvailability, {{"{day}", day}}), NewKey("avail"));
  e.set_product_id(product);
  e.set_option_id(option);
  return e;
}

class NotificationDeliveryE2eTest : public DeliveryTest {
 protected:
  static void SetUpTestSuite() { StartStack({}); }
  static void TearDownTestSuite() { StopStack(); }

  CreatedWebhook Sub(const std::string& types_json, const std::string& url, const std::string& more = "") {
    absl::StatusOr<CreatedWebhook> sub = Subscribe(*stack_, tenant_, types_json, url, more);
    if (!sub.ok()) ADD_FAILURE() << sub.status();
    return sub.ok() ? *sub : CreatedWebhook{};
  }

  // The request on `path` whose body has `"type":"<type>"`.
  static ReceivedRequest OfType(const std::vector<ReceivedRequest>& got, const std::string& type) {
    for (const ReceivedRequest& r : got) {
      if (absl::StrContains(r.body, absl::StrCat("\"type\":\"", type, "\""))) return r;
    }
    ADD_FAILURE() << "no " << type << " notification among " << got.size();
    return {};
  }

  static void ExpectVerifiedByNode(const ReceivedRequest& r, const CreatedWebhook& w) {
    absl::StatusOr<NodeResult> node = VerifyWithNode(r, w.secret);
    ASSERT_TRUE(node.ok()) << node.status();
    EXPECT_EQ(node->exit_code, 0) << node->output << Describe(r);
  }
};

TEST_F(NotificationDeliveryE2eTest, ThinBodyOfEachTypeVerifiedByStandardWebhooks) {
  const CreatedWebhook sub =
      Sub(R"(["booking_update","PRODUCT_UPDATE","Availability_Update"])", receiver_->Url("/sub"),
          R"(,"headers":{"Api-Key":"k-1"})");
  const std::string uuid = NewUuid();
  EXPECT_EQ(MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", uuid}}), NewKey("b")))
                .delivery_count(),
            1);
  EXPECT_EQ(MustPublish(Event(tenant_, "product_update", kProduct, NewKey("p"))).delivery_count(), 1);
  EXPECT_EQ(MustPublish(Availability(tenant_, "prod-eye", "DEFAULT", "05")).delivery_count(), 1);
  ASSERT_TRUE(receiver_->WaitFor("/sub", 3, 15s));
  const std::vector<ReceivedRequest> got = receiver_->Requests("/sub");
  ASSERT_EQ(got.size(), 3u);

  const ReceivedRequest booking = OfType(got, "BOOKING_UPDATE");
  EXPECT_EQ(booking.body, ThinBody(booking, "BOOKING_UPDATE", kTimestamp, Fill(R"({"uuid":"{u}"})", {{"{u}", uuid}})));
  const ReceivedRequest product = OfType(got, "PRODUCT_UPDATE");
  EXPECT_EQ(product.body, ThinBody(product, "PRODUCT_UPDATE", kTimestamp, R"({"productId":"prod-eye"})"));
  const ReceivedRequest availability = OfType(got, "AVAILABILITY_UPDATE");
  EXPECT_EQ(availability.body,
            ThinBody(availability, "AVAILABILITY_UPDATE", kTimestamp,
                     R"({"productId":"prod-eye","localDateStart":"2024-06-05","localDateEnd":"2024-06-05"})"));
  for (const ReceivedRequest& r : got) {
    EXPECT_TRUE(HasDeliveryHeaders(r, sub)) << Describe(r);
    EXPECT_EQ(r.Header("Api-Key").value_or(""), "k-1");
    ExpectVerifiedByNode(r, sub);
  }
  // A changed byte fails the public verifier.
  absl::StatusOr<NodeResult> tampered = VerifyWithNode(got[0], sub.secret, got[0].body + " ");
  ASSERT_TRUE(tampered.ok());
  EXPECT_NE(tampered->exit_code, 0) << tampered->output;
}

TEST_F(NotificationDeliveryE2eTest, ASubscriptionReceivesOnlyItsTypes) {
  Sub(R"(["PRODUCT_UPDATE"])", receiver_->Url("/products"));
  Sub(R"(["PRODUCT_UPDATE"])", receiver_->Url("/inactive"), R"(,"active":false)");
  EXPECT_EQ(
      MustPublish(Event(tenant_, "booking_update", Fill(kBooking, {{"{uuid}", NewUuid()}}), NewKey("b")))
          .delivery_count(),
      0);
  EXPECT_EQ(MustPublish(Event(tenant_, "order_update", R"({"id":"ord-1"})", NewKey("o"))).delivery_count(), 0);
  EXPECT_EQ(MustPublish(Event(tenant_, "product_update", kProduct, NewKey("p"))).delivery_count(), 1);
  ASSERT_TRUE(receiver_->WaitFor("/products", 1, 15s));
  EXPECT_EQ(receiver_->Requests("/inactive").size(), 0u);
}

TEST_F(NotificationDeliveryE2eTest, OneEventFatToTheWebhookAndThinToTheSubscription) {
  const CreatedWebhook hook = Hook("booking_update", receiver_->Url("/hook"));
  const CreatedWebhook sub = Sub(R"(["BOOKING_UPDATE"])", receiver_->Url("/sub"));
  const std::string uuid = NewUuid();
  const std::string resource = Fill(kBooking, {{"{uuid}", uuid}});
  const auto published = MustPublish(Event(tenant_, "booking_update", resource, NewKey("both")));
  EXPECT_EQ(published.delivery_count(), 2);
  const ReceivedRequest fat = OnlyRequest("/hook");
  const ReceivedRequest thin = OnlyRequest("/sub");
  EXPECT_TRUE(absl::StartsWith(fat.body, absl::StrCat(R"({"webhook":{"id":")", hook.id, R"(","event":"booking_update")")))
      << fat.body;
  EXPECT_TRUE(absl::StrContains(fat.body, absl::StrCat(R"("booking":{"id":"bk-n1","uuid":")", uuid, "\"")))
      << fat.body;
  EXPECT_EQ(thin.body, ThinBody(thin, "BOOKING_UPDATE", kTimestamp, Fill(R"({"uuid":"{u}"})", {{"{u}", uuid}})));
  EXPECT_NE(WebhookId(fat), WebhookId(thin));
  EXPECT_TRUE(HasDeliveryHeaders(fat, hook));
  EXPECT_TRUE(HasDeliveryHeaders(thin, sub));
  ExpectVerifiedByNode(fat, hook);
  ExpectVerifiedByNode(thin, sub);
}

TEST_F(NotificationDeliveryE2eTest, AnAvailabilityPublishIsOneRangePerProduct) {
  const CreatedWebhook hook = Hook("availability_update", receiver_->Url("/hook"));
  const CreatedWebhook sub = Sub(R"(["AVAILABILITY_UPDATE"])", receiver_->Url("/sub"));
  webhooks::v1::PublishEventsRequest batch;
  *batch.add_events() = Availability(tenant_, "prod-eye", "DEFAULT", "03");
  *batch.add_events() = Availability(tenant_, "prod-eye", "DEFAULT", "01");
  *batch.add_events() = Availability(tenant_, "prod-eye", "SUNSET", "02");
  *batch.add_events() = Availability(tenant_, "prod-boat", "DEFAULT", "20");
  absl::StatusOr<webhooks::v1::PublishEventsResponse> published = stack_->PublishBatch(batch);
  ASSERT_TRUE(published.ok()) << published.status();
  // The webhook: one full body per event; the subscription: one per product.
  int total = 0;
  for (const auto& r : published->results()) total += r.delivery_count();
  EXPECT_EQ(total, 6);
  EXPECT_EQ(db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = ", SqlQuote(sub.id))), "2");
  ASSERT_TRUE(receiver_->WaitFor("/hook", 4, 15s));
  ASSERT_TRUE(receiver_->WaitFor("/sub", 2, 15s));
  std::vector<std::string> bodies;
  for (const ReceivedRequest& r : receiver_->Requests("/sub")) {
    EXPECT_TRUE(HasDeliveryHeaders(r, sub));
    ExpectVerifiedByNode(r, sub);
    json::object data = json::parse(r.body).as_object()["data"].as_object();
    bodies.push_back(json::serialize(data));
  }
  std::sort(bodies.begin(), bodies.end());
  EXPECT_EQ(bodies, (std::vector<std::string>{
                        R"({"productId":"prod-boat","localDateStart":"2024-06-20","localDateEnd":"2024-06-20"})",
                        R"({"productId":"prod-eye","localDateStart":"2024-06-01","localDateEnd":"2024-06-03"})"}));
}

TEST_F(NotificationDeliveryE2eTest, RetryOnErrorDecidesWhetherAFailureIsRetried) {
  receiver_->SetPlan("/once", {Reply(500)}, Reply(500));
  receiver_->SetPlan("/again", {Reply(503)});
  const CreatedWebhook once = Sub(R"(["PRODUCT_UPDATE"])", receiver_->Url("/once"), R"(,"retryOnError":false)");
  const CreatedWebhook again = Sub(R"(["PRODUCT_UPDATE"])", receiver_->Url("/again"));
  MustPublish(Event(tenant_, "product_update", kProduct, NewKey("p")));
  const std::string state = absl::StrCat("SELECT state || ' ' || attempt_count FROM deliveries WHERE webhook_id = ");
  EXPECT_TRUE(Eventually([&] { return db().Scalar(state + SqlQuote(once.id)) == "failed 1"; }, 15s))
      << db().Scalar(state + SqlQuote(once.id));
  EXPECT_TRUE(Eventually([&] { return db().Scalar(state + SqlQuote(again.id)) == "succeeded 2"; }, 15s))
      << db().Scalar(state + SqlQuote(again.id));
  EXPECT_EQ(receiver_->Requests("/once").size(), 1u);
  const std::vector<ReceivedRequest> retried = receiver_->Requests("/again");
  ASSERT_EQ(retried.size(), 2u);
  // A retry is the same message: same webhook-id, same body.
  EXPECT_EQ(WebhookId(retried[0]), WebhookId(retried[1]));
  EXPECT_EQ(retried[0].body, retried[1].body);
}

TEST_F(NotificationDeliveryE2eTest, TestPingAttemptLogAndRedeliverServeSubscriptions) {
  const CreatedWebhook sub = Sub(R"(["BOOKING_UPDATE","PRODUCT_UPDATE"])", receiver_->Url("/ops"));
  const std::string ext = absl::StrCat("/octo/ext/webhooks/", sub.id);
  e2e::RestApi api(stack_->gateway_port(), tenant_.api_key);
  testing::HttpRequest ping{.method = "POST", .target = ext + "/test", .headers = {}, .body = std::nullopt};
  testing::HttpResponse r = api.Send(ping);
  ASSERT_EQ(r.status, 200) << r.body;
  const ReceivedRequest test = OnlyRequest("/ops");
  EXPECT_EQ(test.body, ThinBody(test, "BOOKING_UPDATE", "", R"({"uuid":null,"test":true})", /*any_time=*/true));
  ExpectVerifiedByNode(test, sub);

  // The attempt log lists it; redelivering sends the same message again.
  r = api.Send({.method = "GET", .target = ext + "/deliveries", .headers = {}, .body = std::nullopt});
  ASSERT_EQ(r.status, 200) << r.body;
  json::array deliveries = json::parse(r.body).as_object()["deliveries"].as_array();
  ASSERT_EQ(deliveries.size(), 1u) << r.body;
  const std::string delivery_id(deliveries[0].as_object()["id"].as_string());
  ASSERT_TRUE(Eventually(
      [&] {
        return db().Scalar(absl::StrCat("SELECT state FROM deliveries WHERE id = ", SqlQuote(delivery_id))) ==
               "succeeded";
      },
      15s));
  r = api.Send({.method = "POST", .target = ext + "/deliveries/" + delivery_id + "/redeliver", .headers = {},
                .body = std::nullopt});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(receiver_->WaitFor("/ops", 2, 15s));
  const std::vector<ReceivedRequest> got = receiver_->Requests("/ops");
  EXPECT_EQ(WebhookId(got[1]), WebhookId(got[0]));
  EXPECT_EQ(got[1].body, got[0].body);
  ExpectVerifiedByNode(got[1], sub);
}

}  // namespace
}  // namespace octo::delivery_e2e
