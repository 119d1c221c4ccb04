// The test receiver itself (tests/support/receiver.h), driven by the test
// HTTP client: if it misbehaved, every delivery test would be suspect.
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/http_client.h"
#include "tests/support/receiver.h"

namespace octo::testing {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<HttpReceiver> MustStart(ReceiverOptions options = {}) {
  auto receiver = HttpReceiver::Start(options);
  EXPECT_TRUE(receiver.ok()) << receiver.status();
  return receiver.ok() ? *std::move(receiver) : nullptr;
}

HttpRequest Post(std::string target, std::string body) {
  return {.method = "POST",
          .target = std::move(target),
          .headers = {{"Content-Type", "application/json"}, {"X-Dup", "1"}, {"x-dup", "2"}},
          .body = std::move(body)};
}

TEST(ReceiverTest, RecordsRequestsByteForByte) {
  auto receiver = MustStart();
  ASSERT_NE(receiver, nullptr);
  HttpClient http(receiver->port());
  const std::string body = "{\"a\":\"\xc3\xa9\\u0000\"}\r\n";
  auto r = http.Send(Post("/hook?x=1", body));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(receiver->Count(), 1u);
  const ReceivedRequest got = receiver->Requests().front();
  EXPECT_EQ(got.method, "POST");
  EXPECT_EQ(got.target, "/hook?x=1");
  EXPECT_EQ(got.path, "/hook");
  EXPECT_EQ(got.body, body);
  EXPECT_EQ(got.Header("content-type"), "application/json");
  EXPECT_EQ(got.Headers("X-DUP"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(got.answered_status, 200);
  EXPECT_EQ(receiver->Count("/hook"), 1u);
  EXPECT_EQ(receiver->Count("/other"), 0u);
  EXPECT_EQ(receiver->Url("/p"), absl::StrCat("http://127.0.0.1:", receiver->port(), "/p"));
  EXPECT_EQ(receiver->Url("/p", "u:p"), absl::StrCat("http://u:p@127.0.0.1:", receiver->port(), "/p"));
}

TEST(ReceiverTest, AnswersByPlanThenByDefault) {
  auto receiver = MustStart();
  ASSERT_NE(receiver, nullptr);
  receiver->SetPlan("/p", {Reply(500).Body("boom"), Reply(503).RetryAfter("7")},
                    Reply(204));
  HttpClient http(receiver->port());
  http.set_keep_alive(true);
  auto a = http.Send(Post("/p", "{}"));
  auto b = http.Send(Post("/p", "{}"));
  auto c = http.Send(Post("/p", "{}"));
  auto d = http.Send(Post("/unplanned", "{}"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_EQ(a->status, 500);
  EXPECT_EQ(a->body, "boom");
  EXPECT_EQ(b->status, 503);
  EXPECT_EQ(b->Header("Retry-After"), "7");
  EXPECT_EQ(c->status, 204);
  EXPECT_EQ(d->status, 200);
  // Keep-alive: one connection for all four.
  EXPECT_EQ(receiver->Connections(), 1);
  const auto got = receiver->Requests("/p");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].answered_status, 500);
  EXPECT_EQ(got[2].answered_status, 204);
  EXPECT_EQ(got[0].connection, got[2].connection);
}

TEST(ReceiverTest, DelaysAndClosesWithoutAnswer) {
  auto receiver = MustStart();
  ASSERT_NE(receiver, nullptr);
  receiver->SetPlan("/slow", {Reply(200).Delay(300ms)});
  receiver->SetPlan("/close", {Hangup()});
  HttpClient http(receiver->port());
  const auto start = std::chrono::steady_clock::now();
  auto slow = http.Send(Post("/slow", "{}"));
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  auto closed = http.Send(Post("/close", "{}"));
  EXPECT_FALSE(closed.ok());
  ASSERT_EQ(receiver->Count("/close"), 1u);
  EXPECT_EQ(receiver->Requests("/close")[0].answered_status, 0);
}

TEST(ReceiverTest, ManySlowAnswersAtOnce) {
  auto receiver = MustStart();
  ASSERT_NE(receiver, nullptr);
  receiver->SetDefaultAnswer(Reply(202).Delay(500ms));
  constexpr int kClients = 40;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      HttpClient http(receiver->port());
      auto r = http.Send(Post(absl::StrCat("/c", i), "{}"));
      if (r.ok() && r->status == 202) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients);
  // Timers, not threads: 40 half-second answers take about half a second.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(ReceiverTest, AnswersExpectContinue) {
  auto receiver = MustStart();
  ASSERT_NE(receiver, nullptr);
  HttpClient http(receiver->port());
  HttpRequest req = Post("/big", std::string(4096, 'x'));
  req.headers.emplace_back("Expect", "100-continue");
  auto r = http.Send(req);
  ASSERT_TRUE(r.ok()) << r.status();
  // The client sent the body without waiting; the interim 100 came first.
  EXPECT_TRUE(r->status == 100 || r->status == 200) << r->status;
  ASSERT_TRUE(receiver->WaitFor("/big", 1, 2s));
  EXPECT_EQ(receiver->Requests("/big")[0].body.size(), 4096u);
}

TEST(ReceiverTest, WaitForTimesOutAndFixedPortWorks) {
  auto receiver = MustStart();
  ASSERT_NE(receiver, nullptr);
  const int port = receiver->port();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(receiver->WaitFor(1, 100ms));
  EXPECT_FALSE(receiver->WaitFor("/x", 1, 100ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  // Zero requests for a path none has reached are there at once.
  EXPECT_TRUE(receiver->WaitFor("/x", 0, 10s));
  receiver->Stop();
  receiver->Stop();  // idempotent
  HttpClient http(port, 1s);
  EXPECT_FALSE(http.Send(Post("/x", "{}")).ok());  // stopped: refused
  auto again = MustStart({.port = port, .threads = 1});
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->port(), port);
  EXPECT_TRUE(HttpClient(port).Send(Post("/x", "{}")).ok());
  EXPECT_TRUE(again->WaitFor(1, 1s));
}

}  // namespace
}  // namespace octo::testing
