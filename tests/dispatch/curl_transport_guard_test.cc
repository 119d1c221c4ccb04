// The libcurl transport's SSRF guard against receivers on 127.0.0.1: every
// address a connection would be opened to is checked against the
// destination policy before a socket exists.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/delivery/curl_transport.h"
#include "tests/dispatch/http_receiver.h"
#include "tests/dispatch/transport_test_support.h"

namespace octo::delivery {
namespace {

using octo::testing::HttpReceiver;
using octo::testing::ReceivedRequest;
using octo::testing::Delayed;
using octo::testing::Raw;
using octo::testing::Reply;
using octo::testing::ResetConnection;
using octo::testing::ScriptedResponse;
using octo::testing::UnusedPort;
using namespace transport_test;  // NOLINT: the shared helpers

// A production sender (no allow-list) whose policy is also recorded: every
// address it was asked about. The guard runs before a socket exists.
TEST(CurlTransportGuard, RefusesLoopbackTargetsWithoutSendingAnything) {
  HttpReceiver receiver;
  Results results;
  CurlTransportOptions o;  // production policy
  o.connect_timeout = std::chrono::milliseconds(1000);
  o.request_timeout = std::chrono::milliseconds(2000);
  auto sender_or = StartedTransport(results, o);
  ASSERT_NE(sender_or, nullptr);
  auto& sender = sender_or;
  const std::string path = absl::StrCat(":", receiver.port(), "/hook");
  sender->Submit({Post(1, "http://127.0.0.1" + path), Post(2, "http://[::1]" + path),
                  Post(3, "http://[::ffff:127.0.0.1]" + path), Post(4, "http://localhost" + path),
                  Post(5, "http://2130706433" + path), Post(6, "http://0177.0.0.1" + path),
                  Post(7, "http://127.1" + path), Post(8, "http://0x7f.0.0.1" + path),
                  Post(9, "https://127.0.0.1" + path)});
  ASSERT_TRUE(results.WaitFor(9));
  for (uint64_t tag = 1; tag <= 9; ++tag) {
    const TransferResult r = results.Get(tag);
    EXPECT_TRUE(r.sent) << tag;  // an attempt, recorded as such
    EXPECT_EQ(r.attempt.error_class, ErrorClass::kBlocked) << tag << ": " << r.error_detail;
    EXPECT_THAT(r.error_detail, ::testing::HasSubstr("blocked by the SSRF guard")) << tag;
    EXPECT_THAT(r.error_detail, ::testing::HasSubstr("loopback address")) << tag;
    EXPECT_LT(r.duration, absl::Milliseconds(900)) << tag;  // not a connect timeout
  }
  EXPECT_EQ(receiver.Connections(), 0);
  EXPECT_TRUE(receiver.Requests().empty());
}

// 10.255.255.1 would black-hole a SYN until the connect timeout: a blocked
// result well before it shows that no connection was even attempted.
TEST(CurlTransportGuard, RefusesPrivateAndMetadataAddressesBeforeAnyPacket) {
  Results results;
  CurlTransportOptions o;
  o.connect_timeout = std::chrono::milliseconds(3000);
  o.request_timeout = std::chrono::milliseconds(4000);
  o.destination_policy = LoopbackAllowed();  // loopback only: private stays refused
  auto sender_or = StartedTransport(results, o);
  ASSERT_NE(sender_or, nullptr);
  sender_or->Submit({Post(1, "http://10.255.255.1/hook"), Post(2, "http://169.254.169.254/latest/meta-data/"),
                        Post(3, "http://[fd00:ec2::254]/"), Post(4, "http://[::ffff:10.255.255.1]/"),
                        Post(5, "http://[64:ff9b::a9fe:a9fe]/")});
  ASSERT_TRUE(results.WaitFor(5));
  const char* expected[] = {"10.255.255.1 is a private address (10.0.0.0/8)",
                            "169.254.169.254 is a cloud metadata address",
                            "fd00:ec2::254 is a cloud metadata address",
                            "::ffff:10.255.255.1 is a private address",
                            "64:ff9b::a9fe:a9fe is a cloud metadata address"};
  for (uint64_t tag = 1; tag <= 5; ++tag) {
    const TransferResult r = results.Get(tag);
    EXPECT_EQ(r.attempt.error_class, ErrorClass::kBlocked) << tag << ": " << r.error_detail;
    EXPECT_THAT(r.error_detail, ::testing::HasSubstr(expected[tag - 1])) << tag;
    EXPECT_LT(r.duration, absl::Seconds(1)) << tag;
  }
}

// A closed port on an allowed address is a connect failure; the same port
// refused by the guard is `blocked`: the two are never confused.
TEST(CurlTransportGuard, BlockedIsNotConnect) {
  const int closed = UnusedPort();
  Results allowed_results;
  auto allowed = NewSender(allowed_results);
  allowed->Submit({Post(1, absl::StrCat("http://127.0.0.1:", closed, "/"))});
  Results production_results;
  auto production = StartedTransport(production_results, CurlTransportOptions{});
  ASSERT_NE(production, nullptr);
  production->Submit({Post(1, absl::StrCat("http://127.0.0.1:", closed, "/"))});
  ASSERT_TRUE(allowed_results.WaitFor(1));
  ASSERT_TRUE(production_results.WaitFor(1));
  EXPECT_EQ(allowed_results.Get(1).attempt.error_class, ErrorClass::kConnect);
  EXPECT_EQ(production_results.Get(1).attempt.error_class, ErrorClass::kBlocked);
}

// The allow-list opens exactly its ranges: 127.0.0.0/8 lets 127.0.0.1
// through but not ::1.
TEST(CurlTransportGuard, AllowListOpensOnlyItsRanges) {
  HttpReceiver receiver;
  Results results;
  CurlTransportOptions o;
  o.destination_policy = *DestinationPolicy::Parse("127.0.0.0/8");
  auto sender = StartedTransport(results, o);
  ASSERT_NE(sender, nullptr);
  sender->Submit({Post(1, receiver.Url("/ok")), Post(2, absl::StrCat("http://[::1]:", receiver.port(), "/no"))});
  ASSERT_TRUE(results.WaitFor(2));
  EXPECT_EQ(results.Get(1).attempt.http_status, 200);
  EXPECT_EQ(results.Get(2).attempt.error_class, ErrorClass::kBlocked);
  ASSERT_EQ(receiver.Requests().size(), 1u);
  EXPECT_EQ(receiver.Requests()[0].target, "/ok");
}

}  // namespace
}  // namespace octo::delivery
