#pragma once
// The dispatcher's side of the delivery tables (docs/delivery.md, "Queue and
// lease"): claim due deliveries under a lease, write attempt results in
// batches, and listen for NOTIFY octo_deliveries.
//
// Example:
//   auto store = PgDispatchStore::Connect(conninfo);
//   absl::StatusOr<ClaimBatch> batch = (*store)->Claim(200, absl::Seconds(30));
//   ...  // send
//   (*store)->WriteResults(results);
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/delivery/dispatch_outcome.h"

namespace octo::delivery {

// The parts of an event a request is rendered from, as stored (json text).
struct ClaimedEvent {
  std::string id;
  std::string event;          // booking_update, ..., webhook_test
  std::string resource_kind;  // booking | order | availability | product
  std::string resource_json;
  std::string localized_json;  // object: locale tag -> resource; "{}" when none
  std::string diff_json;       // array
  std::string product_id;      // availability only, else ""
  std::string option_id;
  absl::Time created_at;  // when it was published (for the latency metric)
  int64_t occurred_at_us = 0;  // the change's time (µs since the epoch)
  // Availability: the dates of its publish for its product ("YYYY-MM-DD"),
  // "" when not recorded (notification bodies).
  std::string notification_date_start;
  std::string notification_date_end;
};

struct ClaimedDelivery {
  std::string id;
  // Attempts recorded (or lost: `interrupted`) before this one; this claim
  // reserved number attempt_count + 1 (DeliveryResult::attempt_number).
  int attempt_count = 0;
  int64_t lease_us = 0;   // the lease this claim holds (µs since the epoch): its token
  // The delivery's created_at (µs since the epoch): its partition key
  // (migration 0013), handed back with the result so the write probes only
  // the weeks of its batch.
  int64_t created_us = 0;
  std::string event_id;   // key into ClaimBatch::events
  // The webhook, as stored.
  std::string webhook_id;
  std::string webhook_event;
  std::string url;  // may hold credentials
  bool retry_on_error = true;
  bool use_contact_language = true;
  std::string headers_json;       // object of strings
  std::string capabilities_json;  // array of strings
  std::string secret;             // whsec_...
  // The secret replaced by the last rotation while its grace period runs
  // (previous_secret_expires_at in the future at claim time), else "".
  std::string previous_secret;
  // Per-endpoint limits; 0 = none.
  double rate_limit_per_second = 0;
  int max_concurrency = 0;
  bool webhook_enabled = true;
  std::string dialect = "webhook";  // "notification": the thin body
  // The supplier of the webhook's connection, which is the event's (its OCTO profile).
  std::string supplier_id;
  std::string supplier_name;
  std::string supplier_endpoint;
  std::string supplier_contact_json;  // object: website, email, telephone, address
  // Ordered delivery: the delivery's resource (ordered_resources.id) and
  // its number there (the webhook-sequence header); 0 for an unordered one.
  int64_t ordered_resource_id = 0;
  int64_t sequence = 0;
  // It had been released as backlog into a later slot and came due there
  // (deliveries.parked_backlog): more of its destination's backlog may be
  // parked (DestinationAdmission::TakePulls).
  bool parked = false;
  // Its last two claims ended without a result (OCTO_SUSPECT in the claim):
  // it may be the delivery that crashes the process. While it is in flight
  // the process claims no other suspect (DispatchStore::Suspects).
  bool suspect = false;
};

struct ClaimBatch {
  std::vector<ClaimedDelivery> deliveries;
  // Each event once, however many of its deliveries were claimed.
  std::unordered_map<std::string, ClaimedEvent> events;
  // When the claim began (the dispatcher's clock; set by ClaimLoop): a
  // delivery's wait for its destination counts from then.
  absl::Time claimed_at = absl::InfinitePast();
  // Inserted leased by this process's enqueue and handed over without a
  // claim (handoff.h): counted as handed off, not as claimed.
  bool handed_off = false;
};

// What to write for one claimed delivery.
struct DeliveryResult {
  enum class Action {
    kAttempt,  // record an attempt and apply `decision`
    kCancel,   // no attempt: the delivery is cancelled (its webhook is disabled)
    kRelease,  // no attempt: nothing was sent; clear the lease so it is claimed again
               // (after decision.retry_delay when positive)
  };
  std::string delivery_id;
  int64_t lease_us = 0;  // from the claim; a delivery re-claimed by someone else since keeps its state
  int64_t created_us = 0;  // ClaimedDelivery::created_us; 0 = unknown (every week is searched)
  // ClaimedDelivery::ordered_resource_id (0: unordered): the writer locks
  // these resources' rows before the deliveries' rows, the order a redeliver
  // or replay takes them in, so the two never wait for each other in a cycle.
  int64_t ordered_resource_id = 0;
  // The number the claim reserved (ClaimedDelivery::attempt_count + 1); the
  // attempt row gets it, so writing a result twice records it once. 0: the
  // next number at write time (no idempotence).
  int attempt_number = 0;
  std::string webhook_id;
  Action action = Action::kAttempt;
  // kRelease into a backlog slot (its destination could not start it
  // within the lease): marked parked, so that PullForward may make it due
  // sooner once the destination has spare capacity again.
  bool parked = false;
  // kAttempt:
  absl::Time started_at;
  absl::Duration duration;
  AttemptResult attempt;  // http_status or error_class
  std::string snippet;    // valid UTF-8, at most 4 KB
  Decision decision;  // kAttempt; kRelease uses retry_delay only
  // For metrics only, not written: the event's type and creation time.
  std::string event;
  absl::Time event_created_at;
};

// Where the dispatcher reads and writes deliveries. One instance is used by
// one thread at a time (it owns one connection).
class DispatchStore {
 public:
  virtual ~DispatchStore() = default;

  // Claims up to `limit` due deliveries (pending, next_attempt_at reached,
  // no live lease), leasing them for `lease`, with FOR UPDATE SKIP LOCKED
  // so concurrent claimers never get the same one. The claim counts itself
  // in the row: a delivery whose previous claim never reported a result
  // (its process stopped) gets that attempt recorded as `interrupted`, and
  // after max_unreported_claims such claims in a row it is quarantined
  // (failed, the reason in the attempt log) and not returned. UNAVAILABLE
  // when the database cannot be reached; ABORTED for a transient refusal
  // (deadlock, timeout); INTERNAL otherwise.
  //
  // A suspect (a delivery whose last two claims ended without a result) is
  // claimed alone, and only with kOneAlone: a process that has a suspect in
  // flight claims with kNone, so that when one suspect crashes the process,
  // no other suspect dies with it and moves towards quarantine for a crash
  // that was not its own. Deliveries without suspicion are claimed either way.
  enum class Suspects { kOneAlone, kNone };
  virtual absl::StatusOr<ClaimBatch> Claim(int limit, absl::Duration lease, Suspects suspects) = 0;
  absl::StatusOr<ClaimBatch> Claim(int limit, absl::Duration lease) {
    return Claim(limit, lease, Suspects::kOneAlone);
  }

  // Writes results in one transaction: inserts the attempt rows (under the
  // number reserved at claim time), updates the deliveries whose lease is
  // still the one claimed, however late (state, next_attempt_at, last
  // status, lease cleared; a redeliver requested meanwhile makes it due
  // again), ends a delivery re-claimed by someone else as succeeded when
  // this attempt succeeded, and for kGone disables the webhook and cancels
  // its pending deliveries. Idempotent: a result written twice is recorded
  // once. A delivery row locked by another session for longer than the
  // lock timeout holds back only its own result: the others are committed
  // and ABORTED returned (write the same results again later). Endpoint health: a webhook's failing_since is set by the
  // first failed attempt of a run and cleared by a success; a webhook whose
  // run is older than the store's limit is disabled ("failing since <time>:
  // <last outcome>") and its pending deliveries cancelled, as for 410.
  // Results of deliveries that no longer exist are dropped.
  // Otherwise nothing is written on error: UNAVAILABLE (connection),
  // ABORTED (serialization failure, deadlock, statement or lock timeout),
  // INTERNAL.
  virtual absl::Status WriteResults(const std::vector<DeliveryResult>& results) = 0;

  // Webhooks that committed WriteResults calls disabled since the last call
  // of this (counted in octo_webhooks_disabled_total).
  struct DisabledCounts {
    int gone = 0;     // 410 Gone
    int failing = 0;  // failing for longer than the limit
  };
  virtual DisabledCounts TakeDisabledCounts() { return {}; }

  // Makes up to `limit` parked deliveries of `webhook_ids` (released as
  // backlog into a later slot, DeliveryResult::parked; not leased, not due
  // yet) due now, earliest slot first; returns how many. Deliveries waiting
  // for a retry, a Retry-After or a webhook's limits keep their time. Called
  // for a destination that has spare capacity again. Errors as for Claim.
  virtual absl::StatusOr<int> PullForward(const std::vector<std::string>& webhook_ids, int limit) {
    (void)webhook_ids;
    (void)limit;
    return 0;
  }
};

// How long a webhook may fail continuously before it is disabled
// (octo-delivery --disable_after_failing_for).
inline constexpr absl::Duration kDefaultDisableAfter = absl::Hours(5 * 24);

// Claims in a row that end without a result (the process stopped) after
// which a delivery is quarantined (octo-delivery --max_unreported_claims).
inline constexpr int kDefaultMaxUnreportedClaims = 3;

struct DispatchStoreOptions {
  // WriteResults disables webhooks whose attempts have failed continuously
  // for longer than this.
  absl::Duration disable_after = kDefaultDisableAfter;
  int max_unreported_claims = kDefaultMaxUnreportedClaims;
  // How long a statement waits for a row lock another session holds (a
  // stuck operator session, a long transaction) before it gives up and the
  // rest of the work goes on. Zero: the connection's own (the layer's
  // --pg_lock_timeout, in the conninfo). The statement timeout is always
  // the connection's (--pg_statement_timeout).
  absl::Duration lock_timeout = absl::ZeroDuration();
};

// The lock timeout of the dispatcher's result connections.
inline constexpr absl::Duration kResultLockTimeout = absl::Seconds(2);

class PgDispatchStore final : public DispatchStore {
 public:
  // UNAVAILABLE when the database cannot be reached.
  static absl::StatusOr<std::unique_ptr<PgDispatchStore>> Connect(std::string conninfo,
                                                                  DispatchStoreOptions options);
  static absl::StatusOr<std::unique_ptr<PgDispatchStore>> Connect(std::string conninfo,
                                                                  absl::Duration disable_after = kDefaultDisableAfter) {
    DispatchStoreOptions options;
    options.disable_after = disable_after;
    return Connect(std::move(conninfo), options);
  }
  ~PgDispatchStore() override;

  using DispatchStore::Claim;
  absl::StatusOr<ClaimBatch> Claim(int limit, absl::Duration lease, Suspects suspects) override;
  absl::Status WriteResults(const std::vector<DeliveryResult>& results) override;
  DisabledCounts TakeDisabledCounts() override;
  absl::StatusOr<int> PullForward(const std::vector<std::string>& webhook_ids, int limit) override;

 private:
  struct Impl;
  explicit PgDispatchStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The NOTIFY channel that Enqueue signals after committing deliveries.
inline constexpr char kDeliveryChannel[] = "octo_deliveries";

// LISTENs on `channel` on a dedicated connection in its own thread and calls
// `on_notify` (from that thread) for each notification, and once after each
// (re)connection since notifications may have been missed meanwhile.
// Reconnects with backoff; the caller polls as a fallback. Stops on
// destruction.
class NotificationListener {
 public:
  NotificationListener(std::string conninfo, std::string channel, std::function<void()> on_notify);
  ~NotificationListener();
  NotificationListener(const NotificationListener&) = delete;
  NotificationListener& operator=(const NotificationListener&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octo::delivery
