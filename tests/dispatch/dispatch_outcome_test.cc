// Pure rules of the dispatcher: outcome classification, Retry-After, jitter,
// the retry schedule, the response snippet, libcurl error classes.
#include "services/delivery/dispatch_outcome.h"

#include <curl/curl.h>

#include <chrono>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "absl/time/time.h"
#include "services/delivery/curl_transport.h"
#include "services/delivery/destination_admission.h"
#include "services/delivery/retry_policy.h"
#include "services/delivery/dispatcher.h"

namespace octo::delivery {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT

RetryPolicy Policy(std::vector<absl::Duration> schedule) {
  RetryPolicy p;
  p.schedule = std::move(schedule);
  p.min_retry_after = absl::Seconds(1);
  p.max_retry_after = absl::Hours(1);
  return p;
}

AttemptResult Status(int status, std::optional<std::string> retry_after = std::nullopt) {
  return AttemptResult{status, ErrorClass::kNone, std::move(retry_after)};
}

AttemptResult Error(ErrorClass c) { return AttemptResult{0, c, std::nullopt}; }

// ------------------------------------------------------------ outcomes --

TEST(DecideOutcome, EveryTwoHundredIsSuccess) {
  absl::BitGen gen;
  const RetryPolicy p = Policy({absl::Seconds(5)});
  for (int status : {200, 201, 202, 204, 299}) {
    EXPECT_EQ(DecideOutcome(Status(status), 1, true, p, kNow, gen).kind, DecisionKind::kSucceeded) << status;
    EXPECT_EQ(DecideOutcome(Status(status), 2, false, p, kNow, gen).kind, DecisionKind::kSucceeded) << status;
  }
}

TEST(DecideOutcome, GoneDisablesWhateverRetryOnErrorSays) {
  absl::BitGen gen;
  const RetryPolicy p = Policy({absl::Seconds(5)});
  EXPECT_EQ(DecideOutcome(Status(410), 1, true, p, kNow, gen).kind, DecisionKind::kGone);
  EXPECT_EQ(DecideOutcome(Status(410), 1, false, p, kNow, gen).kind, DecisionKind::kGone);
  EXPECT_EQ(DecideOutcome(Status(410), 2, true, p, kNow, gen).kind, DecisionKind::kGone);
}

TEST(DecideOutcome, FailuresAreRetriedWhileTheScheduleLasts) {
  absl::BitGen gen;
  const RetryPolicy p = Policy({absl::Seconds(5), absl::Minutes(5)});
  for (const AttemptResult& r : {Status(500), Status(404), Status(302), Status(199), Status(300), Status(429),
                                 Error(ErrorClass::kConnect), Error(ErrorClass::kTimeout), Error(ErrorClass::kDns),
                                 Error(ErrorClass::kTls), Error(ErrorClass::kHttp), Error(ErrorClass::kInternal)}) {
    const Decision first = DecideOutcome(r, 1, true, p, kNow, gen);
    ASSERT_EQ(first.kind, DecisionKind::kRetry);
    EXPECT_GE(first.retry_delay, absl::Seconds(4));
    EXPECT_LE(first.retry_delay, absl::Seconds(6));
    const Decision second = DecideOutcome(r, 2, true, p, kNow, gen);
    ASSERT_EQ(second.kind, DecisionKind::kRetry);
    EXPECT_GE(second.retry_delay, absl::Minutes(4));
    EXPECT_LE(second.retry_delay, absl::Minutes(6));
    EXPECT_EQ(DecideOutcome(r, 3, true, p, kNow, gen).kind, DecisionKind::kFailed);
  }
}

TEST(DecideOutcome, NoRetryWithoutRetryOnError) {
  absl::BitGen gen;
  const RetryPolicy p = Policy({absl::Seconds(5)});
  EXPECT_EQ(DecideOutcome(Status(500), 1, false, p, kNow, gen).kind, DecisionKind::kFailed);
  EXPECT_EQ(DecideOutcome(Status(503, "10"), 1, false, p, kNow, gen).kind, DecisionKind::kFailed);
  EXPECT_EQ(DecideOutcome(Error(ErrorClass::kTimeout), 1, false, p, kNow, gen).kind, DecisionKind::kFailed);
}

TEST(DecideOutcome, EmptyScheduleMeansOneAttempt) {
  absl::BitGen gen;
  EXPECT_EQ(DecideOutcome(Status(500), 1, true, Policy({}), kNow, gen).kind, DecisionKind::kFailed);
}

TEST(DecideOutcome, RetryAfterReplacesTheDelayOn429And503Only) {
  absl::BitGen gen;
  const RetryPolicy p = Policy({absl::Seconds(5)});
  Decision d = DecideOutcome(Status(429, "120"), 1, true, p, kNow, gen);
  ASSERT_EQ(d.kind, DecisionKind::kRetry);
  EXPECT_EQ(d.retry_delay, absl::Seconds(120));  // no jitter on what the receiver asked for
  d = DecideOutcome(Status(503, "Sun, 06 Nov 1994 08:51:37 GMT"), 1, true, p, kNow, gen);
  EXPECT_EQ(d.retry_delay, absl::Seconds(120));
  // Not on a 500, nor an unparsable value.
  d = DecideOutcome(Status(500, "120"), 1, true, p, kNow, gen);
  EXPECT_LE(d.retry_delay, absl::Seconds(6));
  d = DecideOutcome(Status(429, "soon"), 1, true, p, kNow, gen);
  EXPECT_LE(d.retry_delay, absl::Seconds(6));
  // Nor after the last attempt.
  EXPECT_EQ(DecideOutcome(Status(429, "1"), 2, true, p, kNow, gen).kind, DecisionKind::kFailed);
}

TEST(DecideOutcome, RetryAfterIsClamped) {
  absl::BitGen gen;
  RetryPolicy p = Policy({absl::Seconds(5)});
  p.min_retry_after = absl::Seconds(2);
  p.max_retry_after = absl::Minutes(10);
  EXPECT_EQ(DecideOutcome(Status(429, "0"), 1, true, p, kNow, gen).retry_delay, absl::Seconds(2));
  EXPECT_EQ(DecideOutcome(Status(429, "86400"), 1, true, p, kNow, gen).retry_delay, absl::Minutes(10));
  EXPECT_EQ(DecideOutcome(Status(503, "99999999999999999999"), 1, true, p, kNow, gen).retry_delay, absl::Minutes(10));
  // A date in the past: as soon as allowed.
  EXPECT_EQ(DecideOutcome(Status(503, "Sun, 06 Nov 1994 08:00:00 GMT"), 1, true, p, kNow, gen).retry_delay,
            absl::Seconds(2));
}

// ---------------------------------------------------------- Retry-After --

TEST(ParseRetryAfter, DeltaSeconds) {
  EXPECT_EQ(ParseRetryAfter("0", kNow), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("120", kNow), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter("  7 ", kNow), absl::Seconds(7));
  EXPECT_GE(*ParseRetryAfter("123456789012345678901234567890", kNow), absl::Hours(24 * 365));
}

TEST(ParseRetryAfter, HttpDates) {
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT", kNow), absl::Seconds(10));    // IMF-fixdate
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:50:37 GMT", kNow), absl::Seconds(60));   // RFC 850
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:38 1994", kNow), absl::Seconds(1));          // asctime
  EXPECT_EQ(ParseRetryAfter("Sat, 05 Nov 1994 08:49:37 GMT", kNow), absl::ZeroDuration());  // past
}

TEST(ParseRetryAfter, RejectsAnythingElse) {
  for (const char* bad : {"", " ", "-1", "1.5", "+3", "10s", "soon", "Sun, 06 Nov 1994", "Sun, 32 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 PST"}) {
    EXPECT_EQ(ParseRetryAfter(bad, kNow), std::nullopt) << bad;
  }
}

// --------------------------------------------------------------- jitter --

TEST(Jitter, BoundsAreTwentyPercent) {
  EXPECT_EQ(ApplyJitter(absl::Seconds(10), 0.2, 0.0), absl::Seconds(8));
  EXPECT_EQ(ApplyJitter(absl::Seconds(10), 0.2, 1.0), absl::Seconds(12));
  EXPECT_EQ(ApplyJitter(absl::Seconds(10), 0.2, 0.5), absl::Seconds(10));
  EXPECT_EQ(ApplyJitter(absl::Seconds(10), 0.0, 0.9), absl::Seconds(10));
  EXPECT_EQ(ApplyJitter(absl::ZeroDuration(), 0.2, 0.7), absl::ZeroDuration());
}

TEST(Jitter, RandomDelaysStayWithinBoundsAndSpread) {
  absl::BitGen gen;
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (int i = 0; i < 10000; ++i) {
    const absl::Duration d = JitteredDelay(absl::Minutes(5), 0.2, gen);
    ASSERT_GE(d, absl::Minutes(4));
    ASSERT_LE(d, absl::Minutes(6));
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  // Spread over (nearly) the whole range, not a constant.
  EXPECT_LT(lo, absl::Seconds(4 * 60 + 6));
  EXPECT_GT(hi, absl::Seconds(6 * 60 - 6));
}

// ------------------------------------------------------------- schedule --

TEST(ParseRetrySchedule, TheDefault) {
  auto s = ParseRetrySchedule(kDefaultRetrySchedule);
  ASSERT_TRUE(s.ok()) << s.status();
  using std::chrono::hours;
  using std::chrono::minutes;
  using std::chrono::seconds;
  const std::vector<milliseconds> expected = {seconds(5), minutes(5), minutes(30), hours(2),
                                              hours(5),   hours(10),  hours(10)};
  EXPECT_EQ(*s, expected);
  EXPECT_EQ(DefaultRetrySchedule(), expected);
  EXPECT_EQ(DispatcherOptions{}.retry_schedule, expected);
}

TEST(ParseRetrySchedule, MillisecondsWhitespaceAndCompoundDurations) {
  auto s = ParseRetrySchedule(" 20ms, 1.5s ,1h30m,0s");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, (std::vector<milliseconds>{milliseconds(20), milliseconds(1500), milliseconds(5400000),
                                           milliseconds(0)}));
}

TEST(ParseRetrySchedule, EmptyMeansNoRetries) {
  auto s = ParseRetrySchedule("");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty());
  EXPECT_TRUE(ParseRetrySchedule("  ")->empty());
}

TEST(ParseRetrySchedule, RejectsBadItems) {
  for (const char* bad : {"5", "5s,", ",5s", "5s,,5m", "-5s", "5s,-1ms", "abc", "5 s", "inf", "5x"}) {
    auto s = ParseRetrySchedule(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// -------------------------------------------------------------- snippet --

TEST(RetrySpan, TheDefaultFitsTheHealthLookback) {
  const RetryPolicy policy = MakeRetryPolicy(DefaultRetrySchedule(), std::chrono::seconds(1), std::chrono::hours(1));
  // 1h (Retry-After bound) x3, then 2h, 5h, 10h, 10h +20%; 30 s per attempt.
  EXPECT_EQ(WorstCaseRetrySpan(policy, absl::Seconds(30)),
            absl::Hours(3) + absl::Minutes(144) + absl::Hours(6 + 12 + 12) + absl::Seconds(7 * 30));
  EXPECT_TRUE(CheckRetrySpanFitsHealthLookback(policy, absl::Seconds(30)).ok());
}

TEST(RetrySpan, JitterRetryAfterAndTimeoutsCanOutlastTheLookback) {
  using std::chrono::hours;
  // 40 h is within the 48 h limit, 40 h + 20% jitter is not.
  const RetryPolicy jittered = MakeRetryPolicy({hours(40)}, std::chrono::seconds(1), hours(1));
  const absl::Status s = CheckRetrySpanFitsHealthLookback(jittered, absl::Seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--max_retry_after"));
  // A Retry-After up to 7 days replaces a 5 s delay.
  const RetryPolicy deferred = MakeRetryPolicy({std::chrono::seconds(5)}, std::chrono::seconds(1), hours(168));
  EXPECT_FALSE(CheckRetrySpanFitsHealthLookback(deferred, absl::Seconds(1)).ok());
  // 2 x 20 h at the top of the jitter is exactly 48 h; the two 10-minute
  // attempts before the retries tip it over.
  const RetryPolicy tight = MakeRetryPolicy({hours(20), hours(20)}, std::chrono::seconds(1), hours(1));
  EXPECT_EQ(WorstCaseRetrySpan(tight, absl::Minutes(10)), absl::Hours(48) + absl::Minutes(20));
  EXPECT_FALSE(CheckRetrySpanFitsHealthLookback(tight, absl::Minutes(10)).ok());
  EXPECT_TRUE(CheckRetrySpanFitsHealthLookback(MakeRetryPolicy({}, std::chrono::seconds(1), hours(168)),
                                               absl::Minutes(10)).ok());  // no retries at all
}

TEST(SanitizeSnippet, KeepsValidUtf8UpTo4KB) {
  EXPECT_EQ(SanitizeSnippet("{\"ok\":true}"), "{\"ok\":true}");
  EXPECT_EQ(SanitizeSnippet("gr\xC3\xBC\xC3\x9F" "e \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "gr\xC3\xBC\xC3\x9F" "e \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(SanitizeSnippet(std::string(10000, 'a')).size(), 4096u);
}

TEST(SanitizeSnippet, ReplacesInvalidSequencesAndNul) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(SanitizeSnippet(std::string("a\0b", 3)), "a" + r + "b");
  EXPECT_EQ(SanitizeSnippet("a\xFF" "b"), "a" + r + "b");
  EXPECT_EQ(SanitizeSnippet("\xC0\xAF"), r + r);          // overlong
  EXPECT_EQ(SanitizeSnippet("\xED\xA0\x80"), r + r + r);  // surrogate
  EXPECT_EQ(SanitizeSnippet("\xE2\x82"), r + r);          // truncated
}

TEST(SanitizeSnippet, NeverCutsACharacterInTwo) {
  // 4095 ASCII bytes then a 3-byte character: it does not fit, nothing of it is kept.
  const std::string body = std::string(4095, 'a') + "\xE2\x82\xAC" + "tail";
  const std::string s = SanitizeSnippet(body);
  EXPECT_EQ(s, std::string(4095, 'a'));
  // Replacements count in bytes too.
  const std::string invalid(5000, '\xFF');
  EXPECT_LE(SanitizeSnippet(invalid).size(), 4096u);
  EXPECT_EQ(SanitizeSnippet(invalid).size() % 3, 0u);
}

// ------------------------------------------------------ libcurl classes --

TEST(ClassifyCurlCode, ErrorClasses) {
  EXPECT_EQ(ClassifyCurlCode(CURLE_OK), ErrorClass::kNone);
  EXPECT_EQ(ClassifyCurlCode(CURLE_COULDNT_RESOLVE_HOST), ErrorClass::kDns);
  EXPECT_EQ(ClassifyCurlCode(CURLE_COULDNT_CONNECT), ErrorClass::kConnect);
  EXPECT_EQ(ClassifyCurlCode(CURLE_OPERATION_TIMEDOUT), ErrorClass::kTimeout);
  for (CURLcode tls : {CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
                       CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_PINNEDPUBKEYNOTMATCH}) {
    EXPECT_EQ(ClassifyCurlCode(tls), ErrorClass::kTls) << tls;
  }
  for (CURLcode http : {CURLE_WEIRD_SERVER_REPLY, CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                        CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM}) {
    EXPECT_EQ(ClassifyCurlCode(http), ErrorClass::kHttp) << http;
  }
  for (CURLcode internal : {CURLE_OUT_OF_MEMORY, CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL,
                            CURLE_FAILED_INIT, CURLE_WRITE_ERROR}) {
    EXPECT_EQ(ClassifyCurlCode(internal), ErrorClass::kInternal) << internal;
  }
}

TEST(ErrorClassName, MatchesTheSchema) {
  EXPECT_EQ(ErrorClassName(ErrorClass::kNone), "");
  EXPECT_EQ(ErrorClassName(ErrorClass::kDns), "dns");
  EXPECT_EQ(ErrorClassName(ErrorClass::kConnect), "connect");
  EXPECT_EQ(ErrorClassName(ErrorClass::kTls), "tls");
  EXPECT_EQ(ErrorClassName(ErrorClass::kTimeout), "timeout");
  EXPECT_EQ(ErrorClassName(ErrorClass::kHttp), "http");
  EXPECT_EQ(ErrorClassName(ErrorClass::kBlocked), "blocked");
  EXPECT_EQ(ErrorClassName(ErrorClass::kInternal), "internal");
}

TEST(DestinationKey, SchemeHostAndPort) {
  EXPECT_EQ(DestinationKey("http://Example.COM/hook"), "http://example.com:80");
  EXPECT_EQ(DestinationKey("https://example.com/hook?x=1"), "https://example.com:443");
  EXPECT_EQ(DestinationKey("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(DestinationKey("http://[::1]:9/x"), "http://[::1]:9");
  EXPECT_EQ(DestinationKey("not a url"), std::nullopt);
}

}  // namespace
}  // namespace octo::delivery
