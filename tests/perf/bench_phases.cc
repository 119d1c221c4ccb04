#include "tests/perf/bench_phases.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/perf/single_publish.h"
#include "tests/perf/sink_server.h"

namespace octo::perf {

using namespace std::chrono_literals;

absl::Status Bench::WaitReceived(PhaseResult& r, Clock::time_point t0, Clock::time_point deadline,
                                 const std::function<bool()>& done,
                                 const std::function<std::uint64_t()>& want,
                                 std::vector<std::pair<double, std::uint64_t>>* samples) {
  for (;;) {
    absl::StatusOr<SinkStats> s = sink_.Stats();
    if (!s.ok()) return s.status();
    const auto now = Clock::now();
    r.received = s->requests;
    if (samples != nullptr) samples->emplace_back(Seconds(now - t0), s->requests);
    const bool published = done();
    if (published && s->requests >= want()) {
      r.received_seconds = Seconds(now - t0);
      return absl::OkStatus();
    }
    if (now > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the sink received ", s->requests, " of ", want(), " deliveries in time",
                       published ? "" : " (publishing had not finished)"));
    }
    std::this_thread::sleep_for(20ms);
  }
}

absl::Status Bench::WaitRecorded(PhaseResult& r, std::int64_t baseline, Clock::time_point t0) {
  const auto deadline = Clock::now() + config_.drain_timeout;
  for (;;) {
    absl::StatusOr<std::int64_t> n = db_.CountAttempts();
    if (!n.ok()) return n.status();
    const auto now = Clock::now();
    r.recorded = *n - baseline;
    if (r.recorded >= static_cast<std::int64_t>(r.deliveries_expected)) {
      r.recorded_seconds = Seconds(now - t0);
      return absl::OkStatus();
    }
    if (now > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(r.recorded, " of ", r.deliveries_expected,
                                                      " attempts recorded in delivery_attempts in time"));
    }
    std::this_thread::sleep_for(20ms);
  }
}

absl::Status Bench::Finish(PhaseResult& r, const DbCounts& before, const CpuTimes& cpu_before,
                           Clock::time_point t0) {
  r.cpu = CpuDelta(cpu_before, SampleStackCpu());
  r.wall_seconds = Seconds(Clock::now() - t0);
  if (statements_) {
    absl::StatusOr<std::vector<StatementStat>> top = db_.TopStatements(config_.top_statements);
    if (top.ok()) r.statements = std::move(*top);
  }
  absl::StatusOr<SinkStats> s = sink_.Stats();
  if (!s.ok()) return s.status();
  r.sink = *s;
  r.received = s->requests;
  if (s->requests > 0) {
    r.avg_body_bytes = static_cast<double>(s->body_bytes) / static_cast<double>(s->requests);
  }
  absl::StatusOr<DbCounts> c = db_.Counts();
  if (!c.ok()) return c.status();
  r.db = *c;
  r.db.attempts -= before.attempts;
  r.db.ok_attempts -= before.ok_attempts;
  r.db.deliveries -= before.deliveries;
  r.db.succeeded -= before.succeeded;
  r.db.pending -= before.pending;
  r.db.failed -= before.failed;
  r.db.events -= before.events;
  return absl::OkStatus();
}

absl::StatusOr<PhaseResult> Bench::Throughput(const std::string& name, const EventFactory* factory,
                                              char letter) {
  PhaseResult r;
  r.name = name;
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  if (absl::Status s = db_.StartPhase(); !s.ok()) return s;
  absl::StatusOr<DbCounts> before = db_.Counts();
  if (!before.ok()) return before.status();
  const CpuTimes cpu_before = SampleStackCpu();

  const int batches = (config_.events + config_.batch - 1) / config_.batch;
  Publisher publisher(stack_.PublisherChannel(), factory != nullptr ? *factory : factory_, config_.publishers,
                      60s);
  const auto t0 = Clock::now();
  for (int b = 0; b < batches; ++b) {
    const std::int64_t first = std::int64_t{b} * config_.batch;
    publisher.Submit(letter, first, static_cast<int>(std::min<std::int64_t>(config_.batch, config_.events - first)), 0);
  }
  std::optional<double> publish_seconds;
  auto done = [&] {
    const PublishStats p = publisher.Stats();
    if (p.batches_ok + p.batches_failed < static_cast<std::uint64_t>(batches)) return false;
    if (!publish_seconds) publish_seconds = Seconds(Clock::now() - t0);
    return true;
  };
  auto want = [&]() -> std::uint64_t {
    const PublishStats p = publisher.Stats();
    return p.batches_ok + p.batches_failed < static_cast<std::uint64_t>(batches)
               ? static_cast<std::uint64_t>(config_.events) * config_.webhooks
               : p.deliveries;
  };
  std::vector<std::pair<double, std::uint64_t>> samples;
  absl::Status received = WaitReceived(r, t0, t0 + config_.throughput_timeout, done, want, &samples);
  if (!received.ok()) publisher.Abandon();
  publisher.Finish();
  r.publish = publisher.Stats();
  r.publish_seconds = publish_seconds.value_or(Seconds(Clock::now() - t0));
  r.events_accepted = r.publish.events;
  r.deliveries_expected = r.publish.deliveries;
  absl::Status recorded = received.ok() ? WaitRecorded(r, before->attempts, t0) : received;
  // Steady rate: received between 10 % and 90 % of the expected deliveries.
  const double lo = 0.1 * static_cast<double>(r.deliveries_expected);
  const double hi = 0.9 * static_cast<double>(r.deliveries_expected);
  std::optional<std::pair<double, std::uint64_t>> a, b;
  for (const auto& sample : samples) {
    if (!a && static_cast<double>(sample.second) >= lo) a = sample;
    if (!b && static_cast<double>(sample.second) >= hi) b = sample;
  }
  if (a && b && b->first > a->first) {
    r.steady_rate = static_cast<double>(b->second - a->second) / (b->first - a->first);
  }
  if (absl::Status s = Finish(r, *before, cpu_before, t0); !s.ok()) return s;
  if (r.publish.batches_failed > 0) {
    r.problem = absl::StrCat(r.publish.batches_failed, " batches failed: ", r.publish.first_error);
  } else if (!recorded.ok()) {
    r.problem = std::string(recorded.message());
  } else if (r.deliveries_expected != static_cast<std::uint64_t>(config_.events) * config_.webhooks) {
    r.problem = absl::StrCat("the service reported ", r.deliveries_expected, " deliveries, not N*W = ",
                             static_cast<std::uint64_t>(config_.events) * config_.webhooks);
  }
  r.complete = r.problem.empty();
  return r;
}

absl::StatusOr<PhaseResult> Bench::Latency(const std::string& name, int rate, int seconds,
                                           int interval_ms) {
  PhaseResult r;
  r.name = name;
  r.rate = rate;
  r.seconds = seconds;
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  if (absl::Status s = db_.StartPhase(); !s.ok()) return s;
  absl::StatusOr<DbCounts> before = db_.Counts();
  if (!before.ok()) return before.status();
  const CpuTimes cpu_before = SampleStackCpu();

  const auto interval = std::chrono::milliseconds(interval_ms);
  const int per_batch = std::max(1, static_cast<int>(std::lround(rate * interval_ms / 1000.0)));
  const int batches = std::max(1, seconds * 1000 / interval_ms);
  r.batch_events = per_batch;
  Publisher publisher(stack_.PublisherChannel(), factory_, config_.rate_workers, 30s);
  const auto t0 = Clock::now();
  const std::int64_t t0_ns = RealtimeNs();
  for (int k = 0; k < batches; ++k) {
    std::this_thread::sleep_until(t0 + k * interval);
    const std::int64_t scheduled_ns =
        t0_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(k * interval).count();
    publisher.Submit(latency_phase_letter_, std::int64_t{k} * per_batch, per_batch, scheduled_ns);
    if (publisher.failed()) break;
  }
  std::optional<double> publish_seconds;  // the first publish to the last answer
  auto done = [&] {
    const PublishStats p = publisher.Stats();
    if (p.batches_ok + p.batches_failed < static_cast<std::uint64_t>(batches) && p.batches_failed == 0) {
      return false;
    }
    if (!publish_seconds) publish_seconds = Seconds(Clock::now() - t0);
    return true;
  };
  auto want = [&]() -> std::uint64_t { return publisher.Stats().deliveries; };
  absl::Status received = WaitReceived(r, t0, Clock::now() + config_.drain_timeout, done, want, nullptr);
  ++latency_phase_letter_;  // the next latency run publishes other keys
  if (!received.ok()) publisher.Abandon();
  publisher.Finish();
  r.publish = publisher.Stats();
  r.publish_seconds = publish_seconds.value_or(Seconds(Clock::now() - t0));
  r.events_accepted = r.publish.events;
  r.deliveries_expected = r.publish.deliveries;
  absl::Status recorded = received.ok() ? WaitRecorded(r, before->attempts, t0) : received;
  if (absl::Status s = Finish(r, *before, cpu_before, t0); !s.ok()) return s;
  if (r.publish.batches_failed > 0) {
    r.problem = absl::StrCat(r.publish.batches_failed, " batches failed: ", r.publish.first_error);
  } else if (!recorded.ok()) {
    r.problem = std::string(recorded.message());
  }
  r.complete = r.problem.empty();
  return r;
}

absl::StatusOr<std::pair<PhaseResult, PhaseResult>> Bench::Split(int events,
                                                                   const std::string& name) {
  PhaseResult enqueue;
  enqueue.name = name + ": enqueue only";
  PhaseResult dispatch;
  dispatch.name = name + ": dispatch only";
  const char letter = name == "split" ? 's' : 'b';
  if (absl::Status s = stack_.RestartDelivery({"--dispatch=false"}); !s.ok()) return s;
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  if (absl::Status s = db_.StartPhase(); !s.ok()) return s;
  absl::StatusOr<DbCounts> before = db_.Counts();
  if (!before.ok()) return before.status();
  CpuTimes cpu_before = SampleStackCpu();

  // 1. Publish everything; nothing is sent.
  const int batches = (events + config_.batch - 1) / config_.batch;
  const auto t0 = Clock::now();
  {
    Publisher publisher(stack_.PublisherChannel(), factory_, config_.publishers, 60s);
    for (int b = 0; b < batches; ++b) {
      const std::int64_t first = std::int64_t{b} * config_.batch;
      publisher.Submit(letter, first, static_cast<int>(std::min<std::int64_t>(config_.batch, events - first)), 0);
    }
    publisher.Finish();
    enqueue.publish = publisher.Stats();
  }
  enqueue.publish_seconds = Seconds(Clock::now() - t0);
  enqueue.recorded_seconds = enqueue.publish_seconds;
  enqueue.events_accepted = enqueue.publish.events;
  enqueue.deliveries_expected = enqueue.publish.deliveries;
  if (absl::Status s = Finish(enqueue, *before, cpu_before, t0); !s.ok()) return s;
  if (enqueue.publish.batches_failed > 0) {
    enqueue.problem = absl::StrCat(enqueue.publish.batches_failed, " batches failed: ", enqueue.publish.first_error);
  } else if (enqueue.db.pending != static_cast<std::int64_t>(enqueue.deliveries_expected)) {
    enqueue.problem = absl::StrCat(enqueue.db.pending, " deliveries pending, expected ", enqueue.deliveries_expected);
  }
  enqueue.complete = enqueue.problem.empty();

  // 2. Restart with the dispatcher: drain the backlog.
  dispatch.events_accepted = enqueue.events_accepted;
  dispatch.deliveries_expected = enqueue.deliveries_expected;
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  before = db_.Counts();
  if (!before.ok()) return before.status();
  const auto t1 = Clock::now();
  if (absl::Status s = stack_.RestartDelivery({}); !s.ok()) return s;
  cpu_before = SampleStackCpu();  // the new process: counted from its start
  cpu_before.erase("octo-delivery");
  std::vector<std::pair<double, std::uint64_t>> samples;
  absl::Status received = WaitReceived(
      dispatch, t1, t1 + config_.throughput_timeout, [] { return true; },
      [&] { return dispatch.deliveries_expected; }, &samples);
  absl::Status recorded = received.ok() ? WaitRecorded(dispatch, before->attempts, t1) : received;
  const double lo = 0.1 * static_cast<double>(dispatch.deliveries_expected);
  const double hi = 0.9 * static_cast<double>(dispatch.deliveries_expected);
  std::optional<std::pair<double, std::uint64_t>> a, b;
  for (const auto& sample : samples) {
    if (!a && static_cast<double>(sample.second) >= lo) a = sample;
    if (!b && static_cast<double>(sample.second) >= hi) b = sample;
  }
  if (a && b && b->first > a->first) {
    dispatch.steady_rate = static_cast<double>(b->second - a->second) / (b->first - a->first);
  }
  if (absl::Status s = Finish(dispatch, *before, cpu_before, t1); !s.ok()) return s;
  if (!recorded.ok()) dispatch.problem = std::string(recorded.message());
  dispatch.complete = dispatch.problem.empty();
  return std::make_pair(std::move(enqueue), std::move(dispatch));
}

absl::StatusOr<PhaseResult> Bench::Single(const EventFactory& factory) {
  PhaseResult r;
  r.name = "single";
  if (absl::Status s = sink_.Reset(); !s.ok()) return s;
  ResetStatements();
  if (absl::Status s = db_.StartPhase(); !s.ok()) return s;
  absl::StatusOr<DbCounts> before = db_.Counts();
  if (!before.ok()) return before.status();
  const CpuTimes cpu_before = SampleStackCpu();
  const auto t0 = Clock::now();
  SinglePublishOptions options;
  options.clients = config_.single_clients;
  options.events = config_.single_events;
  options.time_limit = config_.throughput_timeout;
  r.publish = PublishOneAtATime(stack_.PublisherChannel(), factory, 'p', options,
                                &r.publish_seconds);
  r.events_accepted = r.publish.events;
  r.deliveries_expected = r.publish.deliveries;
  absl::Status received = WaitReceived(
      r, t0, Clock::now() + config_.drain_timeout, [] { return true; },
      [&] { return r.deliveries_expected; }, nullptr);
  absl::Status recorded = received.ok() ? WaitRecorded(r, before->attempts, t0) : received;
  if (absl::Status s = Finish(r, *before, cpu_before, t0); !s.ok()) return s;
  if (r.publish.batches_failed > 0) {
    r.problem = absl::StrCat(r.publish.batches_failed, " calls failed: ", r.publish.first_error);
  } else if (r.events_accepted < static_cast<std::uint64_t>(config_.single_events)) {
    r.problem = absl::StrCat("only ", r.events_accepted, " events published in the time limit");
  } else if (!recorded.ok()) {
    r.problem = std::string(recorded.message());
  }
  r.complete = r.problem.empty();
  return r;
}

}  // namespace octo::perf
