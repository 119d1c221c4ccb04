// The libcurl transport against a scripted receiver on 127.0.0.1: what goes
// on the wire, what comes back, connection reuse, error classes, shutdown.
// (The SSRF guard: curl_transport_guard_test.cc. When requests may start is
// DestinationAdmission's, tested without sockets in
// destination_admission_test.cc.)
#include <atomic>
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

TEST(CurlTransport, RejectsBadOptions) {
  CurlTransportOptions o;
  o.max_per_host = 0;
  EXPECT_EQ(NewCurlTransport(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = {};
  o.request_timeout = std::chrono::milliseconds(0);
  EXPECT_EQ(NewCurlTransport(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CurlTransport, PostsExactlyWhatItIsGivenAndCapturesTheAnswer) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) {
    return Reply(503, "busy", {{"Retry-After", " 7 "}});
  });
  Results results;
  auto sender = NewSender(results);
  const absl::Time before = absl::Now();
  sender->Submit({Post(1, receiver.Url("/hooks/a?x=1"))});
  ASSERT_TRUE(results.WaitFor(1));
  const TransferResult r = results.Get(1);
  EXPECT_TRUE(r.sent);
  EXPECT_EQ(r.attempt.http_status, 503);
  EXPECT_EQ(r.attempt.error_class, ErrorClass::kNone);
  EXPECT_EQ(r.attempt.retry_after, "7");
  EXPECT_EQ(r.body_prefix, "busy");
  EXPECT_GE(r.started_at, before);
  EXPECT_GT(r.duration, absl::ZeroDuration());
  EXPECT_LT(r.duration, absl::Seconds(5));

  const std::vector<ReceivedRequest> got = receiver.Requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].target, "/hooks/a?x=1");
  EXPECT_EQ(got[0].body, R"({"a":1})");
  std::vector<std::pair<std::string, std::string>> expected = {
      {"Host", absl::StrCat("127.0.0.1:", receiver.port())},
      {"Content-Type", "application/json"},
      {"User-Agent", "octo-webhooks/test"},
      {"X-Custom", "v"},
      {"webhook-id", "msg_1"},
      {"Content-Length", "7"},
  };
  EXPECT_EQ(got[0].headers, expected);
}

// Requests submitted before Start are held, not dropped: Start sends them.
TEST(CurlTransport, RequestsSubmittedBeforeStartAreSentByStart) {
  HttpReceiver receiver;
  Results results;
  CurlTransportOptions options;
  options.destination_policy = LoopbackAllowed();
  auto transport = NewCurlTransport(std::move(options));
  ASSERT_TRUE(transport.ok()) << transport.status();
  (*transport)->Submit({Post(1, receiver.Url("/early")), Post(2, receiver.Url("/early"))});
  (*transport)->Start(results.Callback());
  ASSERT_TRUE(results.WaitFor(2));
  EXPECT_EQ(results.Get(1).attempt.http_status, 200);
  EXPECT_EQ(results.Get(2).attempt.http_status, 200);
  EXPECT_EQ(receiver.Requests().size(), 2u);
}

// Shut down before Start: what was submitted before and after is answered
// not sent when Start comes (it starts nothing), none left unanswered.
TEST(CurlTransport, RequestsOfATransportShutDownBeforeStartAreAnsweredUnsent) {
  HttpReceiver receiver;
  Results results;
  CurlTransportOptions options;
  options.destination_policy = LoopbackAllowed();
  auto transport = NewCurlTransport(std::move(options));
  ASSERT_TRUE(transport.ok()) << transport.status();
  (*transport)->Submit({Post(1, receiver.Url("/early"))});
  (*transport)->Shutdown(absl::Now() + absl::Seconds(1));
  (*transport)->Submit({Post(2, receiver.Url("/late"))});
  EXPECT_EQ(results.size(), 0u);
  (*transport)->Start(results.Callback());
  ASSERT_TRUE(results.WaitFor(2));
  EXPECT_FALSE(results.Get(1).sent);
  EXPECT_FALSE(results.Get(2).sent);
  (*transport)->Submit({Post(3, receiver.Url("/after"))});  // answered at once now
  ASSERT_TRUE(results.WaitFor(3));
  EXPECT_FALSE(results.Get(3).sent);
  EXPECT_TRUE(receiver.Requests().empty());
}

TEST(CurlTransport, ReusesItsConnection) {
  HttpReceiver receiver;
  Results results;
  auto sender = NewSender(results);
  for (uint64_t i = 1; i <= 20; ++i) {
    sender->Submit({Post(i, receiver.Url("/"))});
    ASSERT_TRUE(results.WaitFor(i));
    EXPECT_EQ(results.Get(i).attempt.http_status, 200);
  }
  EXPECT_EQ(receiver.Connections(), 1);
}

// What the admission counts proven connections from: whether a transfer
// opened its connection and whether the connection stayed open.
TEST(CurlTransport, ReportsWhetherItOpenedAndKeptItsConnection) {
  HttpReceiver receiver;
  Results results;
  auto sender = NewSender(results);
  for (uint64_t i = 1; i <= 3; ++i) {
    sender->Submit({Post(i, receiver.Url("/"))});
    ASSERT_TRUE(results.WaitFor(i));
    EXPECT_EQ(results.Get(i).opened_connection, i == 1) << i;
    EXPECT_TRUE(results.Get(i).connection_kept) << i;
  }
  EXPECT_EQ(receiver.Connections(), 1);
}

TEST(CurlTransport, ReportsAConnectionClosedByItsAnswer) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) {
    ScriptedResponse r = Reply(200, "ok");
    r.close = true;  // "Connection: close", then closes
    return r;
  });
  Results results;
  auto sender = NewSender(results);
  for (uint64_t i = 1; i <= 2; ++i) {
    sender->Submit({Post(i, receiver.Url("/"))});
    ASSERT_TRUE(results.WaitFor(i));
    EXPECT_EQ(results.Get(i).attempt.http_status, 200);
    EXPECT_TRUE(results.Get(i).opened_connection) << i;
    EXPECT_FALSE(results.Get(i).connection_kept) << i;
  }
  EXPECT_EQ(receiver.Connections(), 2);
}

TEST(CurlTransport, ReportsAnHttp10AnswerAsClosingItsConnection) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) {
    return Raw("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  Results results;
  auto sender = NewSender(results);
  sender->Submit({Post(1, receiver.Url("/"))});
  ASSERT_TRUE(results.WaitFor(1));
  EXPECT_EQ(results.Get(1).attempt.http_status, 200);
  EXPECT_TRUE(results.Get(1).opened_connection);
  EXPECT_FALSE(results.Get(1).connection_kept);
}

TEST(CurlTransport, ConnectionRefused) {
  Results results;
  auto sender = NewSender(results);
  sender->Submit({Post(1, absl::StrCat("http://127.0.0.1:", UnusedPort(), "/"))});
  ASSERT_TRUE(results.WaitFor(1));
  const TransferResult r = results.Get(1);
  EXPECT_TRUE(r.sent);
  EXPECT_EQ(r.attempt.error_class, ErrorClass::kConnect);
  EXPECT_EQ(r.attempt.http_status, 0);
  EXPECT_FALSE(r.error_detail.empty());
}

TEST(CurlTransport, Timeout) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Seconds(3)); });
  Results results;
  CurlTransportOptions o;
  o.request_timeout = std::chrono::milliseconds(300);
  auto sender = NewSender(results, o);
  sender->Submit({Post(1, receiver.Url("/"))});
  ASSERT_TRUE(results.WaitFor(1));
  const TransferResult r = results.Get(1);
  EXPECT_EQ(r.attempt.error_class, ErrorClass::kTimeout);
  EXPECT_GE(r.duration, absl::Milliseconds(280));
  EXPECT_LT(r.duration, absl::Milliseconds(1500));
}

TEST(CurlTransport, ResetAndGarbageAreHttpErrors) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest& r) {
    if (r.target == "/reset") return ResetConnection();
    return Raw("this is not HTTP\r\n\r\n");
  });
  Results results;
  auto sender = NewSender(results);
  sender->Submit({Post(1, receiver.Url("/reset")), Post(2, receiver.Url("/garbage"))});
  ASSERT_TRUE(results.WaitFor(2));
  EXPECT_EQ(results.Get(1).attempt.error_class, ErrorClass::kHttp);
  EXPECT_EQ(results.Get(2).attempt.error_class, ErrorClass::kHttp) << results.Get(2).error_detail;
}

TEST(CurlTransport, RedirectsAreNotFollowed) {
  HttpReceiver receiver;
  receiver.SetHandler([&](const ReceivedRequest&) {
    return Reply(302, "", {{"Location", receiver.Url("/elsewhere")}});
  });
  Results results;
  auto sender = NewSender(results);
  sender->Submit({Post(1, receiver.Url("/"))});
  ASSERT_TRUE(results.WaitFor(1));
  EXPECT_EQ(results.Get(1).attempt.http_status, 302);
  EXPECT_EQ(receiver.Requests().size(), 1u);
}

TEST(CurlTransport, OnlyHttpAndHttps) {
  Results results;
  auto sender = NewSender(results);
  sender->Submit({Post(1, "ftp://127.0.0.1/x"), Post(2, "file:///etc/passwd"), Post(3, "gopher://127.0.0.1:70/_x"),
                  Post(4, "no url")});
  ASSERT_TRUE(results.WaitFor(4));
  for (uint64_t tag : {1, 2, 3}) {
    EXPECT_EQ(results.Get(tag).attempt.error_class, ErrorClass::kBlocked) << tag;
    EXPECT_THAT(results.Get(tag).error_detail, ::testing::HasSubstr("only http and https")) << tag;
  }
  EXPECT_EQ(results.Get(4).attempt.error_class, ErrorClass::kInternal);
}

TEST(CurlTransport, LargeBodiesAreCutAndTheStatusKept) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) {
    return Reply(200, std::string(1 << 20, 'x'));
  });
  Results results;
  auto sender = NewSender(results);
  sender->Submit({Post(1, receiver.Url("/"))});
  ASSERT_TRUE(results.WaitFor(1));
  const TransferResult r = results.Get(1);
  EXPECT_EQ(r.attempt.http_status, 200);
  EXPECT_EQ(r.attempt.error_class, ErrorClass::kNone);
  EXPECT_EQ(r.body_prefix, std::string(kMaxCapturedBody, 'x'));
}

TEST(CurlTransport, ShutdownDeadlineAbortsRunningTransfers) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Seconds(10)); });
  Results results;
  auto sender = NewSender(results);
  sender->Submit({Post(1, receiver.Url("/"))});
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(5)));
  const absl::Time start = absl::Now();
  sender->Shutdown(absl::Now() + absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results.Get(1).sent);
  EXPECT_EQ(results.Get(1).attempt.error_class, ErrorClass::kTimeout);
}


TEST(CurlTransport, ShutdownFinishesRunningTransfersAndLaterRequestsComeBackUnsent) {
  HttpReceiver receiver;
  receiver.SetHandler([](const ReceivedRequest&) { return Delayed(absl::Milliseconds(300)); });
  Results results;
  auto sender = NewSender(results);
  sender->Submit({Post(1, receiver.Url("/"))});
  ASSERT_TRUE(receiver.WaitForRequests(1, absl::Seconds(5)));
  sender->Shutdown(absl::Now() + absl::Seconds(5));
  ASSERT_EQ(results.size(), 1u);  // every result is in when Shutdown returns
  EXPECT_TRUE(results.Get(1).sent);
  EXPECT_EQ(results.Get(1).attempt.http_status, 200);
  // Afterwards, nothing is sent.
  sender->Submit({Post(2, receiver.Url("/"))});
  ASSERT_TRUE(results.WaitFor(2));
  EXPECT_FALSE(results.Get(2).sent);
  sender->Shutdown(absl::Now());  // idempotent
}

}  // namespace
}  // namespace octo::delivery
