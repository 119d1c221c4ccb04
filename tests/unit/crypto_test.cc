#include "services/common/crypto.h"

#include <gtest/gtest.h>

#include <set>

namespace octo::crypto {
namespace {

std::string Base64Decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int bits = 0, value = 0;
  for (char c : in) {
    if (c == '=') break;
    value = (value << 6) | static_cast<int>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xff));
    }
  }
  return out;
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
}

TEST(Sha256, KnownDigest) {
  EXPECT_EQ(HexEncode(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// The Standard Webhooks reference test vector.
TEST(HmacSha256, StandardWebhooksSignatureVector) {
  const std::string secret = Base64Decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const std::string to_sign = "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}";
  EXPECT_EQ(Base64Encode(HmacSha256(secret, to_sign)), "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(Sha256, EmptyInputAndLongInput) {
  EXPECT_EQ(HexEncode(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// RFC 4231: test case 2 (a key shorter than the block), test case 6 (a key
// longer than the block, hashed first); and an empty key, which takes the
// one-shot path.
TEST(HmacSha256, Rfc4231VectorsAndEmptyKey) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexEncode(HmacSha256(std::string(131, '\xaa'),
                                 "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(HexEncode(HmacSha256("", "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  // Consecutive calls with different keys do not share a key.
  EXPECT_NE(HmacSha256("a", "x"), HmacSha256("b", "x"));
  EXPECT_EQ(HmacSha256("a", "x"), HmacSha256("a", "x"));
}

TEST(NewSigningSecret, WhsecPrefixAnd32RandomBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string secret = NewSigningSecret();
    ASSERT_EQ(secret.rfind("whsec_", 0), 0u);
    EXPECT_EQ(Base64Decode(secret.substr(6)).size(), 32u);
    EXPECT_TRUE(seen.insert(secret).second);
  }
}

TEST(NewApiKey, PrefixedUrlSafeAndUnique) {
  const std::string a = NewApiKey(), b = NewApiKey();
  EXPECT_EQ(a.rfind("octo_", 0), 0u);
  EXPECT_EQ(a.size(), 5u + 43u);
  EXPECT_EQ(a.find_first_of("+/="), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

}  // namespace
}  // namespace octo::crypto
