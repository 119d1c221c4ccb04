// The libcurl transport against a scripted receiver on 127.0.0.1: what goes
// on the wire, what comes back, connection reuse, error classes, the SSRF
// guard, shutdown. (When requests may start is DestinationAdmission's, tested
// without sockets in destination_admission_test.cc.)
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/delivery/curl_transport.h"
#include "tests/dispatch/http_receiver.h"

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

// Collects what the sender reports.
class Results {
 public:
  HttpTransport::CompletionFn Callback() {
    return [this](std::vector<TransferResult> done) {
      std::lock_guard lock(mu_);
      for (auto& r : done) {
        const uint64_t tag = r.tag;
        by_tag_[tag] = std::move(r);
        order_.push_back(tag);
      }
      cv_.notify_all();
    };
  }
  bool WaitFor(std::size_t n, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return by_tag_.size() >= n; });
  }
  TransferResult Get(uint64_t tag) {
    std::lock_guard lock(mu_);
    return by_tag_.at(tag);
  }
  std::vector<uint64_t> Order() {
    std::lock_guard lock(mu_);
    return order_;
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return by_tag_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, TransferResult> by_tag_;
  std::vector<uint64_t> order_;
};

OutgoingRequest Post(uint64_t tag, std::string url, std::string body = R"({"a":1})") {
  OutgoingRequest r;
  r.tag = tag;
  r.url = std::move(url);
  r.headers = {"Content-Type: application/json", "User-Agent: octo-webhooks/test", "X-Custom: v",
               "webhook-id: msg_1"};
  r.body = std::move(body);
  return r;
}

// The receivers run on loopback, which the production SSRF policy refuses.
DestinationPolicy LoopbackAllowed() { return *DestinationPolicy::Parse("127.0.0.0/8,::1/128"); }

// A started transport reporting to `results`.
std::unique_ptr<HttpTransport> StartedTransport(Results& results, CurlTransportOptions options) {
  auto transport = NewCurlTransport(std::move(options));
  EXPECT_TRUE(transport.ok()) << transport.status();
  if (!transport.ok()) return nullptr;
  (*transport)->Start(results.Callback());
  return std::move(*transport);
}

// A transport allowed to reach loopback (the guard's own tests set their policy).
std::unique_ptr<HttpTransport> NewSender(Results& results, CurlTransportOptions options = {}) {
  options.destination_policy = LoopbackAllowed();
  return StartedTransport(results, std::move(options));
}

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

// ------------------------------------------------------------ SSRF guard --

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
