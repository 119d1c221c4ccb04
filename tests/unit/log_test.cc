#include "services/common/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace octo::log {
namespace {

TEST(Log, OneEscapedJsonObjectPerLine) {
  testing::internal::CaptureStderr();
  SetComponent("test");
  Info("hello \"world\"\n", {{"event_id", "e1"}, {"weird", "a\x01" "b"}});
  Debug("suppressed below the minimum level");
  const std::string out = testing::internal::GetCapturedStderr();
  ASSERT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_NE(out.find("\"level\":\"info\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"component\":\"test\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"msg\":\"hello \\\"world\\\"\\n\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"event_id\":\"e1\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"weird\":\"a\\u0001b\""), std::string::npos) << out;
}

}  // namespace
}  // namespace octo::log
