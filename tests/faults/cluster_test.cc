// A cluster on one machine (docs/operations.md, "Running several replicas on
// one machine"): three octo-delivery replicas, two octo-subscription
// replicas and two gateways on one PostgreSQL, all on 127.0.0.1.
//
// Failover under load: 20,000 events × 5 webhooks = 100,000 deliveries
// (4,000 × 5 under AddressSanitizer), published over gRPC
// (EventService.PublishEvents, batches of 200, paced at 1,000 events/s,
// alternating between the subscription replicas, each of which spreads its
// Enqueue calls round-robin over the delivery replicas). Mid-run, kill -9
// of subscription replica 1 at a quarter of the events accepted (not
// restarted: publishing goes on through replica 0, and the gateways' channels
// skip the dead address), of delivery replica 1 at 30% of the deliveries
// received (not restarted: the two others take over its expired leases and
// its share of the queue) and of gateway 1 at 50% (restarted at once on its
// port, as a supervisor would). A client polls GET /octo/webhooks on each
// gateway throughout.
// Checks: before the delivery kill, every delivery replica has handled
// Enqueue calls (round_robin, docs/decisions.md: with pick_first all would
// go to one) and the one to be killed has made attempts; every accepted
// event is delivered to each of its 5 webhooks (every expected webhook-id
// arrives at the 127.0.0.1 receiver, nothing else does); a webhook-id
// received twice has the same body each time; publishing went on after the
// subscription kill; the surviving gateway has no outage (≥ 2 consecutive
// failed polls, RestPoller) longer than kSurvivorWindow through the three
// kills, and the killed one none longer than kRestartWindow (its restart
// included). Prints the figures (delivered, duplicates, per-replica
// share, failure windows, wall time, rate). The full 100,000 fit the 400-s
// bound: 33-99 s from the first publish to the last delivery on the 2-core
// machine under load (figures in docs/operations.md).
//
// Per-webhook limits hold per replica (docs/decisions.md): with
// max_concurrency N and 3 replicas the receiver sees at most 3 N requests
// of the webhook at once (PerWebhookConcurrencyHoldsPerReplica).
#include <chrono>
#include <csignal>
#include <functional>
#include <iomanip>
#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/faults/cluster_probe.h"
#include "tests/faults/fault_fixture.h"

namespace octo::faults {
namespace {

namespace v1 = ::octo::webhooks::v1;
using testing::Reply;
using Clock = std::chrono::steady_clock;

constexpr int kDeliveryReplicas = 3;
constexpr int kSubscriptionReplicas = 2;
constexpr int kGatewayReplicas = 2;
constexpr int kWebhooks = 5;
#if defined(__SANITIZE_ADDRESS__)
constexpr int kEvents = 4000;               // the sanitizer run: every service 2-3× slower
constexpr auto kRestartWindow = 5000ms;     // a gateway start under the sanitizer
#else
constexpr int kEvents = 20000;              // × kWebhooks deliveries
constexpr auto kRestartWindow = 2000ms;     // a gateway restart: ~0.1 s measured
#endif
constexpr int kEventsPerSecond = 1000;      // 20 s of publishing (28-53 s measured under load)
constexpr int kKilledSubscription = 1;      // not restarted
constexpr int kKilledDelivery = 1;          // not restarted
constexpr int kKilledGateway = 1;           // restarted at once
constexpr auto kReplyDelay = 20ms;          // so that hundreds are in flight at a kill
// The longest outage allowed on a gateway outside its own restart: as long as
// one poll may take (RestPoller::kPollTimeout) on the loaded 2-core machine;
// docs/operations.md.
constexpr auto kSurvivorWindow = 5000ms;
constexpr auto kDrain = 240s;
// At most --max_in_flight (1000) claims of the killed replica are sent again,
// plus requests timed out on a loaded machine and retried.
constexpr int kMaxDuplicates = 2000;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class ClusterTest : public FaultTest {
 protected:
  bool StartCluster(int subscriptions, int gateways) {
    return StartStack({.retry_schedule = "200ms,300ms,300ms",
                       .request_timeout = "2s",
                       .connect_timeout = "1s",
                       .lease_margin = "1s",
                       .poll_interval = "100ms",
                       .min_retry_after = "1s",
                       .max_retry_after = "2s",
                       .allow_destination_cidrs = "127.0.0.0/8,::1/128",
                       .extra_args = {},
                       .replicas = kDeliveryReplicas},
                      subscriptions, gateways);
  }

  // A publisher stub per subscription replica.
  std::vector<std::unique_ptr<v1::EventService::Stub>> PublisherStubs() {
    std::vector<std::unique_ptr<v1::EventService::Stub>> stubs;
    for (int i = 0; i < stack_->base().subscription_replicas(); ++i) {
      stubs.push_back(v1::EventService::NewStub(stack_->base().callers().Channel(
          absl::StrCat("127.0.0.1:", stack_->base().subscription_port(i)), "publisher")));
    }
    return stubs;
  }

  static PacedPublisher::BatchMaker Batches(const e2e::Tenant& tenant, const std::string& prefix) {
    return [tenant, prefix](int first, int count) {
      v1::PublishEventsRequest batch;
      for (int i = first; i < first + count; ++i) {
        const std::string resource = absl::StrCat(R"({"id":")", prefix, "-", i, R"(","uuid":")",
                                                  delivery_e2e::NewUuid(), R"(","status":"CONFIRMED"})");
        *batch.add_events() = delivery_e2e::Event(tenant, "booking_update", resource,
                                                  absl::StrCat(prefix, "-", i));
      }
      return batch;
    };
  }

  std::string HookIdList(const std::vector<CreatedWebhook>& hooks) const {
    std::vector<std::string> quoted;
    for (const CreatedWebhook& hook : hooks) quoted.push_back(SqlQuote(hook.id));
    return absl::StrCat("(", absl::StrJoin(quoted, ","), ")");
  }

  int Succeeded(const std::vector<CreatedWebhook>& hooks) const {
    return std::stoi(db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE state = 'succeeded' AND "
                                              "webhook_id IN ",
                                              HookIdList(hooks))));
  }

  // Attempts recorded by each delivery replica (octo_delivery_attempts_total),
  // the killed one's as last read before the kill.
  std::vector<double> attempts_by_replica_ = std::vector<double>(kDeliveryReplicas, 0);

  void ReadReplicaAttempts(int replica) {
    const double v = MetricSum(stack_->delivery_metrics_port(replica), "octo_delivery_attempts_total");
    if (v >= 0) attempts_by_replica_[static_cast<std::size_t>(replica)] = v;
  }

  // Waits until `done()`, reading the replica's attempts meanwhile so that
  // the last figure before a kill is kept.
  bool WaitWatching(const std::function<bool()>& done, int replica_to_watch) {
    return Eventually(
        [&] {
          ReadReplicaAttempts(replica_to_watch);
          return done();
        },
        180s, 100ms);
  }
  bool WaitForRequests(std::size_t n, int replica_to_watch) {
    return WaitWatching([&] { return receiver_->Count() >= n; }, replica_to_watch);
  }

  // Enqueue calls each delivery replica has answered
  // (grpc_server_handled_total{grpc_method="Enqueue"}; -1 when unreadable).
  std::vector<double> EnqueueCalls() const {
    std::vector<double> calls;
    for (int r = 0; r < kDeliveryReplicas; ++r) {
      calls.push_back(MetricSum(stack_->delivery_metrics_port(r), "grpc_server_handled_total",
                                R"(grpc_method="Enqueue")"));
    }
    return calls;
  }
};

// What one failover run measured, for the checks and the report.
struct FailoverRun {
  double wall_s = 0;
  double subscription_killed_s = 0;
  int accepted_at_subscription_kill = 0;
  std::vector<double> enqueue_calls;  // by delivery replica, before its kill
  double delivery_killed_s = 0;
  std::size_t received_at_delivery_kill = 0;
  int accepted_at_delivery_kill = 0;
  double gateway_killed_s = 0;
  double gateway_restart_ms = 0;
  double publish_s = 0;
  int publish_retries = 0;
  std::vector<RestPoller::Figures> gateways;
};

// What arrived against what was stored.
struct Arrivals {
  std::size_t expected = 0, received = 0, distinct = 0, duplicates = 0, missing = 0, unexpected = 0,
              different_bodies = 0;
  int interrupted = 0;  // attempt rows of error class `interrupted`
};

class ClusterFailoverTest : public ClusterTest {
 protected:
  static constexpr std::size_t kTotal = static_cast<std::size_t>(kEvents) * kWebhooks;

  // Publishes, kills subscription replica 1 at 25% of the events accepted,
  // delivery replica 1 at 30% of the deliveries received and gateway 1 at
  // 50% (restarting it), waits until every delivery succeeded. Fatal
  // failures end the test (check HasFatalFailure).
  void RunWithKills(const e2e::Tenant& tenant, const std::vector<CreatedWebhook>& hooks, FailoverRun& run) {
    std::vector<std::unique_ptr<RestPoller>> pollers;
    for (int g = 0; g < kGatewayReplicas; ++g) {
      pollers.push_back(std::make_unique<RestPoller>(stack_->base().gateway_port(g), tenant.api_key,
                                                     "/octo/webhooks", 50ms));
      pollers.back()->Start();
    }
    const Clock::time_point t0 = Clock::now();
    PacedPublisher publisher(PublisherStubs(), Batches(tenant, "cluster"), kEvents, 200, kEventsPerSecond);
    publisher.Start();

    ASSERT_TRUE(WaitWatching([&] { return publisher.accepted() >= kEvents / 4; }, kKilledDelivery))
        << publisher.accepted() << " events accepted\n"
        << stack_->LogTails();
    run.subscription_killed_s = Seconds(Clock::now() - t0);
    const testing::ExitInfo subscription_killed = stack_->base().KillSubscription(kKilledSubscription);
    EXPECT_EQ(subscription_killed.signal, SIGKILL) << subscription_killed.ToString();
    run.accepted_at_subscription_kill = publisher.accepted();

    ASSERT_TRUE(WaitForRequests(kTotal * 3 / 10, kKilledDelivery)) << receiver_->Count() << "\n"
                                                                    << stack_->LogTails();
    run.enqueue_calls = EnqueueCalls();
    for (int r = 0; r < kDeliveryReplicas; ++r) {
      EXPECT_GT(run.enqueue_calls[static_cast<std::size_t>(r)], 0)
          << "delivery replica " << r << " handled no Enqueue call: not round-robin";
    }
    EXPECT_GT(attempts_by_replica_[kKilledDelivery], 0) << "the replica to be killed had made no attempt";
    run.delivery_killed_s = Seconds(Clock::now() - t0);
    const testing::ExitInfo killed = stack_->KillDelivery(kKilledDelivery);
    EXPECT_EQ(killed.signal, SIGKILL) << killed.ToString();
    run.received_at_delivery_kill = receiver_->Count();
    run.accepted_at_delivery_kill = publisher.accepted();

    ASSERT_TRUE(WaitForRequests(kTotal / 2, 0)) << receiver_->Count() << "\n" << stack_->LogTails();
    const testing::ExitInfo gateway_killed = stack_->base().KillGateway(kKilledGateway);
    EXPECT_EQ(gateway_killed.signal, SIGKILL) << gateway_killed.ToString();
    const Clock::time_point gateway_down = Clock::now();
    run.gateway_killed_s = Seconds(gateway_down - t0);
    ASSERT_TRUE(stack_->base().StartGateway(kKilledGateway).ok()) << stack_->LogTails();
    run.gateway_restart_ms = 1000 * Seconds(Clock::now() - gateway_down);

    publisher.Join();
    run.publish_s = publisher.seconds();
    run.publish_retries = publisher.retried_calls();
    EXPECT_EQ(publisher.lost_batches(), 0);
    ASSERT_EQ(publisher.accepted(), kEvents) << "events accepted";
    const bool drained =
        Eventually([&] { return Succeeded(hooks) == static_cast<int>(kTotal); }, kDrain, 500ms);
    run.wall_s = Seconds(Clock::now() - t0);
    for (auto& poller : pollers) {
      poller->Stop();
      run.gateways.push_back(poller->figures());
    }
    ASSERT_TRUE(drained) << Succeeded(hooks) << " of " << kTotal << " succeeded\n" << stack_->LogTails();
    for (int r = 0; r < kDeliveryReplicas; ++r) {
      if (r != kKilledDelivery) ReadReplicaAttempts(r);
    }
  }

  Arrivals CountArrivals(const std::vector<CreatedWebhook>& hooks) const {
    Arrivals a;
    std::set<std::string> expected;
    for (const CreatedWebhook& hook : hooks) {
      for (std::string& id : MessageIds(hook)) expected.insert(std::move(id));
    }
    a.expected = expected.size();
    std::set<std::string> arrived;
    for (int i = 0; i < kWebhooks; ++i) {
      for (const auto& [id, requests] : ReceivedById(absl::StrCat("/cluster/", i))) {
        a.received += requests.size();
        a.duplicates += requests.size() - 1;
        if (expected.count(id) == 0) ++a.unexpected;
        arrived.insert(id);
        for (const ReceivedRequest& r : requests) a.different_bodies += r.body != requests.front().body ? 1 : 0;
      }
    }
    a.distinct = arrived.size();
    for (const std::string& id : expected) a.missing += arrived.count(id) == 0 ? 1 : 0;
    a.interrupted = std::stoi(db().Scalar(absl::StrCat(
        "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE a.error_class = 'interrupted' AND d.webhook_id IN ",
        HookIdList(hooks))));
    return a;
  }

  void Print(const FailoverRun& run, const Arrivals& a) const {
    double attempts = 0;
    for (double v : attempts_by_replica_) attempts += v;
    std::cerr << std::fixed << std::setprecision(1) << "cluster failover: " << kDeliveryReplicas << " delivery, "
              << kSubscriptionReplicas << " subscription, " << kGatewayReplicas << " gateway replicas\n"
              << "  deliveries " << kTotal << " (" << kEvents << " events x " << kWebhooks << " webhooks), received "
              << a.received << ", distinct " << a.distinct << ", duplicates " << a.duplicates << ", missing "
              << a.missing << "\n"
              << "  wall " << run.wall_s << " s (publish " << run.publish_s << " s, " << run.publish_retries
              << " publish calls retried), " << kTotal / run.wall_s << " deliveries/s\n"
              << "  subscription replica " << kKilledSubscription << " killed at " << run.subscription_killed_s
              << " s (" << run.accepted_at_subscription_kill << " events accepted), not restarted\n"
              << "  delivery replica " << kKilledDelivery << " killed at " << run.delivery_killed_s << " s ("
              << run.received_at_delivery_kill << " received, " << run.accepted_at_delivery_kill
              << " events accepted), not restarted\n"
              << "  gateway " << kKilledGateway << " killed at " << run.gateway_killed_s
              << " s, listening again after " << run.gateway_restart_ms << " ms\n"
              << "  claims interrupted by the kill (attempt log, error class interrupted): " << a.interrupted
              << "\n";
    for (int r = 0; r < kDeliveryReplicas; ++r) {
      const double v = attempts_by_replica_[static_cast<std::size_t>(r)];
      std::cerr << "  delivery replica " << r << ": " << v << " attempts recorded ("
                << (attempts > 0 ? 100 * v / attempts : 0) << "%), "
                << (r < static_cast<int>(run.enqueue_calls.size()) ? run.enqueue_calls[static_cast<std::size_t>(r)] : 0)
                << " Enqueue calls handled before the delivery kill"
                << (r == kKilledDelivery ? ", until its kill" : "") << "\n";
    }
    for (std::size_t g = 0; g < run.gateways.size(); ++g) {
      const RestPoller::Figures& f = run.gateways[g];
      std::cerr << "  gateway " << g
                << (static_cast<int>(g) == kKilledGateway ? " (killed, restarted)" : " (survivor)") << ": "
                << f.requests << " GET /octo/webhooks, " << f.answered_2xx << " 2xx, " << f.failures
                << " failed (5xx or no answer; " << f.isolated_failures
                << " isolated), longest outage (>= 2 failed in a row) " << f.longest_failure_window_ms << " ms\n";
    }
  }
};

TEST_F(ClusterFailoverTest, KillAReplicaOfEachServiceUnderLoadLosesNothing) {
  ASSERT_TRUE(StartCluster(kSubscriptionReplicas, kGatewayReplicas));
  receiver_->SetDefaultAnswer(Reply(200).Delay(kReplyDelay));
  const e2e::Tenant tenant = NewTenant();
  std::vector<CreatedWebhook> hooks;
  for (int i = 0; i < kWebhooks; ++i) {
    hooks.push_back(Hook(tenant, "booking_update", receiver_->Url(absl::StrCat("/cluster/", i))));
  }
  ASSERT_FALSE(HasFailure());
  FailoverRun run;
  RunWithKills(tenant, hooks, run);
  if (HasFatalFailure()) return;

  // Every delivery of every accepted event arrived; nothing else did; a
  // webhook-id seen twice had the same body each time. Duplicates come from
  // the killed replica's claims, taken over once their leases expired (and
  // from requests timed out on a loaded machine and retried).
  const Arrivals a = CountArrivals(hooks);
  EXPECT_EQ(a.expected, kTotal) << "deliveries stored for the accepted events";
  EXPECT_EQ(a.missing, 0u) << "expected webhook-ids that never arrived";
  EXPECT_EQ(a.unexpected, 0u) << "webhook-ids that were never stored";
  EXPECT_EQ(a.different_bodies, 0u) << "a webhook-id received with two different bodies";
  EXPECT_LE(a.duplicates, static_cast<std::size_t>(kMaxDuplicates))
      << "more duplicates than the killed replica could have had in flight";

  // Publishing went on through the surviving subscription replica.
  EXPECT_LT(run.accepted_at_subscription_kill, kEvents) << "publishing had ended before the subscription kill";

  // REST through the gateways: the survivor never failed for long (through
  // the subscription and delivery kills), the killed one came back at once
  // (and was never out for long otherwise either); no 4xx anywhere (a wrong
  // answer, not an outage).
  ASSERT_EQ(run.gateways.size(), static_cast<std::size_t>(kGatewayReplicas));
  for (const RestPoller::Figures& f : run.gateways) {
    EXPECT_EQ(f.answered_4xx, 0) << "GET /octo/webhooks answered 4xx";
    EXPECT_GT(f.answered_2xx, 0);
  }
  const RestPoller::Figures& survivor = run.gateways[0];
  EXPECT_LE(survivor.longest_failure_window_ms, static_cast<double>(kSurvivorWindow.count()))
      << survivor.failures << " failures on the surviving gateway";
  static_assert(kRestartWindow <= kSurvivorWindow);
  EXPECT_LE(run.gateways[kKilledGateway].longest_failure_window_ms, static_cast<double>(kRestartWindow.count()))
      << "the killed gateway was out for longer than its restart bound";
  Print(run, a);
}

// max_concurrency 2 on a webhook whose endpoint answers in 400 ms, three
// delivery replicas: each replica keeps to 2 at once, so the receiver sees
// at most 6, and (the limit not being shared) more than 2.
TEST_F(ClusterTest, PerWebhookConcurrencyHoldsPerReplica) {
  constexpr int kLimit = 2;
  constexpr int kDeliveries = 100;
  constexpr auto kDelay = 400ms;
  ASSERT_TRUE(StartCluster(1, 1));
  receiver_->SetPlan("/limited", {}, Reply(200).Delay(kDelay));
  const e2e::Tenant tenant = NewTenant();
  auto hook = stack_->CreateWebhook(tenant, absl::StrCat(R"({"event":"booking_update","url":)",
                                                         delivery_e2e::Q(receiver_->Url("/limited")),
                                                         R"(,"maxConcurrency":)", kLimit, "}"));
  ASSERT_TRUE(hook.ok()) << hook.status();
  ASSERT_EQ(Publish(tenant, kDeliveries, "limited"), kDeliveries);
  ASSERT_TRUE(Eventually([&] { return CountInState(*hook, "succeeded") == kDeliveries; }, 120s, 200ms))
      << CountInState(*hook, "succeeded") << " of " << kDeliveries << "\n"
      << stack_->LogTails();
  const int peak = PeakConcurrency(receiver_->Requests("/limited"), kDelay);
  std::cerr << "per-webhook concurrency: max_concurrency " << kLimit << ", " << kDeliveryReplicas
            << " replicas, peak seen by the receiver " << peak << "\n";
  EXPECT_LE(peak, kLimit * kDeliveryReplicas);
  EXPECT_GT(peak, kLimit) << "the limit held across replicas: docs/decisions.md says per replica";
}

}  // namespace
}  // namespace octo::faults
