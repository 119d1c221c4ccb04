// ParseJsonText: boost::json::parse, except that a zero with an exponent
// above 308 reads as 0.0, not NaN (Boost 1.81 computes 0 * infinity). The
// inputs are those the fuzz targets skipped until this was fixed
// (tests/fuzz/corpus/fuzz_json_diff/zero_huge_exponent).
#include <cmath>
#include <string>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "services/delivery/payload/json_diff.h"
#include "services/delivery/payload/json_parse.h"
#include "services/delivery/payload/json_text.h"

namespace octo::payload {
namespace {

boost::json::value Parse(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = ParseJsonText(text, ec);
  EXPECT_FALSE(ec) << text << ": " << ec.message();
  return v;
}

TEST(ParseJsonText, BoostReadsAZeroWithAHugeExponentAsNaN) {
  // The reason for ParseJsonText; if a Boost upgrade fixes it, this fails
  // and the workaround can go.
  EXPECT_TRUE(std::isnan(boost::json::parse("0e400").as_double()));
}

TEST(ParseJsonText, AZeroWithAHugeExponentIsZero) {
  for (const char* text : {"0e400", "0E+309", "-0e400", "0.0e999", "0.000e99999"}) {
    const boost::json::value v = Parse(text);
    ASSERT_TRUE(v.is_double()) << text;
    EXPECT_EQ(v.as_double(), 0.0) << text;
    EXPECT_EQ(SerializeCompact(v), "0.0") << text;
  }
}

TEST(ParseJsonText, NestedZerosAreZeroAndTheRestIsUntouched) {
  const boost::json::value v =
      Parse(R"({"a":[1,0e400,{"b":-0e999}],"c":"0e400","d":1e400,"e":1.5,"f":null})");
  EXPECT_EQ(SerializeCompact(v),
            R"({"a":[1,0.0,{"b":0.0}],"c":"0e400","d":1e999,"e":1.5,"f":null})");
}

TEST(ParseJsonText, AnUnchangedResourceHoldingSuchAZeroHasAnEmptyDiff) {
  // With NaN (unequal to itself) every diff replaced the member.
  const boost::json::value before = Parse(R"({"price":{"amount":0e400}})");
  const boost::json::value after = Parse(R"({"price":{"amount":0e400}})");
  EXPECT_TRUE(ComputeDiff(before, after).empty());
}

TEST(ParseJsonText, InvalidTextIsAnError) {
  for (const char* text : {"", "{", "0e", "[0e400,]"}) {
    boost::system::error_code ec;
    (void)ParseJsonText(text, ec);
    EXPECT_TRUE(ec) << text;
    std::error_code std_ec;
    (void)ParseJsonText(text, std_ec);
    EXPECT_TRUE(std_ec) << text;
  }
}

}  // namespace
}  // namespace octo::payload
