// octo-bench-isolation: the slow-endpoint isolation benchmark
// (requirement 7). Not a test: scripts/bench-isolation.sh builds and runs it
// against a throwaway PostgreSQL.
//
// One run, the same fast workload in every phase (N events to W webhooks
// on the fast sink, published in batches), phases alternating:
//   baseline    the fast workload alone;
//   slow        the same, while another tenant's webhook points at a slow
//               sink (answers after --slow_delay_ms, with --slow_status) and
//               has a backlog of --slow_events deliveries all along (the
//               webhook is deleted afterwards, its deliveries with it);
// baseline, slow, baseline, slow, ..., baseline (--rounds slow phases), so
// that drift of a shared machine shows and averages out. Prints the fast
// deliveries/s of each phase, the ratio over all slow phases to all
// baselines, and the median per-round ratio. Everything on 127.0.0.1; every
// wait is bounded.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tests/perf/bench_stack.h"
#include "tests/perf/bench_workload.h"
#include "tests/perf/sink_server.h"

#ifndef OCTO_SUBSCRIPTION_BIN
#define OCTO_SUBSCRIPTION_BIN ""
#endif
#ifndef OCTO_DELIVERY_BIN
#define OCTO_DELIVERY_BIN ""
#endif
#ifndef OCTO_BENCH_SINK_BIN
#define OCTO_BENCH_SINK_BIN ""
#endif

ABSL_FLAG(std::string, database_url, "", "libpq conninfo of the (empty or migrated) database; required");
ABSL_FLAG(std::string, subscription_bin, OCTO_SUBSCRIPTION_BIN, "octo-subscription binary");
ABSL_FLAG(std::string, delivery_bin, OCTO_DELIVERY_BIN, "octo-delivery binary");
ABSL_FLAG(std::string, sink_bin, OCTO_BENCH_SINK_BIN, "octo-bench-sink binary (the fast sink)");
ABSL_FLAG(std::string, delivery_flags, "", "extra flags for octo-delivery, space-separated");
ABSL_FLAG(std::string, work_dir, "", "logs and port files; default: a new /tmp/octo-bench-isolation.*");
ABSL_FLAG(int, events, 10000, "fast events per phase (N)");
ABSL_FLAG(int, webhooks, 2, "fast webhooks that want every fast event (W)");
ABSL_FLAG(int, batch, 500, "events per PublishEvents call");
ABSL_FLAG(int, publishers, 4, "PublishEvents calls in flight");
ABSL_FLAG(int, slow_events, 3000, "slow phase: deliveries queued for the slow endpoint before the fast ones");
ABSL_FLAG(int, slow_delay_ms, 2000, "slow phase: the slow endpoint answers after this long");
ABSL_FLAG(int, slow_status, 200, "slow phase: ...with this status (e.g. 503: a slow failing endpoint)");
ABSL_FLAG(int, phase_timeout_s, 300, "give up a phase after this long");
ABSL_FLAG(int, rounds, 3, "slow phases, each between two baselines");

namespace octo::perf {
namespace {

namespace v1 = ::octo::webhooks::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr double kGoalRatio = 0.90;  // at most 10 % slower with the slow endpoint

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string RandomRunId() {
  std::random_device rd;
  return absl::StrFormat("%08x", rd());
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + 30s);
  return ctx;
}

struct PhaseResult {
  std::string name;
  std::uint64_t deliveries = 0;
  double seconds = 0;  // first publish -> last fast delivery received
  std::uint64_t slow_received = 0;
  double Rate() const { return seconds > 0 ? static_cast<double>(deliveries) / seconds : 0; }
};

// Publishes `events` fast events (phase letter `phase`) and waits until the
// fast sink has received every delivery they created.
absl::StatusOr<PhaseResult> RunFastPhase(const std::string& name, char phase, BenchStack& stack,
                                         const EventFactory& factory, int events, int batch, int publishers,
                                         std::chrono::seconds timeout, SinkServer* slow_sink) {
  PhaseResult r;
  r.name = name;
  SinkClient sink(stack.sink_port());
  if (absl::Status s = sink.Reset(); !s.ok()) return s;
  if (slow_sink != nullptr) slow_sink->ResetStats();
  Publisher publisher(stack.PublisherChannel(), factory, publishers, 60s);
  const int batches = (events + batch - 1) / batch;
  const auto t0 = Clock::now();
  for (int b = 0; b < batches; ++b) {
    const std::int64_t first = std::int64_t{b} * batch;
    publisher.Submit(phase, first, static_cast<int>(std::min<std::int64_t>(batch, events - first)), 0);
  }
  const auto deadline = t0 + timeout;
  for (;;) {
    const PublishStats p = publisher.Stats();
    const bool published = p.batches_ok + p.batches_failed >= static_cast<std::uint64_t>(batches);
    if (p.batches_failed > 0) return absl::InternalError(absl::StrCat("publishing failed: ", p.first_error));
    absl::StatusOr<SinkStats> s = sink.Stats();
    if (!s.ok()) return s.status();
    if (published && s->requests >= p.deliveries) {
      r.seconds = Seconds(Clock::now() - t0);
      r.deliveries = p.deliveries;
      break;
    }
    if (Clock::now() > deadline) {
      publisher.Abandon();
      return absl::DeadlineExceededError(
          absl::StrCat(name, ": the fast sink received ", s->requests, " of ", p.deliveries, " in time"));
    }
    std::this_thread::sleep_for(10ms);
  }
  publisher.Finish();
  if (slow_sink != nullptr) {
    const std::string stats = slow_sink->StatsJson();
    // "requests":N, without a JSON parser for one number.
    const auto at = stats.find("\"requests\":");
    if (at != std::string::npos) r.slow_received = std::strtoull(stats.c_str() + at + 11, nullptr, 10);
  }
  return r;
}

int Run() {
  BenchStackOptions options;
  options.database_url = absl::GetFlag(FLAGS_database_url);
  options.subscription_bin = absl::GetFlag(FLAGS_subscription_bin);
  options.delivery_bin = absl::GetFlag(FLAGS_delivery_bin);
  options.sink_bin = absl::GetFlag(FLAGS_sink_bin);
  options.delivery_flags = absl::StrSplit(absl::GetFlag(FLAGS_delivery_flags), ' ', absl::SkipWhitespace());
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  const int events = absl::GetFlag(FLAGS_events);
  const int webhooks = absl::GetFlag(FLAGS_webhooks);
  const int batch = absl::GetFlag(FLAGS_batch);
  const int publishers = absl::GetFlag(FLAGS_publishers);
  const int slow_events = absl::GetFlag(FLAGS_slow_events);
  const int slow_delay_ms = absl::GetFlag(FLAGS_slow_delay_ms);
  const int slow_status = absl::GetFlag(FLAGS_slow_status);
  const std::chrono::seconds timeout(absl::GetFlag(FLAGS_phase_timeout_s));
  const int rounds = absl::GetFlag(FLAGS_rounds);
  if (options.database_url.empty() || options.subscription_bin.empty() || options.delivery_bin.empty() ||
      options.sink_bin.empty()) {
    std::fprintf(stderr, "octo-bench-isolation: --database_url and the binaries are required\n");
    return 2;
  }
  if (events < 1 || events > 1'000'000 || webhooks < 1 || webhooks > 50 || batch < 1 || batch > 500 ||
      publishers < 1 || publishers > 64 || slow_events < 1 || slow_events > 100'000 || slow_delay_ms < 0 ||
      slow_delay_ms > 600'000 || slow_status < 200 || slow_status > 599 || timeout.count() < 1 || rounds < 1 || rounds > 20) {
    std::fprintf(stderr, "octo-bench-isolation: a flag is out of range (see --help)\n");
    return 2;
  }
  if (options.work_dir.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "octo-bench-isolation.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return 1;
    options.work_dir = pattern;
  }

  BenchStack stack(options);
  if (absl::Status s = stack.Start(); !s.ok()) {
    std::fprintf(stderr, "octo-bench-isolation: start: %s\n", s.ToString().c_str());
    return 1;
  }
  // The slow endpoint: another host:port, as another partner's server is.
  absl::StatusOr<std::unique_ptr<SinkServer>> slow_sink = SinkServer::Start({.listen_port = 0, .threads = 2});
  if (!slow_sink.ok()) {
    std::fprintf(stderr, "octo-bench-isolation: slow sink: %s\n", slow_sink.status().ToString().c_str());
    return 1;
  }
  const std::vector<std::string> capabilities = {"octo/pricing"};
  absl::StatusOr<Tenant> fast = CreateTenant(stack.SubscriptionChannel(), stack.sink_port(), webhooks, capabilities);
  if (!fast.ok()) {
    std::fprintf(stderr, "octo-bench-isolation: setup: %s\n%s", fast.status().ToString().c_str(),
                 stack.LogTails().c_str());
    return 1;
  }
  auto subscriptions = v1::SubscriptionService::NewStub(stack.SubscriptionChannel());
  const std::string run_id = RandomRunId();
  EventFactory fast_factory(fast->supplier_id, run_id, 0);
  std::printf("isolation benchmark: %d rounds; per phase N=%d events x W=%d fast webhooks; slow endpoint: %d "
              "queued deliveries answered after %d ms with %d; run %s\n",
              rounds, events, webhooks, slow_events, slow_delay_ms, slow_status, run_id.c_str());
  std::fflush(stdout);

  int rc = 0;
  std::vector<PhaseResult> baselines, slows;
  char next_phase = 'a';  // idempotency keys: a letter per phase
  auto run = [&](const std::string& name, SinkServer* slow_sink_or_null) -> std::optional<PhaseResult> {
    absl::StatusOr<PhaseResult> r = RunFastPhase(name, next_phase++, stack, fast_factory, events, batch, publishers,
                                                 timeout, slow_sink_or_null);
    if (!r.ok()) {
      std::fprintf(stderr, "octo-bench-isolation: %s\n%s", r.status().ToString().c_str(), stack.LogTails().c_str());
      rc = 1;
      return std::nullopt;
    }
    std::printf("   %-10s fast deliveries/s %8.0f  (%llu in %.2f s)%s\n", name.c_str(), r->Rate(),
                static_cast<unsigned long long>(r->deliveries), r->seconds,
                slow_sink_or_null != nullptr
                    ? absl::StrCat("; the slow endpoint received ", r->slow_received, " meanwhile").c_str()
                    : "");
    std::fflush(stdout);
    return *r;
  };
  // Another tenant's webhook on the slow sink, with `slow_events`
  // deliveries queued; nullopt (rc set) on failure.
  auto add_slow_backlog = [&](int round) -> std::optional<Tenant> {
    absl::StatusOr<Tenant> slow = CreateTenant(stack.SubscriptionChannel(), (*slow_sink)->port(), 1, capabilities);
    if (!slow.ok()) {
      std::fprintf(stderr, "octo-bench-isolation: setup: %s\n", slow.status().ToString().c_str());
      rc = 1;
      return std::nullopt;
    }
    // The slow webhook's URL scripts the slow sink's answer.
    v1::UpdateWebhookRequest update;
    update.set_connection_id(slow->connection_id);
    update.set_webhook_id(slow->webhook_ids.front());
    update.set_url(absl::StrCat("http://127.0.0.1:", (*slow_sink)->port(), "/delay/", slow_delay_ms, "/status/",
                                slow_status, "/slow"));
    v1::Webhook updated;
    if (const grpc::Status s = subscriptions->UpdateWebhook(Context().get(), update, &updated); !s.ok()) {
      std::fprintf(stderr, "octo-bench-isolation: UpdateWebhook: %s\n", s.error_message().c_str());
      rc = 1;
      return std::nullopt;
    }
    EventFactory slow_factory(slow->supplier_id, absl::StrCat(run_id, "-slow", round), 0);
    Publisher slow_publisher(stack.PublisherChannel(), slow_factory, 2, 60s);
    for (int first = 0; first < slow_events; first += batch) {
      slow_publisher.Submit('s', first, std::min(batch, slow_events - first), 0);
    }
    slow_publisher.Finish();
    if (slow_publisher.Stats().batches_failed > 0) {
      std::fprintf(stderr, "octo-bench-isolation: publishing the slow backlog failed: %s\n",
                   slow_publisher.Stats().first_error.c_str());
      rc = 1;
      return std::nullopt;
    }
    return *slow;
  };

  // baseline, (slow, baseline) x rounds: each slow phase between two
  // baselines, so that drift of a shared machine shows and averages out.
  if (std::optional<PhaseResult> first = run("baseline", nullptr)) baselines.push_back(*first);
  for (int round = 1; round <= rounds && rc == 0; ++round) {
    std::optional<Tenant> slow = add_slow_backlog(round);
    if (!slow) break;
    std::optional<PhaseResult> with_slow = run("slow", slow_sink->get());
    // Gone with its deliveries (the webhooks' delete trigger): the next baseline runs alone.
    v1::DeleteWebhookRequest del;
    del.set_connection_id(slow->connection_id);
    del.set_webhook_id(slow->webhook_ids.front());
    v1::Webhook deleted;
    (void)subscriptions->DeleteWebhook(Context().get(), del, &deleted);
    if (!with_slow) break;
    slows.push_back(*with_slow);
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(slow_delay_ms), std::chrono::milliseconds(15000)) +
                                1s);  // its in-flight requests end
    std::optional<PhaseResult> after = run("baseline", nullptr);
    if (!after) break;
    baselines.push_back(*after);
  }
  if (rc == 0 && !slows.empty() && baselines.size() == slows.size() + 1) {
    auto rate = [](const std::vector<PhaseResult>& phases) {
      double deliveries = 0, seconds = 0;
      for (const PhaseResult& p : phases) {
        deliveries += static_cast<double>(p.deliveries);
        seconds += p.seconds;
      }
      return seconds > 0 ? deliveries / seconds : 0;
    };
    std::vector<double> ratios;
    for (std::size_t i = 0; i < slows.size(); ++i) {
      const double around = (baselines[i].Rate() + baselines[i + 1].Rate()) / 2;
      ratios.push_back(around > 0 ? slows[i].Rate() / around : 0);
    }
    std::sort(ratios.begin(), ratios.end());
    const double median = ratios[ratios.size() / 2];
    const double overall = rate(baselines) > 0 ? rate(slows) / rate(baselines) : 0;
    std::printf("\n== summary\n   fast deliveries/s, all phases: with the slow endpoint %.0f, without %.0f: ratio "
                "%.3f\n   per round (slow / mean of the baselines around it), median of %zu: %.3f   goal >= %.2f "
                "(at most 10 %% slower): %s\n",
                rate(slows), rate(baselines), overall, ratios.size(), median, kGoalRatio,
                overall >= kGoalRatio ? "MET" : "NOT MET");
  }
  (*slow_sink)->Stop();
  if (absl::Status s = stack.Stop(); !s.ok()) std::printf("   warning: %s\n", std::string(s.message()).c_str());
  std::printf("   logs: %s\n", options.work_dir.c_str());
  return rc;
}

}  // namespace
}  // namespace octo::perf

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the slow-endpoint isolation benchmark; run it with scripts/bench-isolation.sh");
  absl::ParseCommandLine(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  return octo::perf::Run();
}
