#include "gateway/octo_error.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "gateway/responses.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;

struct Case {
  absl::StatusCode code;
  std::string webhook_id;
  http::status http_status;
  std::string error;
};

TEST(ErrorFromStatus, MapsEveryCanonicalCode) {
  const std::string id = "9f4c9d0e-1c7b-4c1e-9a59-0d7f9b1c2a3e";
  const std::vector<Case> cases = {
      {absl::StatusCode::kInvalidArgument, "", http::status::bad_request, "BAD_REQUEST"},
      {absl::StatusCode::kNotFound, id, http::status::bad_request, "INVALID_WEBHOOK_ID"},
      {absl::StatusCode::kNotFound, "", http::status::internal_server_error,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kResourceExhausted, "", http::status::unprocessable_entity,
       "UNPROCESSABLE_ENTITY"},
      {absl::StatusCode::kUnauthenticated, "", http::status::unauthorized, "UNAUTHORIZED"},
      {absl::StatusCode::kPermissionDenied, id, http::status::forbidden, "FORBIDDEN"},
      {absl::StatusCode::kUnavailable, id, http::status::service_unavailable,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kDeadlineExceeded, "", http::status::service_unavailable,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kCancelled, "", http::status::service_unavailable,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kInternal, id, http::status::internal_server_error,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kUnknown, "", http::status::internal_server_error,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kFailedPrecondition, "", http::status::internal_server_error,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kAlreadyExists, "", http::status::internal_server_error,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kAborted, "", http::status::internal_server_error,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kDataLoss, "", http::status::internal_server_error,
       "INTERNAL_SERVER_ERROR"},
      {absl::StatusCode::kUnimplemented, "", http::status::internal_server_error,
       "INTERNAL_SERVER_ERROR"},
  };
  for (const Case& c : cases) {
    const OctoError e = ErrorFromStatus(absl::Status(c.code, "detail"), c.webhook_id);
    EXPECT_EQ(e.http_status, c.http_status) << absl::StatusCodeToString(c.code);
    EXPECT_EQ(e.code, c.error) << absl::StatusCodeToString(c.code);
  }
}

TEST(ErrorFromStatus, PassesOnlyPartnerFacingMessagesThrough) {
  EXPECT_EQ(ErrorFromStatus(absl::InvalidArgumentError("url: must be absolute"), "").message,
            "url: must be absolute");
  EXPECT_EQ(ErrorFromStatus(absl::ResourceExhaustedError("at most 100 webhooks"), "").message,
            "at most 100 webhooks");
  for (absl::StatusCode code :
       {absl::StatusCode::kInternal, absl::StatusCode::kUnavailable,
        absl::StatusCode::kUnauthenticated, absl::StatusCode::kFailedPrecondition}) {
    const OctoError e =
        ErrorFromStatus(absl::Status(code, "pq: relation webhooks does not exist"), "");
    EXPECT_EQ(e.message.find("relation"), std::string::npos) << e.message;
  }
}

TEST(ErrorFromStatus, InvalidWebhookIdEchoesTheId) {
  const OctoError e = ErrorFromStatus(absl::NotFoundError("x"), "abc");
  EXPECT_EQ(
      ErrorBodyJson(e),
      R"({"error":"INVALID_WEBHOOK_ID","errorMessage":"The webhookId was missing or invalid",)"
      R"("webhookId":"abc"})");
}

TEST(InvalidWebhookId, SanitizesAndBoundsTheEcho) {
  const OctoError e = InvalidWebhookId(std::string("a\xff\n\"b") + std::string(100, 'c'));
  ASSERT_EQ(e.extra.size(), 1u);
  EXPECT_EQ(e.extra[0].second.size(), 64u);
  EXPECT_EQ(e.extra[0].second.substr(0, 5), "a??\"b");
  // Still valid JSON.
  boost::system::error_code ec;
  boost::json::parse(ErrorBodyJson(e), ec);
  EXPECT_FALSE(ec);
}

TEST(ErrorResponse, IsJsonWithRetryAfterOnlyOn503) {
  HttpResponse r = ErrorResponse(Unavailable(), 11);
  EXPECT_EQ(r.result(), http::status::service_unavailable);
  EXPECT_EQ(r[http::field::content_type], "application/json");
  EXPECT_EQ(r[http::field::retry_after], "1");
  EXPECT_EQ(r[http::field::content_length], std::to_string(r.body().size()));

  r = ErrorResponse(BadRequest("x"), 11);
  EXPECT_EQ(r.result(), http::status::bad_request);
  EXPECT_EQ(r.count(http::field::retry_after), 0u);
  EXPECT_EQ(r.body(), R"({"error":"BAD_REQUEST","errorMessage":"x"})");
}

TEST(TruncateUtf8, CutsOnCharacterBoundaries) {
  EXPECT_EQ(TruncateUtf8("abc", 5), "abc");
  EXPECT_EQ(TruncateUtf8("abc", 2), "ab");
  EXPECT_EQ(TruncateUtf8("a\xc3\xa9", 2), "a");
  EXPECT_EQ(TruncateUtf8("a\xe2\x82\xac", 3), "a");
  EXPECT_EQ(TruncateUtf8("a\xe2\x82\xac", 4), "a\xe2\x82\xac");
}

}  // namespace
}  // namespace octo::gateway
