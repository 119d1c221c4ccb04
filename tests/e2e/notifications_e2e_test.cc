// End to end, the OCTO notifications dialect: the real octo-gateway and
// octo-subscription over HTTP on 127.0.0.1, PostgreSQL underneath. The full
// create/list/get/patch/delete cycle under both capability spellings and
// both create paths, the separation from the webhook routes, and every
// error a partner can cause (each leaving the stored subscriptions as they
// were).
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/e2e/e2e_test_util.h"

namespace octo::e2e {
namespace {

namespace json = boost::json;

const std::set<std::string>& SubscriptionKeys() {
  static const std::set<std::string> kKeys = {"id",           "url",    "notificationType", "notificationTypes",
                                              "headers",      "active", "retryOnError",     "status",
                                              "createdAt",    "updatedAt"};
  return kKeys;
}

class NotificationsE2eTest : public E2eTest {
 protected:
  std::string Collection(std::string_view spelling = "subscriptions") const {
    return api_->base() + "/notifications/" + std::string(spelling);
  }
  std::string Item(const std::string& id) const { return Collection() + "/" + id; }

  testing::HttpResponse Call(std::string method, std::string target, std::optional<std::string> body = std::nullopt,
                             std::string capabilities = "notifications", RestApi* api = nullptr) {
    testing::HttpRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    if (!capabilities.empty()) request.headers.emplace_back("Octo-Capabilities", capabilities);
    if (body) {
      request.headers.emplace_back("Content-Type", "application/json");
      request.body = std::move(body);
    }
    return (api != nullptr ? api : api_.get())->Send(std::move(request));
  }

  std::string ListBody() { return Call("GET", Collection()).body; }

  // `r` is the OCTO error and the subscriptions are as before.
  void ExpectRefused(const testing::HttpResponse& r, int status, std::string_view code, const std::string& before) {
    EXPECT_EQ(r.status, status) << r.body;
    json::object body = ParseObject(r.body);
    EXPECT_EQ(body["error"], json::string(code)) << r.body;
    EXPECT_TRUE(body["errorMessage"].is_string() && !body["errorMessage"].as_string().empty()) << r.body;
    EXPECT_EQ(ListBody(), before) << "a refused request changed the subscriptions";
  }
};

TEST_F(NotificationsE2eTest, FullCycleInBothCapabilitySpellings) {
  int n = 0;
  for (const std::string capability : {"notifications", "octo/notifications"}) {
    SCOPED_TRACE(capability);
    // Create: the OCTO page's spelling of the path for one, the right one for the other.
    const std::string url = "https://hooks.partner.example/octo/n" + std::to_string(n++);
    testing::HttpResponse created = Call(
        "POST", Collection(capability == "notifications" ? "subcriptions" : "subscriptions"),
        R"({"url":")" + url +
            R"(","notificationTypes":["booking_update","Product_Update"],"headers":{"Api-Key":"s3cret"},"retryOnError":false})",
        capability);
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(created.Header("Octo-Capabilities").value_or("?"), capability);
    json::object sub = ParseObject(created.body);
    std::set<std::string> keys = SubscriptionKeys();
    keys.insert("secret");
    EXPECT_EQ(Keys(sub), keys) << created.body;
    const std::string id(sub["id"].as_string());
    EXPECT_EQ(created.Header("Location").value_or(""), Item(id));
    EXPECT_EQ(sub["url"], json::string(url));
    EXPECT_EQ(sub["notificationTypes"], json::parse(R"(["BOOKING_UPDATE","PRODUCT_UPDATE"])"));
    EXPECT_EQ(sub["notificationType"], "BOOKING_UPDATE");
    EXPECT_EQ(sub["headers"], json::parse(R"({"Api-Key":"***"})"));
    EXPECT_EQ(sub["active"], true);
    EXPECT_EQ(sub["retryOnError"], false);
    EXPECT_EQ(sub["status"], "enabled");
    EXPECT_TRUE(absl::StartsWith(std::string(sub["secret"].as_string()), "whsec_"));

    json::object stored = sub;
    stored.erase("secret");
    // List: this one only; the webhook list does not show it.
    json::array list = ParseArray(ListBody());
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].as_object(), stored);
    EXPECT_EQ(WebhooksOfList(api_->List()).size(), 0u);
    // Get.
    testing::HttpResponse got = Call("GET", Item(id), std::nullopt, capability);
    ASSERT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(ParseObject(got.body), stored);

    // Patch: one type (the single-type field), inactive.
    testing::HttpResponse patched =
        Call("PATCH", Item(id), R"({"notificationType":"availability_update","active":false})", capability);
    ASSERT_EQ(patched.status, 200) << patched.body;
    json::object p = ParseObject(patched.body);
    EXPECT_EQ(p["notificationTypes"], json::parse(R"(["AVAILABILITY_UPDATE"])"));
    EXPECT_EQ(p["active"], false);
    EXPECT_EQ(p["status"], "disabled");
    EXPECT_EQ(p["disabledReason"], "deactivated");
    EXPECT_EQ(p["url"], json::string(url));
    EXPECT_EQ(p["retryOnError"], false);
    // Patch: active again, new url, headers replaced, both type fields.
    patched = Call("PATCH", Item(id),
                   R"({"active":true,"url":"https://hooks.partner.example/v2","headers":{},)"
                   R"("notificationTypes":["PRODUCT_UPDATE"],"notificationType":"BOOKING_UPDATE","retryOnError":true})",
                   capability);
    ASSERT_EQ(patched.status, 200) << patched.body;
    p = ParseObject(patched.body);
    EXPECT_EQ(p["notificationTypes"], json::parse(R"(["PRODUCT_UPDATE","BOOKING_UPDATE"])"));
    EXPECT_EQ(p["active"], true);
    EXPECT_EQ(p["status"], "enabled");
    EXPECT_FALSE(p.contains("disabledReason"));
    EXPECT_EQ(p["headers"], json::object());
    EXPECT_EQ(p["retryOnError"], true);
    // An empty patch changes nothing.
    testing::HttpResponse same = Call("PATCH", Item(id), "{}", capability);
    ASSERT_EQ(same.status, 200) << same.body;
    EXPECT_EQ(ParseObject(same.body), p);

    // Delete answers the subscription; then it is gone.
    testing::HttpResponse deleted = Call("DELETE", Item(id), std::nullopt, capability);
    ASSERT_EQ(deleted.status, 200) << deleted.body;
    EXPECT_EQ(ParseObject(deleted.body)["id"], json::string(id));
    testing::HttpResponse gone = Call("GET", Item(id), std::nullopt, capability);
    EXPECT_EQ(gone.status, 400);
    EXPECT_EQ(ParseObject(gone.body)["error"], "INVALID_SUBSCRIPTION_ID");
    EXPECT_EQ(ParseObject(gone.body)["subscriptionId"], json::string(id));
    EXPECT_EQ(ListBody(), "[]");
  }
}

TEST_F(NotificationsE2eTest, CreateDefaultsAndInactiveCreate) {
  testing::HttpResponse created =
      Call("POST", Collection(), R"({"url":"https://h.example/a","notificationTypes":["PRODUCT_UPDATE","product_update"]})",
           "");
  ASSERT_EQ(created.status, 201) << created.body;
  json::object sub = ParseObject(created.body);
  EXPECT_EQ(sub["notificationTypes"], json::parse(R"(["PRODUCT_UPDATE"])"));
  EXPECT_EQ(sub["headers"], json::object());
  EXPECT_EQ(sub["active"], true);
  EXPECT_EQ(sub["retryOnError"], true);
  EXPECT_EQ(created.Header("Octo-Capabilities").value_or("?"), "");

  // The draft's snake case and a disabled start.
  created = Call("POST", Collection(),
                 R"({"url":"https://h.example/b","notification_types":["booking_update"],"active":false})");
  ASSERT_EQ(created.status, 201) << created.body;
  sub = ParseObject(created.body);
  EXPECT_EQ(sub["active"], false);
  EXPECT_EQ(sub["disabledReason"], "deactivated");
  EXPECT_EQ(ParseArray(ListBody()).size(), 2u);
}

TEST_F(NotificationsE2eTest, WebhooksAndSubscriptionsAreSeparateButShareTheCap) {
  Tenant tenant;
  std::unique_ptr<RestApi> capped = NewTenantApi(/*max_webhooks=*/2, &tenant);
  testing::HttpResponse hook = capped->Create(kMinimalBody);
  ASSERT_EQ(hook.status, 200) << hook.body;
  const std::string hook_id(ParseObject(hook.body)["id"].as_string());
  testing::HttpResponse sub = Call(
      "POST", Collection(), R"({"url":"https://h.example/s","notificationTypes":["BOOKING_UPDATE"]})", "notifications",
      capped.get());
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string sub_id(ParseObject(sub.body)["id"].as_string());

  // Each dialect's routes see only their own.
  testing::HttpResponse r = Call("GET", Item(hook_id), std::nullopt, "notifications", capped.get());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ParseObject(r.body)["error"], "INVALID_SUBSCRIPTION_ID");
  r = Call("DELETE", Item(hook_id), std::nullopt, "notifications", capped.get());
  EXPECT_EQ(ParseObject(r.body)["error"], "INVALID_SUBSCRIPTION_ID");
  r = Call("PATCH", Item(hook_id), R"({"active":false})", "notifications", capped.get());
  EXPECT_EQ(ParseObject(r.body)["error"], "INVALID_SUBSCRIPTION_ID");
  EXPECT_TRUE(IsOctoError(capped->Get(sub_id), 400, "INVALID_WEBHOOK_ID", sub_id));
  EXPECT_TRUE(IsOctoError(capped->Delete(sub_id), 400, "INVALID_WEBHOOK_ID", sub_id));
  EXPECT_TRUE(IsOctoError(capped->Patch(sub_id, R"({"retryOnError":false})"), 400, "INVALID_WEBHOOK_ID", sub_id));
  EXPECT_EQ(WebhooksOfList(capped->List()).size(), 1u);
  EXPECT_EQ(ParseArray(Call("GET", Collection(), std::nullopt, "", capped.get()).body).size(), 1u);
  // Both still exist.
  EXPECT_EQ(capped->Get(hook_id).status, 200);
  EXPECT_EQ(Call("GET", Item(sub_id), std::nullopt, "", capped.get()).status, 200);

  // The connection's cap counts both.
  const std::string before = Call("GET", Collection(), std::nullopt, "", capped.get()).body;
  r = Call("POST", Collection(), R"({"url":"https://h.example/t","notificationTypes":["BOOKING_UPDATE"]})",
           "notifications", capped.get());
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(ParseObject(r.body)["error"], "UNPROCESSABLE_ENTITY");
  EXPECT_EQ(Call("GET", Collection(), std::nullopt, "", capped.get()).body, before);
}

TEST_F(NotificationsE2eTest, EveryCreateErrorStoresNothing) {
  const std::string before = ListBody();
  struct Case {
    std::string body;
    int status;
    std::string code;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"not json", 400, "BAD_REQUEST", "not valid JSON"},
      {"[]", 400, "BAD_REQUEST", "JSON object"},
      {R"({"notificationTypes":["BOOKING_UPDATE"]})", 400, "BAD_REQUEST", "url: is required"},
      {R"({"url":"https://h.example/x"})", 400, "BAD_REQUEST", "notificationTypes: is required"},
      {R"({"url":"https://h.example/x","notificationTypes":[]})", 400, "BAD_REQUEST", "at least one"},
      {R"({"url":"https://h.example/x","notificationTypes":["ORDER_UPDATE"]})", 400, "BAD_REQUEST",
       "'ORDER_UPDATE' is not one of"},
      {R"({"url":"https://h.example/x","notificationTypes":"BOOKING_UPDATE"})", 400, "BAD_REQUEST",
       "notificationTypes: must be an array of strings"},
      {R"({"url":"https://h.example/x","notificationTypes":[7]})", 400, "BAD_REQUEST", "notificationTypes"},
      {R"({"url":"https://h.example/x","notificationType":null})", 400, "BAD_REQUEST",
       "notificationType: must be a string"},
      {R"({"url":"https://h.example/x","notificationTypes":["BOOKING_UPDATE"],"event":"booking_update"})", 400,
       "BAD_REQUEST", "Unknown field 'event'"},
      {R"({"url":7,"notificationTypes":["BOOKING_UPDATE"]})", 400, "BAD_REQUEST", "url: must be a string"},
      {R"({"url":"ftp://h.example/x","notificationTypes":["BOOKING_UPDATE"]})", 400, "BAD_REQUEST", "url:"},
      {R"({"url":"https://user:pw@h.example/x","notificationTypes":["BOOKING_UPDATE"]})", 200, "", ""},
      {R"({"url":"http://10.1.2.3/x","notificationTypes":["BOOKING_UPDATE"]})", 400, "BAD_REQUEST", "url:"},
      {R"({"url":"https://h.example/x","notificationTypes":["BOOKING_UPDATE"],"headers":{"Bad Name":"v"}})", 400,
       "BAD_REQUEST", "headers"},
      {R"({"url":"https://h.example/x","notificationTypes":["BOOKING_UPDATE"],"headers":{"X":1}})", 400,
       "BAD_REQUEST", "headers: must be an object of strings"},
      {R"({"url":"https://h.example/x","notificationTypes":["BOOKING_UPDATE"],"active":"yes"})", 400, "BAD_REQUEST",
       "active: must be a boolean"},
      {R"({"url":"https://h.example/x","notificationTypes":["BOOKING_UPDATE"],"retryOnError":1})", 400,
       "BAD_REQUEST", "retryOnError: must be a boolean"},
  };
  for (const Case& c : cases) {
    if (c.status == 200) continue;  // listed to show credentials are allowed (masked), as for webhooks
    SCOPED_TRACE(c.body);
    testing::HttpResponse r = Call("POST", Collection(), c.body);
    ExpectRefused(r, c.status, c.code, before);
    EXPECT_TRUE(absl::StrContains(r.body, c.message_part)) << r.body;
  }
  // Not JSON by Content-Type: 415.
  testing::HttpRequest text;
  text.method = "POST";
  text.target = Collection();
  text.headers = {{"Content-Type", "text/plain"}};
  text.body = R"({"url":"https://h.example/x","notificationTypes":["BOOKING_UPDATE"]})";
  ExpectRefused(api_->Send(text), 415, "BAD_REQUEST", before);
  // No key, a wrong key: 401.
  testing::HttpRequest anonymous = text;
  anonymous.headers = {{"Content-Type", "application/json"}};
  ExpectRefused(api_->Send(anonymous, /*authorize=*/false), 401, "UNAUTHORIZED", before);
  anonymous.headers.emplace_back("Authorization", "Bearer not-a-key");
  ExpectRefused(api_->Send(anonymous, /*authorize=*/false), 401, "UNAUTHORIZED", before);
  // A malformed capability list: 400.
  ExpectRefused(Call("POST", Collection(), text.body, "not a capability"), 400, "BAD_REQUEST", before);
  // A method the collection does not have: 405 with Allow.
  testing::HttpResponse put = Call("PUT", Collection(), text.body);
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(put.Header("Allow").value_or(""), "GET, POST");
}

TEST_F(NotificationsE2eTest, EveryItemErrorChangesNothing) {
  testing::HttpResponse created =
      Call("POST", Collection(), R"({"url":"https://h.example/x","notificationTypes":["BOOKING_UPDATE"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id(ParseObject(created.body)["id"].as_string());
  const std::string before = ListBody();

  for (const std::string bad_id : {"not-a-uuid", kUnknownId}) {
    SCOPED_TRACE(bad_id);
    for (const char* method : {"GET", "DELETE"}) {
      testing::HttpResponse r = Call(method, Item(bad_id));
      ExpectRefused(r, 400, "INVALID_SUBSCRIPTION_ID", before);
      EXPECT_EQ(ParseObject(r.body)["subscriptionId"], json::string(bad_id));
    }
    ExpectRefused(Call("PATCH", Item(bad_id), R"({"active":false})"), 400, "INVALID_SUBSCRIPTION_ID", before);
  }
  // Another connection's subscription is as unknown as a missing one.
  std::unique_ptr<RestApi> other = NewTenantApi();
  ExpectRefused(Call("GET", Item(id), std::nullopt, "", other.get()), 400, "INVALID_SUBSCRIPTION_ID", before);
  ExpectRefused(Call("DELETE", Item(id), std::nullopt, "", other.get()), 400, "INVALID_SUBSCRIPTION_ID", before);

  for (const std::string& body :
       {std::string(R"({"notificationTypes":[]})"), std::string(R"({"notificationTypes":["NOPE"]})"),
        std::string(R"({"url":"not a url"})"), std::string(R"({"url":"ftp://h.example/x"})"),
        std::string(R"({"headers":{"Bad Name":"x"}})"), std::string(R"({"active":null})"),
        std::string(R"({"capabilities":[]})"), std::string("[1]")}) {
    SCOPED_TRACE(body);
    ExpectRefused(Call("PATCH", Item(id), body), 400, "BAD_REQUEST", before);
  }
  testing::HttpResponse r = Call("POST", Item(id), "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow").value_or(""), "GET, PATCH, DELETE");
  EXPECT_EQ(ListBody(), before);
}

}  // namespace
}  // namespace octo::e2e
