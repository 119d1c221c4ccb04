#include "gateway/webhook_json.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace octo::gateway {
namespace {

namespace v1 = octo::webhooks::v1;

v1::Webhook SampleWebhook() {
  v1::Webhook webhook;
  webhook.set_id("9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e");
  webhook.set_connection_id("c0ffee00-0000-4000-8000-000000000001");
  webhook.set_event("booking_update");
  webhook.set_url("https://user:***@example.com/hook");
  webhook.set_retry_on_error(true);
  webhook.set_use_contact_language(false);
  (*webhook.mutable_headers())["X-B"] = "***";
  (*webhook.mutable_headers())["X-A"] = "***";
  webhook.add_capabilities("octo/pricing");
  webhook.add_capabilities("octo/content");
  webhook.set_status(v1::WEBHOOK_STATUS_ENABLED);
  webhook.mutable_create_time()->set_seconds(1795000000);  // 2026-11-18T...
  webhook.mutable_update_time()->set_seconds(1795000001);
  webhook.mutable_update_time()->set_nanos(250000000);
  return webhook;
}

TEST(FormatRfc3339, WholeAndFractionalSeconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(0);
  EXPECT_EQ(FormatRfc3339(t), "1970-01-01T00:00:00Z");
  t.set_seconds(1795000001);
  t.set_nanos(250000000);
  EXPECT_EQ(FormatRfc3339(t), "2026-11-18T11:06:41.25Z");
  t.set_nanos(1);
  EXPECT_EQ(FormatRfc3339(t), "2026-11-18T11:06:41.000000001Z");
}

TEST(WebhookToJson, RendersTheOctoShapeInOrder) {
  EXPECT_EQ(
      boost::json::serialize(WebhookToJson(SampleWebhook())),
      R"({"id":"9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e","event":"booking_update",)"
      R"("url":"https://user:***@example.com/hook","retryOnError":true,"useContactLanguage":false,)"
      R"("headers":{"X-A":"***","X-B":"***"},"capabilities":["octo/pricing","octo/content"],"ordered":false,)"
      R"("status":"enabled","createdAt":"2026-11-18T11:06:40Z",)"
      R"("updatedAt":"2026-11-18T11:06:41.25Z"})");
}

TEST(WebhookToJson, NeverRendersTheConnection) {
  const boost::json::object json = WebhookToJson(SampleWebhook());
  EXPECT_FALSE(json.contains("connectionId"));
  EXPECT_FALSE(json.contains("connection_id"));
  EXPECT_FALSE(json.contains("secret"));
}

TEST(WebhookToJson, AddsTheSecretOnlyWhenGiven) {
  const boost::json::object json = WebhookToJson(SampleWebhook(), "whsec_abc");
  EXPECT_EQ(json.at("secret").as_string(), "whsec_abc");
}

TEST(WebhookToJson, EmptyCollectionsAreStillPresent) {
  v1::Webhook webhook;
  webhook.set_id("x");
  const boost::json::object json = WebhookToJson(webhook);
  for (const char* key :
       {"id", "event", "url", "retryOnError", "useContactLanguage", "headers", "capabilities"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_TRUE(json.at("headers").as_object().empty());
  EXPECT_TRUE(json.at("capabilities").as_array().empty());
  EXPECT_FALSE(json.contains("createdAt"));
}

TEST(WebhookToJson, DisabledWebhookCarriesReasonAndTime) {
  v1::Webhook webhook = SampleWebhook();
  webhook.set_status(v1::WEBHOOK_STATUS_DISABLED);
  webhook.set_disabled_reason("endpoint answered 410 Gone");
  webhook.mutable_disable_time()->set_seconds(1795000002);
  const boost::json::object json = WebhookToJson(webhook);
  EXPECT_EQ(json.at("status").as_string(), "disabled");
  EXPECT_EQ(json.at("disabledReason").as_string(), "endpoint answered 410 Gone");
  EXPECT_EQ(json.at("disabledAt").as_string(), "2026-11-18T11:06:42Z");
  EXPECT_FALSE(WebhookToJson(SampleWebhook()).contains("disabledReason"));
}

}  // namespace
}  // namespace octo::gateway
