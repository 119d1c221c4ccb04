#include "services/delivery/payload/json_text.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "tests/payload/test_util.h"

namespace octo::payload {
namespace {

using testing::Json;

TEST(SerializeCompactTest, DoublesAreShortestPlainText) {
  EXPECT_EQ(SerializeCompact(Json(R"([55.9533,-3.1883,0.1,1.5,100.0,-0.0,1e21,1E400,-1E400,2.5e-7])")),
            "[55.9533,-3.1883,0.1,1.5,100.0,-0.0,1e+21,1e999,-1e999,2.5e-07]");
}

TEST(SerializeCompactTest, IntegersAsTheyAre) {
  EXPECT_EQ(SerializeCompact(Json("[0,-1,9223372036854775807,-9223372036854775808,18446744073709551615]")),
            "[0,-1,9223372036854775807,-9223372036854775808,18446744073709551615]");
}

TEST(SerializeCompactTest, MatchesBoostForEverythingButDoubles) {
  const auto v =
      Json(R"({"a":[true,false,null,{}],"s":"q\"b\\s/\u0001\u001f\b\f\n\r\t\u00fc\u20ac\ud83d\ude00<>&","":{"k":[]}})");
  EXPECT_EQ(SerializeCompact(v), boost::json::serialize(v));
  EXPECT_EQ(SerializeCompact(Json(R"("\u007f")")), boost::json::serialize(Json(R"("\u007f")")));
}

TEST(SerializeCompactTest, RoundTrips) {
  const auto v =
      Json(R"({"lat":51.50735,"lng":-0.12776,"price":1000,"ratio":0.3333333333333333,"big":1.7976931348623157e308})");
  EXPECT_EQ(Json(SerializeCompact(v)), v);
}

}  // namespace
}  // namespace octo::payload
