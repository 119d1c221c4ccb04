// Found by tests/fuzz/fuzz_json_diff: Boost 1.81's parser reads
// "11010110e110" as 1.1010110000000001e117, not the nearest double
// (1.101011e117), so parse -> SerializeCompact -> parse may move a long
// number by a unit in the last place. SerializeCompact itself is exact: its
// text reads back (std::from_chars, correctly rounded) as the same double.
#include <charconv>
#include <string>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "services/delivery/payload/json_text.h"

namespace octo::payload {
namespace {

TEST(JsonTextFuzzFindings, ADoubleBoostMisreadsIsStillWrittenExactly) {
  for (const char* number : {"11010110e110", "3222222222222222222222222222222222222222222"}) {
    const boost::json::value parsed = boost::json::parse(number);
    ASSERT_TRUE(parsed.is_double()) << number;
    const std::string text = SerializeCompact(parsed);
    double back = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), back);
    ASSERT_EQ(error, std::errc()) << text;
    EXPECT_EQ(end, text.data() + text.size()) << text;
    EXPECT_EQ(back, parsed.get_double()) << text;
  }
}

}  // namespace
}  // namespace octo::payload
