// End to end, every refusal: authentication, ids, HTTP-level errors (size,
// content type, route, method) and validation of every field, each answered
// in the OCTO error shape with its documented status, and none of them
// storing anything.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/e2e/e2e_test_util.h"

namespace octo::e2e {
namespace {

namespace json = boost::json;

class ErrorsE2eTest : public E2eTest {
 protected:
  // POST `body` (as JSON) and expect a 400 BAD_REQUEST that stored nothing.
  void ExpectCreateRefused(const std::string& body, const testing::HttpHeaders& extra = {}) {
    SCOPED_TRACE("POST " + body.substr(0, 300));
    ExpectRejected(api_->Create(body, extra), 400, "BAD_REQUEST");
  }
  // PATCH an existing webhook with `body` and expect a 400 BAD_REQUEST that
  // left it unchanged.
  void ExpectPatchRefused(const std::string& id, const std::string& body) {
    SCOPED_TRACE("PATCH " + body.substr(0, 300));
    ExpectRejected(api_->Patch(id, body), 400, "BAD_REQUEST");
  }
  std::string CreateAndSnapshot() {
    json::object webhook = CreateWebhook(
        R"({"event":"booking_update","url":"https://h.example/x","headers":{"X-Keep":"1"}})");
    SnapshotList();
    return webhook["id"].is_string() ? std::string(webhook["id"].as_string()) : "";
  }
  static std::string WithUrl(const std::string& url) {
    return R"({"event":"booking_update","url":)" + json::serialize(json::value(url)) + "}";
  }
  static std::string WithHeaders(const json::object& headers) {
    return R"({"event":"booking_update","url":"https://h.example/x","headers":)" + json::serialize(headers) + "}";
  }
};

// ----------------------------------------------------------- auth (401) --

TEST_F(ErrorsE2eTest, MissingOrMalformedAuthorizationIs401) {
  const std::string id = CreateAndSnapshot();
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"POST", api_->WebhooksPath()},  {"GET", api_->WebhooksPath()},     {"GET", api_->WebhookPath(id)},
      {"PATCH", api_->WebhookPath(id)}, {"DELETE", api_->WebhookPath(id)}};
  const std::vector<testing::HttpHeaders> bad_auth = {
      {},                                                           // none
      {{"Authorization", ""}},                                      // empty
      {{"Authorization", "Bearer"}},                                // no key
      {{"Authorization", "Bearer "}},                               // empty key
      {{"Authorization", "Basic " + api_->api_key()}},              // wrong scheme
      {{"Authorization", api_->api_key()}},                         // no scheme
      {{"Authorization", "Bearer octo_not-a-real-key"}},            // unknown key
      {{"Authorization", "Bearer " + api_->api_key() + "x"}},       // almost the key
      {{"Authorization", "Bearer " + api_->api_key() + " extra"}},  // trailing junk
      {{"Authorization", "Bearer " + api_->api_key()}, {"Authorization", "Bearer " + api_->api_key()}},
  };
  for (const auto& [method, target] : routes) {
    for (const testing::HttpHeaders& auth : bad_auth) {
      testing::HttpRequest req{.method = method, .target = target, .headers = auth, .body = {}};
      if (method == "POST" || method == "PATCH") {
        req.headers.emplace_back("Content-Type", "application/json");
        req.body = method == "POST" ? kMinimalBody : R"({"retryOnError":false})";
      }
      SCOPED_TRACE(method + " " + target + " with " + std::to_string(auth.size()) + " Authorization header(s): " +
                   (auth.empty() ? "" : auth[0].second.substr(0, 20)));
      ExpectRejected(api_->Send(req, /*authorize=*/false), 401, "UNAUTHORIZED");
    }
  }
}

TEST_F(ErrorsE2eTest, BearerSchemeIsCaseInsensitive) {
  testing::HttpResponse r = api_->Send(
      {.method = "GET", .target = api_->WebhooksPath(), .headers = {{"Authorization", "bearer " + api_->api_key()}},
       .body = {}},
      /*authorize=*/false);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ErrorsE2eTest, RevokedKeyIs401AndOtherKeysKeepWorking) {
  const std::string id = CreateAndSnapshot();
  absl::StatusOr<Tenant> second = stack_->AddKey(tenant_);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(api_->List().status, 200);

  ASSERT_TRUE(stack_->RevokeKey(tenant_.api_key_id).ok());
  // The gateway trusts a key it has seen for at most 1 s (decision 76).
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_TRUE(IsOctoError(api_->List(), 401, "UNAUTHORIZED"));
  EXPECT_TRUE(IsOctoError(api_->Get(id), 401, "UNAUTHORIZED"));
  EXPECT_TRUE(IsOctoError(api_->Create(kMinimalBody), 401, "UNAUTHORIZED"));
  EXPECT_TRUE(IsOctoError(api_->Patch(id, R"({"retryOnError":false})"), 401, "UNAUTHORIZED"));
  EXPECT_TRUE(IsOctoError(api_->Delete(id), 401, "UNAUTHORIZED"));
  // Revoking again is idempotent.
  EXPECT_TRUE(stack_->RevokeKey(tenant_.api_key_id).ok());

  RestApi api2(stack_->gateway_port(), second->api_key);
  testing::HttpResponse list = api2.List();
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.body, list_snapshot_) << "the revoked key's requests must have changed nothing";
}

// ---------------------------------------------------- webhook ids (400) --

TEST_F(ErrorsE2eTest, UnknownIdIsInvalidWebhookId) {
  CreateAndSnapshot();
  EXPECT_TRUE(IsOctoError(api_->Get(kUnknownId), 400, "INVALID_WEBHOOK_ID", kUnknownId));
  EXPECT_TRUE(IsOctoError(api_->Patch(kUnknownId, R"({"retryOnError":false})"), 400, "INVALID_WEBHOOK_ID", kUnknownId));
  EXPECT_TRUE(IsOctoError(api_->Delete(kUnknownId), 400, "INVALID_WEBHOOK_ID", kUnknownId));
  EXPECT_EQ(api_->List().body, list_snapshot_);
}

TEST_F(ErrorsE2eTest, NonUuidIdIsInvalidWebhookId) {
  CreateAndSnapshot();
  for (const std::string id : {"not-a-uuid", "123", "0b7a4f4e7c2a4d7e9b1e2f3c4d5e6f70",
                               "0b7a4f4e-7c2a-4d7e-9b1e-2f3c4d5e6f7", "0b7a4f4e-7c2a-4d7e-9b1e-2f3c4d5e6f70a",
                               "zb7a4f4e-7c2a-4d7e-9b1e-2f3c4d5e6f70", "%27%20OR%201%3D1"}) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(IsOctoError(api_->Get(id), 400, "INVALID_WEBHOOK_ID", id));
    EXPECT_TRUE(IsOctoError(api_->Patch(id, R"({"retryOnError":false})"), 400, "INVALID_WEBHOOK_ID", id));
    EXPECT_TRUE(IsOctoError(api_->Delete(id), 400, "INVALID_WEBHOOK_ID", id));
  }
  EXPECT_EQ(api_->List().body, list_snapshot_);
}

TEST_F(ErrorsE2eTest, IdIsCheckedAfterAuthentication) {
  // Without a key, even a malformed id answers 401: nothing is revealed.
  testing::HttpResponse r =
      api_->Send({.method = "GET", .target = api_->WebhookPath("not-a-uuid"), .headers = {}, .body = {}}, false);
  EXPECT_TRUE(IsOctoError(r, 401, "UNAUTHORIZED"));
}

// -------------------------------------------------- HTTP-level refusals --

TEST_F(ErrorsE2eTest, OversizedBodyIs413) {
  const std::string id = CreateAndSnapshot();
  std::string body = kMinimalBody;
  body.append(static_cast<std::size_t>(stack_->options().max_body_bytes) + 1 - body.size(), ' ');
  ExpectRejected(api_->Create(body), 413, "BAD_REQUEST");
  // Far over the limit too (the gateway must not buffer it).
  std::string huge = R"({"event":"booking_update","url":"https://h.example/x","headers":{"X-Big":")";
  huge.append(1 << 20, 'a');
  huge += R"("}})";
  ExpectRejected(api_->Create(huge), 413, "BAD_REQUEST");
  std::string patch = R"({"retryOnError":false})";
  patch.append(static_cast<std::size_t>(stack_->options().max_body_bytes), ' ');
  ExpectRejected(api_->Patch(id, patch), 413, "BAD_REQUEST");
}

TEST_F(ErrorsE2eTest, DeclaredOversizedContentLengthIs413WithoutTheBody) {
  CreateAndSnapshot();
  testing::RawResult raw = api_->http()
                               .SendRaw("POST " + api_->WebhooksPath() +
                                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + api_->api_key() +
                                        "\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{",
                                        {.half_close = false, .read_timeout = std::chrono::seconds(5)})
                               .value_or(testing::RawResult{});
  absl::StatusOr<testing::HttpResponse> r = testing::HttpClient::ParseResponse(raw.bytes);
  ASSERT_TRUE(r.ok()) << r.status() << ": " << raw.bytes;
  ExpectRejected(*r, 413, "BAD_REQUEST");
}

TEST_F(ErrorsE2eTest, WrongContentTypeIs415) {
  const std::string id = CreateAndSnapshot();
  const std::vector<std::optional<std::string>> content_types = {
      std::nullopt, "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
      "application/json; charset=latin1", "multipart/form-data; boundary=x", ""};
  for (const auto& content_type : content_types) {
    SCOPED_TRACE(content_type.value_or("<none>"));
    testing::HttpHeaders headers;
    if (content_type) headers.emplace_back("Content-Type", *content_type);
    ExpectRejected(
        api_->Send({.method = "POST", .target = api_->WebhooksPath(), .headers = headers, .body = kMinimalBody}), 415,
        "BAD_REQUEST");
    ExpectRejected(api_->Send({.method = "PATCH",
                               .target = api_->WebhookPath(id),
                               .headers = headers,
                               .body = R"({"retryOnError":false})"}),
                   415, "BAD_REQUEST");
  }
  // Parameters and case are fine.
  testing::HttpResponse ok = api_->Send({.method = "PATCH",
                                         .target = api_->WebhookPath(id),
                                         .headers = {{"Content-Type", "Application/JSON; charset=UTF-8"}},
                                         .body = "{}"});
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(ErrorsE2eTest, UnknownRouteIs404) {
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/"},
           {"GET", "/octo"},
           {"GET", "/webhooks"},
           {"POST", "/webhooks"},
           {"GET", "/octo/webhook"},
           {"GET", "/octo/webhookss"},
           {"GET", "/OCTO/webhooks"},
           {"GET", "/octo/webhooks/" + std::string(kUnknownId) + "/extra"},
           {"GET", "/octo/bookings"},
           {"GET", "/metrics/x"},
       }) {
    SCOPED_TRACE(method + " " + target);
    // With and without a key: routing comes first.
    EXPECT_TRUE(IsOctoError(api_->Send({.method = method, .target = target, .headers = {}, .body = {}}), 404,
                            "BAD_REQUEST"));
    EXPECT_TRUE(IsOctoError(api_->Send({.method = method, .target = target, .headers = {}, .body = {}}, false), 404,
                            "BAD_REQUEST"));
  }
  EXPECT_EQ(api_->List().body, list_snapshot_);
}

TEST_F(ErrorsE2eTest, WrongMethodIs405WithAllow) {
  const std::string id = CreateAndSnapshot();
  for (const auto& [method, target, allow] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"PUT", api_->WebhooksPath(), "GET, POST"},
           {"DELETE", api_->WebhooksPath(), "GET, POST"},
           {"PATCH", api_->WebhooksPath(), "GET, POST"},
           {"POST", api_->WebhookPath(id), "GET, PATCH, DELETE"},
           {"PUT", api_->WebhookPath(id), "GET, PATCH, DELETE"},
           {"POST", "/healthz", "GET"},
           {"DELETE", "/readyz", "GET"},
       }) {
    SCOPED_TRACE(method + " " + target);
    testing::HttpResponse r = api_->Send({.method = method, .target = target, .headers = {}, .body = {}});
    EXPECT_TRUE(IsOctoError(r, 405, "BAD_REQUEST"));
    EXPECT_EQ(r.Header("Allow"), allow);
  }
  EXPECT_EQ(api_->List().body, list_snapshot_);
  EXPECT_EQ(api_->Get(id).status, 200);
}

// ----------------------------------------------------- JSON body (400) --

TEST_F(ErrorsE2eTest, MalformedJsonIs400) {
  const std::string id = CreateAndSnapshot();
  for (const std::string body : {"", "{", "}", "{\"event\":", "{\"event\":\"booking_update\",}", "nul",
                                  "{'event':'booking_update'}", "{}x", "{\"url\":\"\xff\xfe\"}",
                                  "{\"event\":\"booking_update\" \"url\":\"https://h.example/x\"}"}) {
    ExpectCreateRefused(body);
    ExpectPatchRefused(id, body);
  }
}

TEST_F(ErrorsE2eTest, NonObjectBodyIs400) {
  const std::string id = CreateAndSnapshot();
  for (const std::string body : {"[]", "[{\"event\":\"booking_update\"}]", "\"booking_update\"", "1", "true", "null"}) {
    ExpectCreateRefused(body);
    ExpectPatchRefused(id, body);
  }
}

TEST_F(ErrorsE2eTest, WrongFieldTypesAre400) {
  const std::string id = CreateAndSnapshot();
  const std::vector<std::pair<std::string, std::vector<std::string>>> wrong = {
      {"event", {"1", "true", "null", "[\"booking_update\"]", "{}"}},
      {"url", {"1", "false", "null", "[\"https://h.example/x\"]", "{\"href\":\"https://h.example/x\"}"}},
      {"retryOnError", {"\"true\"", "1", "0", "null", "[]", "{}"}},
      {"useContactLanguage", {"\"false\"", "1", "null", "[true]"}},
      {"headers", {"[]", "\"X-A: 1\"", "1", "null", "true", "{\"X-A\":1}", "{\"X-A\":null}", "{\"X-A\":[\"1\"]}",
                   "{\"X-A\":{}}", "{\"X-A\":true}"}},
      {"capabilities", {"\"octo/pricing\"", "{}", "1", "null", "[1]", "[null]", "[[\"octo/pricing\"]]"}},
  };
  for (const auto& [field, values] : wrong) {
    for (const std::string& value : values) {
      json::object body = json::parse(R"({"event":"booking_update","url":"https://h.example/x"})").as_object();
      body[field] = json::parse(value);
      ExpectCreateRefused(json::serialize(body));
      ExpectPatchRefused(id, "{\"" + field + "\":" + value + "}");
    }
  }
}

TEST_F(ErrorsE2eTest, UnknownFieldsAre400) {
  const std::string id = CreateAndSnapshot();
  for (const std::string field : {"foo", "id", "secret", "status", "createdAt", "retry_on_error", "Event", "URL",
                                  "webhook", ""}) {
    json::object body = json::parse(R"({"event":"booking_update","url":"https://h.example/x"})").as_object();
    body[field] = "x";
    ExpectCreateRefused(json::serialize(body));
    ExpectPatchRefused(id, json::serialize(json::object{{field, "x"}}));
  }
}

TEST_F(ErrorsE2eTest, MissingRequiredFieldsAre400) {
  ExpectCreateRefused("{}");
  ExpectCreateRefused(R"({"event":"booking_update"})");
  ExpectCreateRefused(R"({"url":"https://h.example/x"})");
  ExpectCreateRefused(R"({"event":"","url":"https://h.example/x"})");
  ExpectCreateRefused(R"({"event":"booking_update","url":""})");
}

// -------------------------------------------------- field values (400) --

TEST_F(ErrorsE2eTest, InvalidUrlIs400) {
  const std::string id = CreateAndSnapshot();
  std::string too_long = "https://h.example/";
  too_long.append(2049 - too_long.size(), 'a');
  for (const std::string& url : std::vector<std::string>{"/relative/path", "hooks.partner.example/octo", "ftp://h.example/x",
                                "file:///etc/passwd", "javascript:alert(1)", "mailto:a@b.example", "https://",
                                "https:///path", "http:/h.example/x", "https://h.example/with space",
                                " https://h.example/x", "https://h.example/x\n", "https://h.example/\tx",
                                "https://h.example:99999/x", "https://h.example:port/x",
                                "https://h_.example..com/x", "https://h.example/\u00e9", too_long}) {
    ExpectCreateRefused(WithUrl(url));
    ExpectPatchRefused(id, R"({"url":)" + json::serialize(json::value(url)) + "}");
  }
}

TEST_F(ErrorsE2eTest, InvalidEventIs400) {
  const std::string id = CreateAndSnapshot();
  for (const std::string event : {"booking_created", "BOOKING_UPDATE", "booking_update ", " booking_update",
                                  "webhook_test", "booking", "*", "booking_update,order_update"}) {
    ExpectCreateRefused(R"({"url":"https://h.example/x","event":)" + json::serialize(json::value(event)) + "}");
    ExpectPatchRefused(id, R"({"event":)" + json::serialize(json::value(event)) + "}");
  }
}

TEST_F(ErrorsE2eTest, InvalidHeadersAre400) {
  const std::string id = CreateAndSnapshot();
  std::vector<json::object> invalid = {
      {{"Host", "evil.example"}},
      {{"host", "evil.example"}},
      {{"Content-Length", "0"}},
      {{"Transfer-Encoding", "chunked"}},
      {{"Connection", "close"}},
      {{"Content-Type", "text/plain"}},
      {{"webhook-id", "msg_1"}},
      {{"Webhook-Signature", "v1,x"}},
      {{"webhook-timestamp", "1"}},
      {{"X-Split", "a\r\nInjected: yes"}},
      {{"X-Cr", "a\rb"}},
      {{"X-Lf", "a\nb"}},
      {{"X-Nul", std::string("a\0b", 3)}},
      {{"Bad Name", "v"}},
      {{"X:Colon", "v"}},
      {{"", "v"}},
      {{"X-Ünïcode", "v"}},
      {{"(X)", "v"}},
      {{"X-Long", std::string(4097, 'v')}},
  };
  json::object too_many;
  for (int i = 0; i < 21; ++i) too_many["X-H" + std::to_string(i)] = "v";
  invalid.push_back(too_many);
  json::object duplicate_ci = {{"X-Dup", "1"}, {"x-dup", "2"}};
  invalid.push_back(duplicate_ci);
  for (const json::object& headers : invalid) {
    ExpectCreateRefused(WithHeaders(headers));
    ExpectPatchRefused(id, R"({"headers":)" + json::serialize(headers) + "}");
  }
}

TEST_F(ErrorsE2eTest, InvalidOctoCapabilitiesHeaderIs400) {
  const std::string id = CreateAndSnapshot();
  for (const std::string& header : std::vector<std::string>{"pricing", "octo/pricing, not a capability", "/pricing", "octo/",
                                   "octo/pri cing", "octo/pricing;q=1", std::string(101, 'a') + "/b"}) {
    SCOPED_TRACE("Octo-Capabilities: " + header);
    ExpectRejected(api_->Create(kMinimalBody, {{"Octo-Capabilities", header}}), 400, "BAD_REQUEST");
    ExpectRejected(api_->Patch(id, R"({"retryOnError":false})", {{"Octo-Capabilities", header}}), 400,
                   "BAD_REQUEST");
  }
}

// A refused PATCH leaves every field as it was, also when only one of its
// fields is bad.
TEST_F(ErrorsE2eTest, PartlyInvalidPatchChangesNothing) {
  const std::string id = CreateAndSnapshot();
  ExpectPatchRefused(id, R"({"retryOnError":false,"url":"ftp://h.example/x"})");
  ExpectPatchRefused(id, R"({"event":"order_update","headers":{"Host":"x"}})");
  ExpectPatchRefused(id, R"({"url":"https://ok.example/x","event":"nope"})");
}

}  // namespace
}  // namespace octo::e2e
