#include "services/common/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace octo::log {
namespace {

// Constructed before the thread's first log line, so destroyed after the
// log's own per-thread buffers: its destructor's line must not use them.
// Using them is a use after free that the plain build may not notice: the
// sanitized build (ASan) and valgrind do.
struct LogsWhenDestroyed {
  ~LogsWhenDestroyed() { Info("written from a thread_local destructor", {{"after", "the buffers"}}); }
};

TEST(Log, ALineWrittenAfterTheThreadsBuffersWereDestroyedIsWhole) {
  testing::internal::CaptureStderr();
  std::thread([] {
    thread_local LogsWhenDestroyed logs_at_exit;
    (void)&logs_at_exit;
    Info("the thread's first line, long enough that its buffer is on the heap, not inline", {});
  }).join();
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("\"msg\":\"the thread's first line"), std::string::npos) << out;
  EXPECT_NE(out.find("\"msg\":\"written from a thread_local destructor\",\"after\":\"the buffers\"}\n"),
            std::string::npos)
      << out;
}

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

// The time text is what the one absl::FormatTime call per line wrote: across
// second, minute, day and year boundaries, every millisecond digit, and back
// in time (each thread keeps the last second's text).
TEST(Log, TimeIsTheFormatItWasWithMilliseconds) {
  const absl::Time base = absl::FromUnixSeconds(1798761599);  // 2026-12-31T23:59:59Z
  std::vector<absl::Time> times;
  for (int ms = -1500; ms <= 1500; ms += 7) times.push_back(base + absl::Milliseconds(ms));
  times.push_back(base + absl::Microseconds(999999));
  times.push_back(base + absl::Nanoseconds(999999999));
  times.push_back(base + absl::Nanoseconds(1));
  times.push_back(absl::FromUnixSeconds(0));
  times.push_back(absl::FromUnixMillis(1764766251123));
  times.push_back(base - absl::Hours(24 * 400));  // earlier than the last: the cache is replaced
  times.push_back(absl::Now());
  for (const absl::Time t : times) {
    EXPECT_EQ(LogTime(t), absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()))
        << absl::FormatTime(t);
  }
}

TEST(Log, EscapesInsideLongPlainRuns) {
  testing::internal::CaptureStderr();
  SetComponent("comp\"onent");
  const std::string plain(300, 'x');
  Info(plain + "\t" + plain + "\\" + "\x1f" + plain, {{"k\n", plain}});
  const std::string out = testing::internal::GetCapturedStderr();
  SetComponent("test");
  EXPECT_NE(out.find(",\"component\":\"comp\\\"onent\",\"msg\":\"" + plain + "\\t" + plain + "\\\\\\u001f" +
                     plain + "\",\"k\\n\":\"" + plain + "\"}\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
}

}  // namespace
}  // namespace octo::log
