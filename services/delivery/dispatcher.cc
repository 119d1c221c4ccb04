// Dispatcher::Start wires the real parts (PostgreSQL stores, the libcurl
// transport, LISTEN); Dispatcher::Assemble takes them from the caller. Both
// assemble the walk claim -> admit -> render -> sign -> send -> record.
#include "services/delivery/dispatcher.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "services/common/log.h"
#include "services/delivery/claim_loop.h"
#include "services/delivery/curl_transport.h"
#include "services/delivery/delivery_pipeline.h"
#include "services/delivery/handoff_queue.h"
#include "services/delivery/result_recorder.h"

namespace octo::delivery {
namespace {

absl::Status ValidateOptions(const DispatcherOptions& o) {
  if (o.claim_batch < 1 || o.max_in_flight < 1 || o.max_per_host < 1 || o.result_batch < 1 ||
      o.result_writers < 1 || o.claimers < 1) {
    return absl::InvalidArgumentError(
        "dispatcher: claim_batch, max_in_flight, max_per_host, result_batch, result_writers and claimers must be at "
        "least 1");
  }
  if (o.max_unreported_claims < 1) {
    return absl::InvalidArgumentError("dispatcher: max_unreported_claims must be at least 1");
  }
  if (o.max_queued_per_host < 0) return absl::InvalidArgumentError("dispatcher: max_queued_per_host must not be negative");
  if (o.connect_timeout.count() <= 0 || o.request_timeout.count() <= 0 || o.poll_interval.count() <= 0) {
    return absl::InvalidArgumentError("dispatcher: connect_timeout, request_timeout and poll_interval must be positive");
  }
  if (o.lease_margin.count() <= 0) return absl::InvalidArgumentError("dispatcher: lease_margin must be positive");
  if (o.disable_after_failing_for.count() <= 0) {
    return absl::InvalidArgumentError("dispatcher: disable_after_failing_for must be positive");
  }
  if (o.min_retry_after.count() < 0 || o.max_retry_after < o.min_retry_after) {
    return absl::InvalidArgumentError(
        "dispatcher: min_retry_after must not be negative, max_retry_after not below min_retry_after");
  }
  for (auto d : o.retry_schedule) {
    if (d.count() < 0) return absl::InvalidArgumentError("dispatcher: retry delays must not be negative");
  }
  return absl::OkStatus();
}

PipelineOptions MakePipelineOptions(const DispatcherOptions& o) {
  PipelineOptions p;
  p.retry_policy = MakeRetryPolicy(o.retry_schedule, o.min_retry_after, o.max_retry_after);
  p.admission.max_per_host = o.max_per_host;
  // One destination may hold this many deliveries waiting beyond its
  // running ones; the rest of the claimed capacity stays for the others.
  p.admission.max_queued_per_host = o.max_queued_per_host > 0
                                        ? o.max_queued_per_host
                                        : std::max(4 * o.max_per_host, o.max_in_flight / 2 - o.max_per_host);
  // A request may wait for its destination at most half the lease margin,
  // so it is sent (and its result written) before the lease runs out.
  p.admission.max_queue_wait = std::max(absl::Milliseconds(1), absl::FromChrono(o.lease_margin) / 2);
  p.metrics = o.metrics;
  return p;
}

// When the results just written fall due again (ClaimScheduler::Finished):
// releases without delay at once, deferred releases and retries later. An
// ordered delivery that finished (succeeded, failed, cancelled) freed its
// resource, whose next delivery may be claimable now: claim at once (the
// result's transaction NOTIFYs the other replicas when one is).
std::vector<absl::Duration> DueIn(const std::vector<DeliveryResult>& written) {
  std::vector<absl::Duration> due;
  for (const DeliveryResult& r : written) {
    const bool released = r.action == DeliveryResult::Action::kRelease;
    const bool retry = r.action == DeliveryResult::Action::kAttempt && r.decision.kind == DecisionKind::kRetry;
    const bool finished = r.action == DeliveryResult::Action::kCancel ||
                          (r.action == DeliveryResult::Action::kAttempt && !retry);
    if (released || (retry && r.decision.retry_delay > absl::ZeroDuration())) {
      due.push_back(r.decision.retry_delay);
    } else if (finished && r.ordered_resource_id > 0) {
      due.push_back(absl::ZeroDuration());
    }
  }
  return due;
}

class DispatcherImpl final : public Dispatcher {
 public:
  DispatcherImpl(const DispatcherOptions& options, DispatcherParts parts)
      : options_(options),
        parts_(std::move(parts)),
        scheduler_({options.claim_batch, options.max_in_flight, absl::FromChrono(options.poll_interval)},
                   *parts_.clock),
        recorder_({options.result_batch, options.metrics, options.pg_metrics,
                   [this](bool held) { scheduler_.ResultsHeld(held); }},
                  [this](std::size_t count, const std::vector<DeliveryResult>& written) {
                    scheduler_.Finished(static_cast<int>(count), DueIn(written));
                  }),
        pipeline_(MakePipelineOptions(options), *parts_.clock, *parts_.transport, recorder_),
        // Handed-off batches go through the same walk. They do not pace the
        // claimer (ClaimScheduler::Admitted is about what claims find), but
        // backlog released from one pauses hand-offs for a poll interval.
        handoff_(scheduler_, absl::FromChrono(options.request_timeout) + absl::FromChrono(options.lease_margin),
                 [this](const ClaimBatch& batch) {
                   if (pipeline_.Dispatch(batch).backlogged > 0) scheduler_.HandoffBacklogged();
                 }) {
    AddClaimLoop(*parts_.claim_store, [this] { return pipeline_.SuspectInFlight(); });
    // The further claimers claim no suspect: the first one's batch may hold
    // one not yet dispatched, and a process sends one at a time.
    for (auto& store : parts_.more_claim_stores) AddClaimLoop(*store, [] { return true; });
  }

  ~DispatcherImpl() override { Stop(); }

  void Run() {
    parts_.transport->Start([this](std::vector<TransferResult> done) { pipeline_.OnTransfers(std::move(done)); });
    pipeline_.StartTicking(absl::Milliseconds(100));
    std::vector<DispatchStore*> stores;
    for (auto& s : parts_.write_stores) stores.push_back(s.get());
    recorder_.StartWriters(stores);
    for (auto& loop : claims_) loop->Start();
    handoff_.Start();
    if (parts_.notifications != nullptr) parts_.notifications->Start([this] { scheduler_.Wake(); });
  }

  void Stop() override {
    std::call_once(stop_once_, [this] { StopOnce(); });
  }

  DeliveryHandoff* handoff() override { return &handoff_; }

 private:
  void AddClaimLoop(DispatchStore& store, std::function<bool()> suspect_in_flight) {
    claims_.push_back(std::make_unique<ClaimLoop>(
        scheduler_, store, absl::FromChrono(options_.request_timeout) + absl::FromChrono(options_.lease_margin),
        [this](const ClaimBatch& batch) {
          const DispatchSummary summary = pipeline_.Dispatch(batch);
          scheduler_.Admitted(summary.claimed, summary.backlogged);
        },
        options_.pg_metrics,
        ClaimLoop::Pulls{[this] { return pipeline_.TakePulls(); },
                         [this](const BacklogPull& pull, int pulled) { pipeline_.PullDone(pull, pulled); }},
        std::move(suspect_in_flight)));
  }

  void StopOnce() {
    scheduler_.Stop();
    for (auto& loop : claims_) loop->Join();
    // Enqueues still running hand over or give back their slots first; what
    // they hand over goes through the walk like the claims before it.
    handoff_.Stop(absl::Now() + absl::Seconds(10));
    parts_.notifications.reset();
    // Waiting requests are released; running ones finish (bounded by the
    // request timeout) and their results are written; results still
    // unwritten 10 s later are given up (their leases expire and the
    // deliveries are sent again).
    pipeline_.StopSending();
    parts_.transport->Shutdown(absl::Now() + absl::FromChrono(options_.request_timeout));
    recorder_.Stop(absl::Now() + absl::Seconds(10));
    const HandoffQueue::Stats handed = handoff_.stats();
    ClaimLoop::Stats claims;
    for (const auto& loop : claims_) {
      const ClaimLoop::Stats one = loop->stats();
      claims.claims += one.claims;
      claims.claimed += one.claimed;
      claims.claim_time += one.claim_time;
      claims.pulls += one.pulls;
      claims.pulled += one.pulled;
    }
    const ResultRecorder::Stats writes = recorder_.stats();
    const ReleaseCounts released = pipeline_.releases();
    // Where the time went, for tuning (not metrics: those are the caller's).
    log::Info("dispatcher stopped", {{"claims", std::to_string(claims.claims)},
                                     {"claimed", std::to_string(claims.claimed)},
                                     {"claim_time", absl::FormatDuration(claims.claim_time)},
                                     {"handoffs", std::to_string(handed.batches)},
                                     {"handed_off", std::to_string(handed.deliveries)},
                                     {"handed_off_dropped", std::to_string(handed.dropped)},
                                     {"backlog_pulls", std::to_string(claims.pulls)},
                                     {"backlog_pulled", std::to_string(claims.pulled)},
                                     {"render_time", absl::FormatDuration(pipeline_.render_time())},
                                     {"released_backlog", std::to_string(released.backlog)},
                                     {"released_queue_wait", std::to_string(released.queue_wait)},
                                     {"released_limit", std::to_string(released.limit)},
                                     {"released_shutdown", std::to_string(released.shutdown)},
                                     {"result_writes", std::to_string(writes.writes)},
                                     {"results_written", std::to_string(writes.written)},
                                     {"write_time", absl::FormatDuration(writes.write_time)}});
  }

  const DispatcherOptions options_;
  DispatcherParts parts_;
  ClaimScheduler scheduler_;
  ResultRecorder recorder_;
  DeliveryPipeline pipeline_;
  std::vector<std::unique_ptr<ClaimLoop>> claims_;
  HandoffQueue handoff_;
  std::once_flag stop_once_;
};

// The real parts: PostgreSQL stores (one for claims, one per writer), the
// libcurl transport, LISTEN.
absl::StatusOr<DispatcherParts> RealParts(const DispatcherOptions& o) {
  DispatcherParts parts;
  DispatchStoreOptions store_options;
  store_options.disable_after = absl::FromChrono(o.disable_after_failing_for);
  store_options.max_unreported_claims = o.max_unreported_claims;
  absl::StatusOr<std::unique_ptr<PgDispatchStore>> claim_store = PgDispatchStore::Connect(o.database_url, store_options);
  if (!claim_store.ok()) return claim_store.status();
  parts.claim_store = std::move(*claim_store);
  for (int i = 1; i < o.claimers; ++i) {
    absl::StatusOr<std::unique_ptr<PgDispatchStore>> more = PgDispatchStore::Connect(o.database_url, store_options);
    if (!more.ok()) return more.status();
    parts.more_claim_stores.push_back(std::move(*more));
  }
  // A result connection gives up on a row lock after 2 s (not the layer's
  // --pg_lock_timeout): the results that do not need the locked row are then
  // committed without it (docs/delivery.md, "Faults").
  store_options.lock_timeout = kResultLockTimeout;
  for (int i = 0; i < o.result_writers; ++i) {
    absl::StatusOr<std::unique_ptr<PgDispatchStore>> store = PgDispatchStore::Connect(o.database_url, store_options);
    if (!store.ok()) return store.status();
    parts.write_stores.push_back(std::move(*store));
  }
  CurlTransportOptions t;
  t.max_in_flight = o.max_in_flight;
  t.max_per_host = o.max_per_host;
  t.connect_timeout = o.connect_timeout;
  t.request_timeout = o.request_timeout;
  t.destination_policy = o.destination_policy;
  t.ca_bundle = o.ca_bundle;
  t.resolve = o.resolve;
  absl::StatusOr<std::unique_ptr<HttpTransport>> transport = NewCurlTransport(t);
  if (!transport.ok()) return transport.status();
  parts.transport = std::move(*transport);
  parts.notifications = NewPgNotificationSource(o.database_url);
  return parts;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Start(DispatcherOptions options) {
  if (options.database_url.empty()) return absl::InvalidArgumentError("dispatcher: database_url is required");
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  absl::StatusOr<DispatcherParts> parts = RealParts(options);
  if (!parts.ok()) return parts.status();
  return Assemble(std::move(options), std::move(*parts));
}

absl::StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::Assemble(DispatcherOptions options, DispatcherParts parts) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  for (const auto& store : parts.more_claim_stores) {
    if (store == nullptr) return absl::InvalidArgumentError("dispatcher: a further claim store is null");
  }
  if (parts.claim_store == nullptr || parts.transport == nullptr || parts.clock == nullptr ||
      static_cast<int>(parts.write_stores.size()) < 1) {
    return absl::InvalidArgumentError("dispatcher: a claim store, write stores, a transport and a clock are required");
  }
  if (options.pg_metrics != nullptr) {
    options.pg_metrics->Declare("dispatch_claim");
    options.pg_metrics->Declare("dispatch_write_results");
    options.pg_metrics->Declare("dispatch_pull_forward");
  }
  auto dispatcher = std::make_unique<DispatcherImpl>(options, std::move(parts));
  dispatcher->Run();
  log::Info("dispatcher started");
  return dispatcher;
}

}  // namespace octo::delivery
