// The notifications dialect's pure parts: routing (both spellings), parsing
// subscription bodies into SubscriptionService requests, and rendering a
// subscription.
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "gateway/notifications_json.h"
#include "gateway/router.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace v1 = octo::webhooks::v1;

constexpr const char* kId = "9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e";

TEST(NotificationRoutes, CollectionAndItemUnderBothSpellings) {
  const Router router("/octo");
  for (const std::string spelling : {"subscriptions", "subcriptions"}) {
    const std::string base = "/octo/notifications/" + spelling;
    for (const std::string& target : {base, base + "/", base + "?x=1"}) {
      EXPECT_EQ(router.Match(http::verb::get, target).route, Route::kListSubscriptions) << target;
      EXPECT_EQ(router.Match(http::verb::post, target).route, Route::kCreateSubscription) << target;
      EXPECT_EQ(router.Match(http::verb::post, target).route_template, base);
    }
    RouteMatch m = router.Match(http::verb::put, base);
    EXPECT_EQ(m.route, Route::kMethodNotAllowed);
    EXPECT_EQ(m.allow, "GET, POST");
    const std::string item = base + "/" + kId;
    for (const std::string& target : {item, item + "/"}) {
      m = router.Match(http::verb::get, target);
      EXPECT_EQ(m.route, Route::kGetSubscription) << target;
      EXPECT_EQ(m.webhook_id, kId);
      EXPECT_EQ(m.route_template, base + "/:id");
      EXPECT_EQ(router.Match(http::verb::patch, target).route, Route::kUpdateSubscription);
      EXPECT_EQ(router.Match(http::verb::delete_, target).route, Route::kDeleteSubscription);
    }
    m = router.Match(http::verb::post, item);
    EXPECT_EQ(m.route, Route::kMethodNotAllowed);
    EXPECT_EQ(m.allow, "GET, PATCH, DELETE");
    EXPECT_TRUE(IsSubscriptionRoute(router.Match(http::verb::get, item).route));
  }
  for (const char* target : {"/octo/notifications", "/octo/notifications/", "/octo/notifications/subscriptionsx",
                             "/octo/notifications/subscriptions/a/b", "/notifications/subscriptions",
                             "/octo/notifications/subscriptions//"}) {
    EXPECT_EQ(router.Match(http::verb::get, target).route, Route::kNotFound) << target;
  }
  EXPECT_FALSE(IsSubscriptionRoute(Route::kListWebhooks));
}

TEST(NotificationTypes, CaseInsensitiveInUpperCaseOut) {
  EXPECT_EQ(EventForNotificationType("BOOKING_UPDATE"), "booking_update");
  EXPECT_EQ(EventForNotificationType("Availability_Update"), "availability_update");
  EXPECT_EQ(EventForNotificationType("product_update"), "product_update");
  EXPECT_EQ(EventForNotificationType("ORDER_UPDATE"), std::nullopt);
  EXPECT_EQ(EventForNotificationType(""), std::nullopt);
  EXPECT_EQ(NotificationTypeForEvent("availability_update"), "AVAILABILITY_UPDATE");
}

TEST(SubscriptionBody, CreateMapsEveryField) {
  absl::StatusOr<v1::CreateWebhookRequest> r = ParseCreateSubscriptionBody(
      R"({"url":"https://x.test/n","notificationTypes":["product_update","BOOKING_UPDATE","Product_Update"],)"
      R"("notificationType":"availability_update","headers":{"Api-Key":"k"},"active":false,"retryOnError":false})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dialect(), "notification");
  EXPECT_EQ(r->url(), "https://x.test/n");
  ASSERT_EQ(r->event_types_size(), 3);
  EXPECT_EQ(r->event_types(0), "product_update");
  EXPECT_EQ(r->event_types(1), "booking_update");
  EXPECT_EQ(r->event_types(2), "availability_update");
  EXPECT_EQ(r->event(), "");
  EXPECT_EQ(r->headers().at("Api-Key"), "k");
  EXPECT_TRUE(r->has_active() && !r->active());
  EXPECT_TRUE(r->has_retry_on_error() && !r->retry_on_error());

  r = ParseCreateSubscriptionBody(R"({"url":"https://x.test/n","notification_types":["booking_update"]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->event_types_size(), 1);
  EXPECT_FALSE(r->has_active());
  EXPECT_FALSE(r->has_retry_on_error());
}

TEST(SubscriptionBody, CreateRefusesWithTheFieldNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"null", "JSON object"},
      {R"({"notificationTypes":["BOOKING_UPDATE"]})", "url: is required"},
      {R"({"url":"https://x.test"})", "notificationTypes: is required"},
      {R"({"url":"https://x.test","notificationTypes":[]})", "at least one"},
      {R"({"url":"https://x.test","notificationTypes":["NOPE"]})", "notificationTypes: 'NOPE' is not one of"},
      {R"({"url":"https://x.test","notificationType":"NOPE"})", "notificationType: 'NOPE'"},
      {R"({"url":"https://x.test","notificationTypes":[null]})", "notificationTypes: must be an array of strings"},
      {R"({"url":"https://x.test","notificationTypes":["A","B","C","D","E","F","G","H","I","J","K"]})",
       "at most 10"},
      {R"({"url":null,"notificationTypes":["BOOKING_UPDATE"]})", "url: must be a string"},
      {R"({"url":"https://x.test","notificationTypes":["BOOKING_UPDATE"],"headers":[]})", "headers: must be"},
      {R"({"url":"https://x.test","notificationTypes":["BOOKING_UPDATE"],"headers":{"a":null}})", "headers: must be"},
      {R"({"url":"https://x.test","notificationTypes":["BOOKING_UPDATE"],"active":0})", "active: must be a boolean"},
      {R"({"url":"https://x.test","notificationTypes":["BOOKING_UPDATE"],"useContactLanguage":true})",
       "Unknown field 'useContactLanguage'"},
  };
  for (const auto& [body, message] : cases) {
    absl::StatusOr<v1::CreateWebhookRequest> r = ParseCreateSubscriptionBody(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_NE(r.status().message().find(message), std::string::npos) << body << " -> " << r.status().message();
  }
}

TEST(SubscriptionBody, UpdateSetsOnlyWhatIsSent) {
  absl::StatusOr<v1::UpdateWebhookRequest> r = ParseUpdateSubscriptionBody("{}");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dialect(), "notification");
  EXPECT_FALSE(r->has_url() || r->has_event_types() || r->has_headers() || r->has_active() ||
               r->has_retry_on_error() || r->has_event());

  r = ParseUpdateSubscriptionBody(R"({"notificationType":"BOOKING_UPDATE","headers":{},"active":true})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->has_event_types());
  EXPECT_EQ(r->event_types().values_size(), 1);
  EXPECT_TRUE(r->has_headers());
  EXPECT_EQ(r->headers().values_size(), 0);
  EXPECT_TRUE(r->active());

  EXPECT_FALSE(ParseUpdateSubscriptionBody(R"({"notificationTypes":[]})").ok());
  EXPECT_FALSE(ParseUpdateSubscriptionBody(R"({"event":"booking_update"})").ok());
}

TEST(SubscriptionJson, RendersTheSubscriptionShape) {
  v1::Webhook w;
  w.set_id(kId);
  w.set_event("booking_update");
  w.add_event_types("booking_update");
  w.add_event_types("product_update");
  w.set_dialect("notification");
  w.set_url("https://user:***@x.test/n");
  w.set_retry_on_error(false);
  (*w.mutable_headers())["B"] = "***";
  (*w.mutable_headers())["A"] = "***";
  w.add_capabilities("octo/pricing");
  w.set_status(v1::WEBHOOK_STATUS_DISABLED);
  w.set_disabled_reason("deactivated");
  w.mutable_create_time()->set_seconds(1764651600);
  w.mutable_update_time()->set_seconds(1764651601);
  w.mutable_disable_time()->set_seconds(1764651601);
  const std::string text = json::serialize(SubscriptionToJson(w, "whsec_x"));
  EXPECT_EQ(text,
            R"({"id":"9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e","url":"https://user:***@x.test/n",)"
            R"("notificationType":"BOOKING_UPDATE","notificationTypes":["BOOKING_UPDATE","PRODUCT_UPDATE"],)"
            R"("headers":{"A":"***","B":"***"},"active":false,"retryOnError":false,"status":"disabled",)"
            R"("createdAt":"2025-12-02T05:00:00Z","updatedAt":"2025-12-02T05:00:01Z","disabledReason":"deactivated",)"
            R"("disabledAt":"2025-12-02T05:00:01Z","secret":"whsec_x"})");
}

}  // namespace
}  // namespace octo::gateway
