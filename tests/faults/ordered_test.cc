// Ordered delivery end to end (docs/delivery.md, "Ordered delivery"): 20
// bookings x 5 updates, published in five bursts, to an ordered webhook
// whose receiver answers slowly and fails some first attempts (500, then
// 200 on the retry), with two octo-delivery replicas and a kill -9 (and
// start) of one of them; beside it an unordered webhook of the same events,
// and one more booking whose first delivery fails for good.
//
// What the receiver must see, per booking: webhook-sequence 1..5 in order,
// never a number before the previous one was answered 200 (or, for the
// doomed booking, before its first delivery's last attempt); the unordered
// webhook's deliveries all arrive while the doomed head is still failing,
// and the other bookings move on meanwhile.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/faults/fault_fixture.h"

namespace octo::faults {
namespace {

using testing::Reply;
using testing::ReceiverAnswer;

constexpr int kResources = 20;
constexpr int kUpdates = 5;
constexpr int64_t kFirstOccurredAt = 1767323045;  // 2026-01-02T03:04:05Z

// One request to the ordered webhook, as the checks read it.
struct Seen {
  std::string booking;
  int64_t sequence = 0;
  int64_t update = 0;  // from the body: the event's publish number for its booking
  int status = 0;
  std::chrono::steady_clock::time_point at;
  std::chrono::steady_clock::time_point answered;  // no earlier than this: after the answer's delay
};

std::optional<Seen> Read(const ReceivedRequest& r) {
  Seen s;
  s.status = r.answered_status;
  s.at = r.received_steady;
  s.answered = r.received_steady + r.answer_delay;
  const std::optional<std::string> sequence = r.Header("webhook-sequence");
  if (!sequence || !absl::SimpleAtoi(*sequence, &s.sequence)) return std::nullopt;
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(r.body, ec);
  if (ec || !body.is_object()) return std::nullopt;
  const boost::json::value* booking = body.as_object().if_contains("booking");
  if (booking == nullptr || !booking->is_object()) return std::nullopt;
  const boost::json::value* uuid = booking->as_object().if_contains("uuid");
  const boost::json::value* update = booking->as_object().if_contains("update");
  if (uuid == nullptr || !uuid->is_string() || update == nullptr || !update->is_int64()) return std::nullopt;
  s.booking = std::string(uuid->as_string());
  s.update = update->as_int64();
  return s;
}

using Time = std::chrono::steady_clock::time_point;
using ByBooking = std::map<std::string, std::vector<Seen>>;

class OrderedFaultTest : public FaultTest {
 protected:
  // The doomed booking's first delivery: 503 with Retry-After 1 s, every
  // attempt (4 attempts: about 3 s). Others: a third of the first attempts
  // 500, then 200; each 200 after 30 ms. The answerer outlives the test
  // body (the receiver stops in TearDown): it owns what it uses.
  void AnswerOrdered(const std::vector<std::string>& bookings, const std::string& doomed) {
    std::map<std::string, int> index_of;
    for (std::size_t i = 0; i < bookings.size(); ++i) index_of[bookings[i]] = static_cast<int>(i);
    auto tried = std::make_shared<std::set<std::string>>();  // webhook-ids seen, under the receiver's lock
    receiver_->SetAnswerer("/ordered", [tried, index_of, doomed](const ReceivedRequest& r) -> ReceiverAnswer {
      const std::optional<Seen> s = Read(r);
      if (!s) return Reply(400);
      if (s->booking == doomed && s->sequence == 1) return Reply(503).RetryAfter("1");
      const bool first = tried->insert(delivery_e2e::WebhookId(r)).second;
      const auto i = index_of.find(s->booking);
      const int n = i == index_of.end() ? 0 : i->second;
      if (first && (n + s->sequence) % 3 == 0) return Reply(500);
      return Reply(200).Delay(30ms);
    });
  }

  // Five bursts: update u of every booking, occurred_at rising with u.
  void PublishBursts(const e2e::Tenant& tenant, const std::vector<std::string>& bookings) {
    for (int u = 1; u <= kUpdates; ++u) {
      webhooks::v1::PublishEventsRequest batch;
      for (const std::string& uuid : bookings) {
        const std::string resource =
            absl::StrCat(R"({"uuid":")", uuid, R"(","status":"CONFIRMED","update":)", u, "}");
        *batch.add_events() = delivery_e2e::Event(tenant, "booking_update", resource,
                                                  delivery_e2e::NewKey("ordered"), kFirstOccurredAt + u);
      }
      auto published = stack_->PublishBatch(batch);
      ASSERT_TRUE(published.ok()) << published.status();
      std::this_thread::sleep_for(100ms);  // bursts, not one batch
    }
  }

  // The ordered webhook's requests per booking, in arrival order; each
  // carries its number, equal to its update (publish order = occurred_at
  // order here).
  ByBooking ReceivedByBooking() const {
    ByBooking by_booking;
    for (const ReceivedRequest& r : receiver_->Requests("/ordered")) {
      std::optional<Seen> s = Read(r);
      if (!s) {
        ADD_FAILURE() << "a request without webhook-sequence or booking: " << r.body;
        continue;
      }
      EXPECT_EQ(s->sequence, s->update) << s->booking;
      by_booking[s->booking].push_back(*s);
    }
    return by_booking;
  }

  // One request of a booking in flight at a time: each arrives after the
  // answer to the one before it was sent (its delay passed), not merely
  // after that one arrived.
  static void ExpectOneInFlight(const std::string& booking, const std::vector<Seen>& requests) {
    for (std::size_t i = 1; i < requests.size(); ++i) {
      EXPECT_GE(requests[i].at, requests[i - 1].answered)
          << booking << ": sequence " << requests[i].sequence << " arrived while sequence "
          << requests[i - 1].sequence << " was still in flight";
    }
  }

  // Every request's number is at most one more than the last one answered
  // 200, and the 200s come 1..5.
  static void ExpectInOrder(const std::string& booking, const std::vector<Seen>& requests) {
    ExpectOneInFlight(booking, requests);
    int64_t done_through = 0;
    std::vector<int64_t> succeeded;
    for (const Seen& s : requests) {
      EXPECT_LE(s.sequence, done_through + 1) << booking << ": sent before the one before it succeeded";
      if (s.status == 200 && s.sequence == done_through + 1) {
        ++done_through;
        succeeded.push_back(s.sequence);
      }
    }
    EXPECT_EQ(succeeded, (std::vector<int64_t>{1, 2, 3, 4, 5})) << booking;
  }

  // The doomed booking: its first delivery failed for good, and only then
  // did the later ones go, in order. Returns the first and last attempts of
  // its first delivery.
  static std::pair<Time, Time> ExpectDoomedHeadThenTheRest(const std::vector<Seen>& requests) {
    ExpectOneInFlight("the doomed booking", requests);
    Time first{}, last{};
    for (const Seen& s : requests) {
      if (s.sequence != 1) continue;
      if (first == Time{}) first = s.at;
      last = s.at;
    }
    EXPECT_NE(first, Time{}) << "the doomed head was never sent";
    int64_t next = 2;
    for (const Seen& s : requests) {
      if (s.sequence == 1) continue;
      EXPECT_GT(s.at, last) << "sequence " << s.sequence << " went before its head failed for good";
      EXPECT_LE(s.sequence, next) << "out of order";
      if (s.sequence == next && s.status == 200) ++next;
    }
    EXPECT_EQ(next, kUpdates + 1) << "the doomed booking's later deliveries did not all arrive";
    return {first, last};
  }

  // Not held back: the unordered webhook's deliveries all arrived while the
  // doomed head was still failing, and the other bookings moved on.
  void ExpectNothingElseHeldBack(std::pair<Time, Time> head, int total, const ByBooking& by_booking,
                                 const std::vector<std::string>& bookings) const {
    std::map<std::string, Time> plain;  // webhook-id -> first arrival
    for (const ReceivedRequest& r : receiver_->Requests("/unordered")) {
      EXPECT_FALSE(r.Header("webhook-sequence").has_value()) << "an unordered delivery carries webhook-sequence";
      plain.emplace(delivery_e2e::WebhookId(r), r.received_steady);
    }
    EXPECT_EQ(plain.size(), static_cast<std::size_t>(total));
    for (const auto& [id, at] : plain) {
      EXPECT_LT(at, head.second) << id << ": an unordered delivery waited for the failing ordered head";
    }
    int others_meanwhile = 0;
    for (const std::string& booking : bookings) {
      for (const Seen& s : by_booking.at(booking)) {
        if (s.sequence >= 2 && s.at > head.first && s.at < head.second) ++others_meanwhile;
      }
    }
    EXPECT_GT(others_meanwhile, 0) << "no other booking moved on while the doomed head was failing";
    std::cerr << "ordered test: " << receiver_->Count("/ordered") << " requests for " << total
              << " ordered deliveries; " << others_meanwhile
              << " of other bookings while the doomed head failed\n";
  }
};

TEST_F(OrderedFaultTest, EachResourceArrivesInOrderThroughFailuresAKillAndTwoReplicas) {
  ASSERT_TRUE(StartStack({.retry_schedule = "200ms,200ms,200ms",
                          .request_timeout = "2s",
                          .connect_timeout = "500ms",
                          .lease_margin = "1s",
                          .poll_interval = "100ms",
                          .min_retry_after = "1s",
                          .max_retry_after = "2s",
                          .allow_destination_cidrs = "127.0.0.0/8,::1/128",
                          .extra_args = {},
                          .replicas = 2}));

  std::vector<std::string> bookings;
  for (int i = 0; i < kResources; ++i) bookings.push_back(delivery_e2e::NewUuid());
  const std::string doomed = delivery_e2e::NewUuid();
  AnswerOrdered(bookings, doomed);
  receiver_->SetPlan("/unordered", {}, Reply(200));

  const e2e::Tenant tenant = NewTenant();
  auto ordered = stack_->CreateWebhook(
      tenant, absl::StrCat(R"({"event":"booking_update","url":)", delivery_e2e::Q(receiver_->Url("/ordered")),
                           R"(,"ordered":true})"));
  ASSERT_TRUE(ordered.ok()) << ordered.status();
  const CreatedWebhook unordered = Hook(tenant, "booking_update", receiver_->Url("/unordered"));
  auto shown = stack_->GetWebhookJson(tenant, ordered->id);
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_NE(shown->find(R"("ordered":true)"), std::string::npos) << *shown;
  auto shown_unordered = stack_->GetWebhookJson(tenant, unordered.id);
  ASSERT_TRUE(shown_unordered.ok()) << shown_unordered.status();
  EXPECT_NE(shown_unordered->find(R"("ordered":false)"), std::string::npos) << *shown_unordered;

  std::vector<std::string> all = bookings;
  all.push_back(doomed);
  PublishBursts(tenant, all);
  if (HasFatalFailure()) return;
  const int total = static_cast<int>(all.size()) * kUpdates;

  // The unordered webhook's deliveries arrive (checked below against the
  // doomed head's attempts); then a crash of the first replica midway, the
  // second going on meanwhile.
  ASSERT_TRUE(receiver_->WaitFor("/unordered", static_cast<std::size_t>(total), 30s)) << stack_->LogTails();
  ASSERT_TRUE(receiver_->WaitFor("/ordered", 30, 60s)) << stack_->LogTails();
  const testing::ExitInfo killed = stack_->KillDelivery();
  EXPECT_EQ(killed.signal, SIGKILL) << killed.ToString();
  ASSERT_TRUE(stack_->StartDelivery().ok()) << stack_->LogTails();

  const CreatedWebhook hook{ordered->id, ordered->secret, ordered->url};
  const bool done = Eventually(
      [&] {
        return CountInState(hook, "succeeded") == total - 1 && CountInState(hook, "failed") == 1 &&
               CountInState(unordered, "succeeded") == total;
      },
      90s, 200ms);
  ASSERT_TRUE(done) << CountInState(hook, "succeeded") << " succeeded, " << CountInState(hook, "failed")
                    << " failed of " << total << "; unordered " << CountInState(unordered, "succeeded");

  const ByBooking by_booking = ReceivedByBooking();
  ASSERT_EQ(by_booking.size(), all.size());
  for (const std::string& booking : bookings) ExpectInOrder(booking, by_booking.at(booking));
  const std::pair<Time, Time> head = ExpectDoomedHeadThenTheRest(by_booking.at(doomed));
  ExpectNothingElseHeldBack(head, total, by_booking, bookings);
}

}  // namespace
}  // namespace octo::faults
