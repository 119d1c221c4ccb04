#include "services/delivery/payload/signing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/common/crypto.h"

namespace octo::payload {
namespace {

constexpr std::string_view kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kMsgId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kTimestamp = 1614265330;
constexpr std::string_view kBody = R"({"test": 2432232314})";
constexpr std::string_view kExpected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

TEST(SignatureHeaderTest, StandardWebhooksTestVector) {
  auto header = SignatureHeader(kMsgId, kTimestamp, kBody, {std::string(kSecret)});
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(*header, kExpected);
}

TEST(SignatureHeaderTest, BareBase64SecretSignsTheSame) {
  auto header = SignatureHeader(kMsgId, kTimestamp, kBody, {std::string(kSecret.substr(6))});
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(*header, kExpected);
}

TEST(SignatureHeaderTest, TwoSecretsDuringRotationInOrderSpaceSeparated) {
  const std::string second = crypto::NewSigningSecret();
  auto header = SignatureHeader(kMsgId, kTimestamp, kBody, {std::string(kSecret), second});
  ASSERT_TRUE(header.ok());
  auto key = DecodeSigningSecret(second);
  ASSERT_TRUE(key.ok());
  const std::string second_signature =
      "v1," + crypto::Base64Encode(crypto::HmacSha256(*key, std::string(kMsgId) + ".1614265330." + std::string(kBody)));
  EXPECT_EQ(*header, std::string(kExpected) + " " + second_signature);

  // Reversed order is kept too.
  auto reversed = SignatureHeader(kMsgId, kTimestamp, kBody, {second, std::string(kSecret)});
  ASSERT_TRUE(reversed.ok());
  EXPECT_EQ(*reversed, second_signature + " " + std::string(kExpected));
}

TEST(SignatureHeaderTest, RejectsNoSecretAndMalformedSecrets) {
  EXPECT_EQ(SignatureHeader(kMsgId, kTimestamp, kBody, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureHeader(kMsgId, kTimestamp, kBody, {"whsec_not base64!"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureHeader(kMsgId, kTimestamp, kBody, {"whsec_"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureHeader(kMsgId, kTimestamp, kBody, {std::string(kSecret), "whsec_%%%"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(VerifySignatureHeaderTest, AcceptsAnyMatchingEntryOnly) {
  const std::string other = crypto::NewSigningSecret();
  EXPECT_TRUE(VerifySignatureHeader(kExpected, kMsgId, kTimestamp, kBody, kSecret));
  EXPECT_TRUE(VerifySignatureHeader("v1,AAAA " + std::string(kExpected), kMsgId, kTimestamp, kBody, kSecret));
  EXPECT_FALSE(VerifySignatureHeader(kExpected, kMsgId, kTimestamp, kBody, other));
  EXPECT_FALSE(VerifySignatureHeader(kExpected, kMsgId, kTimestamp + 1, kBody, kSecret));
  EXPECT_FALSE(VerifySignatureHeader(kExpected, kMsgId, kTimestamp, R"({"test": 2432232315})", kSecret));
  EXPECT_FALSE(
      VerifySignatureHeader("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", kMsgId, kTimestamp, kBody, kSecret));
}

TEST(Base64DecodeTest, DecodesPaddedAndUnpadded) {
  EXPECT_EQ(Base64Decode(""), std::string());
  EXPECT_EQ(Base64Decode("YQ=="), "a");
  EXPECT_EQ(Base64Decode("YQ"), "a");
  EXPECT_EQ(Base64Decode("YWI="), "ab");
  EXPECT_EQ(Base64Decode("YWI"), "ab");
  EXPECT_EQ(Base64Decode("YWJj"), "abc");
  EXPECT_EQ(Base64Decode("+/+/"), std::string("\xfb\xff\xbf", 3));
  for (const std::string& bytes :
       {std::string("\x00\x01\x02\xff", 4), std::string("hello world"), std::string(33, 'x')}) {
    EXPECT_EQ(Base64Decode(crypto::Base64Encode(bytes)), bytes);
  }
}

TEST(Base64DecodeTest, RejectsInvalidInput) {
  EXPECT_EQ(Base64Decode("Y"), std::nullopt);         // 6 bits are no byte
  EXPECT_EQ(Base64Decode("YQ="), std::nullopt);       // padded but not a multiple of 4
  EXPECT_EQ(Base64Decode("Y==="), std::nullopt);      // too much padding
  EXPECT_EQ(Base64Decode("YQ==YQ=="), std::nullopt);  // padding in the middle
  EXPECT_EQ(Base64Decode("YW J"), std::nullopt);
  EXPECT_EQ(Base64Decode("-_-_"), std::nullopt);  // URL-safe alphabet
  EXPECT_EQ(Base64Decode("YWJj\n"), std::nullopt);
}

TEST(PercentDecodeTest, DecodesHexPairsKeepsStrayPercent) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc%2f"), "a b/c/");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz%4"), "%zz%4");
  EXPECT_EQ(PercentDecode("%C3%BC"), "\xC3\xBC");
}

TEST(BasicAuthFromUrlTest, PercentDecodesUserAndPasswordBeforeEncoding) {
  const UrlAuth auth = BasicAuthFromUrl("https://us%40er:p%3Ass%20w%25rd@hooks.example.com:8443/in?x=1#f");
  EXPECT_EQ(auth.url, "https://hooks.example.com:8443/in?x=1#f");
  ASSERT_TRUE(auth.authorization.has_value());
  EXPECT_EQ(*auth.authorization, "Basic " + crypto::Base64Encode("us@er:p:ss w%rd"));
}

TEST(BasicAuthFromUrlTest, PlainCredentials) {
  const UrlAuth auth = BasicAuthFromUrl("https://user:pass@example.com/webhook");
  EXPECT_EQ(auth.url, "https://example.com/webhook");
  EXPECT_EQ(auth.authorization, "Basic dXNlcjpwYXNz");
}

TEST(BasicAuthFromUrlTest, UserWithoutPasswordAndEmptyPassword) {
  EXPECT_EQ(BasicAuthFromUrl("https://token@example.com/").authorization, "Basic " + crypto::Base64Encode("token:"));
  EXPECT_EQ(BasicAuthFromUrl("https://token:@example.com/").authorization, "Basic " + crypto::Base64Encode("token:"));
  EXPECT_EQ(BasicAuthFromUrl("https://token@example.com/").url, "https://example.com/");
}

TEST(BasicAuthFromUrlTest, NoCredentialsLeavesUrlAlone) {
  for (const std::string& url :
       std::vector<std::string>{"https://example.com/webhook", "https://example.com/a@b", "https://example.com?q=a@b",
                                "http://127.0.0.1:9000", "not a url"}) {
    const UrlAuth auth = BasicAuthFromUrl(url);
    EXPECT_EQ(auth.url, url);
    EXPECT_EQ(auth.authorization, std::nullopt) << url;
  }
}

}  // namespace
}  // namespace octo::payload
