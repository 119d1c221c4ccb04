// End to end, happy paths: the real octo-gateway and octo-subscription over
// real HTTP on 127.0.0.1, PostgreSQL underneath. Create/list/get/patch/delete
// with exact JSON, defaults, the secret, masking, capabilities, tenant
// isolation and the per-connection cap.
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "tests/e2e/e2e_test_util.h"

namespace octo::e2e {
namespace {

namespace json = boost::json;

absl::Time ParseTime(const json::value& v) {
  absl::Time t;
  std::string err;
  if (!v.is_string() || !absl::ParseTime(absl::RFC3339_full, std::string(v.as_string()), &t, &err)) {
    ADD_FAILURE() << "not an RFC 3339 time: " << json::serialize(v) << " " << err;
    return absl::InfinitePast();
  }
  return t;
}

std::string Str(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string("<missing>");
}

// The webhook members that never change, for comparing one response with
// another (createdAt included, updatedAt not).
json::object Stable(json::object o) {
  o.erase("updatedAt");
  o.erase("secret");
  return o;
}

class WebhooksE2eTest : public E2eTest {};

TEST_F(WebhooksE2eTest, FullLifecycleWithExactJson) {
  // Create.
  testing::HttpResponse created = api_->Create(
      R"({"event":"booking_update","url":"https://hooks.partner.example/octo?x=1",)"
      R"("retryOnError":false,"useContactLanguage":true,"headers":{"X-Partner":"p-1"}})",
      {{"Octo-Capabilities", "octo/pricing"}});
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_TRUE(absl::StartsWith(created.Header("Content-Type").value_or(""), "application/json"));
  json::object webhook = ParseObject(created.body);
  std::set<std::string> create_keys = WebhookKeys();
  create_keys.insert("secret");
  EXPECT_EQ(Keys(webhook), create_keys) << created.body;
  const std::string id = Str(webhook, "id");
  EXPECT_EQ(id.size(), 36u) << id;
  EXPECT_EQ(webhook["event"], "booking_update");
  EXPECT_EQ(webhook["url"], "https://hooks.partner.example/octo?x=1");
  EXPECT_EQ(webhook["retryOnError"], false);
  EXPECT_EQ(webhook["useContactLanguage"], true);
  EXPECT_EQ(webhook["headers"], json::parse(R"({"X-Partner":"***"})"));
  EXPECT_EQ(webhook["capabilities"], json::parse(R"(["octo/pricing"])"));
  EXPECT_EQ(webhook["status"], "enabled");
  const absl::Time created_at = ParseTime(webhook["createdAt"]);
  EXPECT_LT(absl::AbsDuration(absl::Now() - created_at), absl::Minutes(5));
  EXPECT_EQ(webhook["updatedAt"], webhook["createdAt"]);

  // List: exactly this one, the same JSON without the secret.
  json::object without_secret = webhook;
  without_secret.erase("secret");
  json::array list = WebhooksOfList(api_->List());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].as_object(), without_secret);

  // Get: the same.
  testing::HttpResponse got = api_->Get(id);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(ParseObject(got.body), without_secret);

  // Patch: every field; unspecified ones keep their values.
  testing::HttpResponse patched = api_->Patch(
      id, R"({"event":"order_update","url":"http://other.partner.example:8443/h","retryOnError":true,)"
          R"("useContactLanguage":false,"headers":{"X-A":"1","X-B":"2"}})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  json::object after = ParseObject(patched.body);
  EXPECT_EQ(Keys(after), WebhookKeys()) << patched.body;
  EXPECT_EQ(Str(after, "id"), id);
  EXPECT_EQ(after["event"], "order_update");
  EXPECT_EQ(after["url"], "http://other.partner.example:8443/h");
  EXPECT_EQ(after["retryOnError"], true);
  EXPECT_EQ(after["useContactLanguage"], false);
  EXPECT_EQ(after["headers"], json::parse(R"({"X-A":"***","X-B":"***"})"));
  EXPECT_EQ(after["capabilities"], json::parse(R"(["octo/pricing"])")) << "PATCH must not touch capabilities";
  EXPECT_EQ(after["status"], "enabled");
  EXPECT_EQ(after["createdAt"], webhook["createdAt"]);
  EXPECT_GT(ParseTime(after["updatedAt"]), created_at);

  // A partial patch changes one field only.
  testing::HttpResponse partial = api_->Patch(id, R"({"retryOnError":false})");
  ASSERT_EQ(partial.status, 200) << partial.body;
  json::object partial_json = ParseObject(partial.body);
  json::object expected = after;
  expected["retryOnError"] = false;
  EXPECT_EQ(Stable(partial_json), Stable(expected));
  // An empty patch changes nothing.
  testing::HttpResponse empty = api_->Patch(id, "{}");
  ASSERT_EQ(empty.status, 200) << empty.body;
  EXPECT_EQ(Stable(ParseObject(empty.body)), Stable(expected));
  // "headers": {} removes all headers.
  testing::HttpResponse cleared = api_->Patch(id, R"({"headers":{}})");
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(ParseObject(cleared.body)["headers"], json::object{});

  // The list shows the patched state.
  testing::HttpResponse current = api_->Get(id);
  ASSERT_EQ(current.status, 200);
  list = WebhooksOfList(api_->List());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].as_object(), ParseObject(current.body));

  // Delete answers the deleted webhook.
  testing::HttpResponse deleted = api_->Delete(id);
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(ParseObject(deleted.body), ParseObject(current.body));

  // Gone: every by-id route answers INVALID_WEBHOOK_ID, the list is empty.
  EXPECT_TRUE(IsOctoError(api_->Get(id), 400, "INVALID_WEBHOOK_ID", id));
  EXPECT_TRUE(IsOctoError(api_->Patch(id, "{}"), 400, "INVALID_WEBHOOK_ID", id));
  EXPECT_TRUE(IsOctoError(api_->Delete(id), 400, "INVALID_WEBHOOK_ID", id));
  EXPECT_EQ(WebhooksOfList(api_->List()).size(), 0u);
}

TEST_F(WebhooksE2eTest, EmptyListIsAnEmptyArray) {
  testing::HttpResponse r = api_->List();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[]");
  EXPECT_TRUE(absl::StartsWith(r.Header("Content-Type").value_or(""), "application/json"));
}

TEST_F(WebhooksE2eTest, DefaultsAreTrueAndEmpty) {
  json::object webhook = CreateWebhook(R"({"event":"product_update","url":"https://h.example/x"})");
  EXPECT_EQ(webhook["retryOnError"], true);
  EXPECT_EQ(webhook["useContactLanguage"], true);
  EXPECT_EQ(webhook["headers"], json::object{});
  EXPECT_EQ(webhook["capabilities"], json::array{});
  EXPECT_EQ(webhook["status"], "enabled");
  // Stored, not only rendered.
  json::object got = ParseObject(api_->Get(Str(webhook, "id")).body);
  EXPECT_EQ(got["retryOnError"], true);
  EXPECT_EQ(got["useContactLanguage"], true);
}

TEST_F(WebhooksE2eTest, EveryEventIsAccepted) {
  for (const char* event : {"booking_update", "order_update", "availability_update", "product_update"}) {
    json::object webhook =
        CreateWebhook(std::string(R"({"url":"https://h.example/x","event":")") + event + R"("})");
    EXPECT_EQ(webhook["event"], event);
  }
  EXPECT_EQ(WebhooksOfList(api_->List()).size(), 4u);
}

TEST_F(WebhooksE2eTest, FalseFlagsAreStored) {
  json::object webhook = CreateWebhook(
      R"({"event":"order_update","url":"https://h.example/x","retryOnError":false,"useContactLanguage":false})");
  json::object got = ParseObject(api_->Get(Str(webhook, "id")).body);
  EXPECT_EQ(got["retryOnError"], false);
  EXPECT_EQ(got["useContactLanguage"], false);
}

TEST_F(WebhooksE2eTest, OrderedIsOffByDefaultAndSetOnCreateAndPatch) {
  json::object plain = CreateWebhook(R"({"event":"booking_update","url":"https://h.example/x"})");
  EXPECT_EQ(plain["ordered"], false);
  json::object ordered =
      CreateWebhook(R"({"event":"booking_update","url":"https://h.example/y","ordered":true})");
  EXPECT_EQ(ordered["ordered"], true);
  const std::string id = Str(ordered, "id");
  EXPECT_EQ(ParseObject(api_->Get(id).body)["ordered"], true);
  testing::HttpResponse off = api_->Patch(id, R"({"ordered":false})");
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(ParseObject(off.body)["ordered"], false);
  testing::HttpResponse other = api_->Patch(id, R"({"retryOnError":false})");
  EXPECT_EQ(ParseObject(other.body)["ordered"], false) << "a patch without it keeps it";
  testing::HttpResponse on = api_->Patch(id, R"({"ordered":true})");
  EXPECT_EQ(ParseObject(on.body)["ordered"], true);
  // Not a boolean: 400 in the OCTO error shape, nothing created or changed.
  for (const char* bad : {R"("ordered":"yes")", R"("ordered":1)", R"("ordered":null)"}) {
    const testing::HttpResponse created =
        api_->Create(absl::StrCat(R"({"event":"booking_update","url":"https://h.example/z",)", bad, "}"));
    EXPECT_EQ(created.status, 400) << created.body;
    json::object error = ParseObject(created.body);
    EXPECT_EQ(Str(error, "error"), "BAD_REQUEST") << created.body;
    EXPECT_EQ(Str(error, "errorMessage"), "ordered: must be a boolean") << created.body;
    const testing::HttpResponse patched = api_->Patch(id, absl::StrCat("{", bad, "}"));
    EXPECT_EQ(patched.status, 400) << patched.body;
  }
  EXPECT_EQ(WebhooksOfList(api_->List()).size(), 2u);
  EXPECT_EQ(ParseObject(api_->Get(id).body)["ordered"], true);
}

TEST_F(WebhooksE2eTest, SecretIsShownOnceOnCreate) {
  json::object webhook = CreateWebhook();
  const std::string secret = Str(webhook, "secret");
  ASSERT_TRUE(absl::StartsWith(secret, "whsec_")) << secret;
  std::string raw;
  ASSERT_TRUE(absl::Base64Unescape(secret.substr(6), &raw)) << secret;
  EXPECT_EQ(raw.size(), 32u);
  EXPECT_EQ(secret.size(), 6u + 44u) << "padded standard base64 of 32 bytes";
  EXPECT_EQ(secret.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", 6),
            std::string::npos);

  // Never again: not in get, list, patch or delete responses.
  const std::string id = Str(webhook, "id");
  for (const testing::HttpResponse& r : {api_->Get(id), api_->List(), api_->Patch(id, R"({"retryOnError":false})"),
                                         api_->Delete(id)}) {
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find(secret.substr(6)), std::string::npos) << r.body;
  }

  // Each webhook gets its own secret.
  EXPECT_NE(Str(CreateWebhook(), "secret"), secret);
}

TEST_F(WebhooksE2eTest, UrlCredentialsAreMaskedInEveryResponse) {
  const std::string password = "s3cr3t-Pa55";
  json::object webhook = CreateWebhook(std::string(R"({"event":"booking_update","url":"https://partner:)") +
                                       password + R"(@hooks.partner.example/octo"})");
  EXPECT_EQ(webhook["url"], "https://partner:***@hooks.partner.example/octo");
  const std::string id = Str(webhook, "id");

  // Credentials that arrive with a patch are masked as well.
  testing::HttpResponse patched = api_->Patch(
      id, std::string(R"({"url":"https://other:)") + password + R"(@hooks.partner.example/v2"})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(ParseObject(patched.body)["url"], "https://other:***@hooks.partner.example/v2");

  for (const testing::HttpResponse& r : {api_->Get(id), api_->List(), api_->Delete(id)}) {
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find(password), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("https://other:***@hooks.partner.example/v2"), std::string::npos) << r.body;
  }
}

TEST_F(WebhooksE2eTest, HeaderValuesAreMaskedInEveryResponse) {
  const std::string token = "tok-9f8e7d6c5b4a";
  json::object webhook = CreateWebhook(
      std::string(R"({"event":"booking_update","url":"https://h.example/x","headers":{"Authorization":"Bearer )") +
      token + R"(","X-Api-Key":")" + token + R"(2"}})");
  EXPECT_EQ(webhook["headers"], json::parse(R"({"Authorization":"***","X-Api-Key":"***"})"));
  const std::string id = Str(webhook, "id");
  testing::HttpResponse patched =
      api_->Patch(id, std::string(R"({"headers":{"X-Api-Key":")") + token + R"(3"}})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(ParseObject(patched.body)["headers"], json::parse(R"({"X-Api-Key":"***"})"));
  for (const testing::HttpResponse& r : {api_->Get(id), api_->List(), api_->Delete(id)}) {
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find(token), std::string::npos) << r.body;
  }
}

TEST_F(WebhooksE2eTest, OctoCapabilitiesAreEchoedAndStored) {
  testing::HttpResponse created =
      api_->Create(kMinimalBody, {{"Octo-Capabilities", " octo/pricing ,octo/content, octo/pricing"}});
  ASSERT_EQ(created.status, 200) << created.body;
  json::object webhook = ParseObject(created.body);
  // Whitespace trimmed, duplicates dropped, order kept.
  EXPECT_EQ(webhook["capabilities"], json::parse(R"(["octo/pricing","octo/content"])"));
  EXPECT_EQ(created.Header("Octo-Capabilities"), "octo/pricing, octo/content");

  // Stored: a later GET without the header still shows them.
  const std::string id = Str(webhook, "id");
  testing::HttpResponse got = api_->Get(id);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(ParseObject(got.body)["capabilities"], json::parse(R"(["octo/pricing","octo/content"])"));
  // The response header echoes this request's capabilities, not the stored ones.
  testing::HttpResponse got_with = api_->Get(id, {{"Octo-Capabilities", "octo/offers"}});
  EXPECT_EQ(got_with.Header("Octo-Capabilities"), "octo/offers");
  EXPECT_EQ(ParseObject(got_with.body)["capabilities"], json::parse(R"(["octo/pricing","octo/content"])"));

  // PATCH cannot change them.
  testing::HttpResponse patched = api_->Patch(id, R"({"retryOnError":false})", {{"Octo-Capabilities", "octo/offers"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(ParseObject(patched.body)["capabilities"], json::parse(R"(["octo/pricing","octo/content"])"));
}

TEST_F(WebhooksE2eTest, CapabilitiesHeaderWinsOverTheBodyField) {
  testing::HttpResponse created =
      api_->Create(R"({"event":"booking_update","url":"https://h.example/x","capabilities":["octo/content"]})",
                   {{"Octo-Capabilities", "octo/pricing"}});
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(ParseObject(created.body)["capabilities"], json::parse(R"(["octo/pricing"])"));
}

// Another connection's webhook answers exactly like a missing one: same
// status, same body apart from the echoed id.
TEST_F(WebhooksE2eTest, TenantIsolation) {
  json::object mine = CreateWebhook();
  const std::string id = Str(mine, "id");
  const std::string mine_json = api_->Get(id).body;

  std::unique_ptr<RestApi> other = NewTenantApi();
  ASSERT_NE(other, nullptr);
  json::object theirs = ParseObject(other->Create(R"({"event":"order_update","url":"https://other.example/h"})").body);

  // B's list shows only B's webhook.
  json::array b_list = WebhooksOfList(other->List());
  ASSERT_EQ(b_list.size(), 1u);
  EXPECT_EQ(b_list[0].as_object()["id"], theirs["id"]);

  const auto same_as_missing = [&](const testing::HttpResponse& foreign, const testing::HttpResponse& missing) {
    EXPECT_TRUE(IsOctoError(foreign, 400, "INVALID_WEBHOOK_ID", id));
    EXPECT_TRUE(IsOctoError(missing, 400, "INVALID_WEBHOOK_ID", kUnknownId));
    std::string foreign_body = foreign.body;
    foreign_body.replace(foreign_body.find(id), id.size(), kUnknownId);
    EXPECT_EQ(foreign_body, missing.body) << "a foreign id must answer byte for byte like a missing one";
  };
  same_as_missing(other->Get(id), other->Get(kUnknownId));
  same_as_missing(other->Patch(id, R"({"url":"https://evil.example/steal"})"),
                  other->Patch(kUnknownId, R"({"url":"https://evil.example/steal"})"));
  same_as_missing(other->Delete(id), other->Delete(kUnknownId));

  // A's webhook is untouched, A still sees exactly it.
  testing::HttpResponse after = api_->Get(id);
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.body, mine_json);
  json::array a_list = WebhooksOfList(api_->List());
  ASSERT_EQ(a_list.size(), 1u);
  EXPECT_EQ(Str(a_list[0].as_object(), "id"), id);
  // And A cannot reach B's webhook either.
  EXPECT_TRUE(IsOctoError(api_->Get(Str(theirs, "id")), 400, "INVALID_WEBHOOK_ID", Str(theirs, "id")));
}

TEST_F(WebhooksE2eTest, KeysOfOneConnectionShareItsWebhooks) {
  json::object webhook = CreateWebhook();
  absl::StatusOr<Tenant> second = stack_->AddKey(tenant_);
  ASSERT_TRUE(second.ok()) << second.status();
  RestApi api2(stack_->gateway_port(), second->api_key);
  EXPECT_EQ(api2.Get(Str(webhook, "id")).status, 200);
}

TEST_F(WebhooksE2eTest, PerConnectionCap) {
  std::unique_ptr<RestApi> capped = NewTenantApi(/*max_webhooks=*/2);
  ASSERT_NE(capped, nullptr);
  testing::HttpResponse first = capped->Create(kMinimalBody);
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(capped->Create(kMinimalBody).status, 200);
  const std::string before = capped->List().body;

  testing::HttpResponse third = capped->Create(kMinimalBody);
  EXPECT_TRUE(IsOctoError(third, 422, "UNPROCESSABLE_ENTITY"));
  EXPECT_EQ(capped->List().body, before) << "the refused webhook must not be stored";

  // The cap is per connection: others are unaffected.
  EXPECT_EQ(api_->Create(kMinimalBody).status, 200);
  // Deleting one frees a place.
  ASSERT_EQ(capped->Delete(Str(ParseObject(first.body), "id")).status, 200);
  EXPECT_EQ(capped->Create(kMinimalBody).status, 200);
  EXPECT_TRUE(IsOctoError(capped->Create(kMinimalBody), 422, "UNPROCESSABLE_ENTITY"));
}

TEST_F(WebhooksE2eTest, ListIsOldestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Str(CreateWebhook(), "id"));
  json::array list = WebhooksOfList(api_->List());
  ASSERT_EQ(list.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(Str(list[i].as_object(), "id"), ids[i]) << i;
}

TEST_F(WebhooksE2eTest, KeepAliveConnectionServesManyRequests) {
  api_->http().set_keep_alive(true);
  json::object webhook = CreateWebhook();
  for (int i = 0; i < 20; ++i) {
    testing::HttpResponse r = api_->Get(Str(webhook, "id"));
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(api_->http().connected()) << "the gateway closed a keep-alive connection after request " << i;
  }
  // Errors keep the connection too, except those that close it by design.
  EXPECT_TRUE(IsOctoError(api_->Get(kUnknownId), 400, "INVALID_WEBHOOK_ID", kUnknownId));
  EXPECT_TRUE(api_->http().connected());
}

TEST_F(WebhooksE2eTest, UrlOfExactly2048BytesIsAccepted) {
  std::string url = "https://h.example/";
  url.append(2048 - url.size(), 'a');
  json::object webhook = CreateWebhook(R"({"event":"booking_update","url":")" + url + R"("})");
  EXPECT_EQ(Str(webhook, "url"), url);
}

TEST_F(WebhooksE2eTest, TwentyHeadersAreAccepted) {
  json::object headers;
  for (int i = 0; i < 20; ++i) headers["X-H" + std::to_string(i)] = "v";
  json::object webhook = CreateWebhook(R"({"event":"booking_update","url":"https://h.example/x","headers":)" +
                                       json::serialize(headers) + "}");
  EXPECT_EQ(webhook["headers"].as_object().size(), 20u);
}

TEST_F(WebhooksE2eTest, BodyOfExactlyMaxBytesIsAccepted) {
  std::string body = kMinimalBody;
  body.append(static_cast<std::size_t>(stack_->options().max_body_bytes) - body.size(), ' ');
  ASSERT_EQ(body.size(), 65536u);
  EXPECT_EQ(api_->Create(body).status, 200);
}

}  // namespace
}  // namespace octo::e2e
