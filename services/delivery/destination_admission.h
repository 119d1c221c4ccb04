#pragma once
// The one owner of when a claimed delivery may be sent: per destination
// (scheme://host:port) a cap on running requests and on requests waiting in
// line, and the destination's pace (how long its transfers take); per
// webhook its rate_limit_per_second (GCRA, no burst) and max_concurrency.
// The transport starts whatever it is given; nothing else models these.
//
// Connection warm-up: at most kNewConnections requests to a destination
// may be opening a new connection at any time. A request started while
// fewer requests run than the destination has proven connections reuses
// one; any other is counted as opening one (it may find an idle connection
// libcurl still holds after the count was reset). The transport says whether
// each request's connection stayed open: one started beyond the proven
// connections whose connection stayed open proves one more; one started
// within them whose connection then closed (Connection: close, HTTP/1.0, a
// cut body, an error) proves one less. Whether the transport actually opened
// a connection (ConnectionUse::opened) does not enter the count: what a
// request was counted as at its start does. A burst that opened a
// connection per delivery at once overflowed small listen queues (5 in
// Python's http.server): the dropped SYNs were retransmitted after Linux's
// 1 s initial RTO, so the first burst to a new destination stalled for a
// second. Proven connections are forgotten after kWarmFor idle.
//
// For each claimed delivery Admit says:
//   kStart   send now (a running slot at its destination is taken);
//   kWait    it has a place in its destination's line: Enqueue its request,
//            which starts when a running request of that destination ends;
//   kDefer   do not send: release the delivery unsent, claimable again after
//            `defer` (its destination's line is full: backlogged, spread out
//            at the pace the destination drains; or its webhook is over its
//            limits, spread out at the pace they allow).
// Every admitted delivery ends with exactly one Finished (sent or not) or
// Withdraw. Not thread-safe by itself: the pipeline calls it under its lock.
//
// Example:
//   DestinationAdmission admission(options, clock);
//   Admission a = admission.Admit(ask, deferred_in_batch[ask.webhook_id]);
//   if (a.verdict == Admission::kStart) transport.Submit({request});
//   ...
//   for (OutgoingRequest& next : admission.Finished(tag, duration, /*sent=*/true)) ...
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "services/common/clock.h"
#include "services/delivery/http_transport.h"

namespace octo::delivery {

// "scheme://host:port" of an absolute URL, lower-cased, with the scheme's
// default port filled in: what admission counts requests per (libcurl's
// URL parser, as the transport reads the URL). nullopt when the URL does
// not parse.
std::optional<std::string> DestinationKey(const std::string& url);

struct AdmissionOptions {
  int max_per_host = 64;         // running requests per destination
  int max_queued_per_host = 256; // requests waiting in line per destination
  // A request waiting in line longer than this is released unsent
  // (backlogged), so that it is not held past its lease. Zero: no limit.
  absl::Duration max_queue_wait = absl::ZeroDuration();
};

// What a claimed delivery asks for.
struct AdmissionAsk {
  uint64_t tag = 0;
  std::string destination;  // DestinationKey of its URL
  std::string webhook_id;
  double rate_limit_per_second = 0;  // 0 = none
  int max_concurrency = 0;           // 0 = none
  // When its claim began: its time waiting for the destination counts from
  // then (the claim's SQL and the batch before it held its lease too).
  // InfinitePast: from Admit.
  absl::Time claimed_at = absl::InfinitePast();
  // It had been parked as backlog and came due at its slot: its
  // destination may have more parked (TakePulls).
  bool parked = false;
};

struct Admission {
  enum Verdict { kStart, kWait, kDefer };
  Verdict verdict = kStart;
  absl::Duration defer;     // kDefer: claim again after this
  bool backlogged = false;  // kDefer because its destination's line is full
};

// What a finished request did to its destination's connections (from
// TransferResult): opened one, and left it open. Only `kept` changes the
// proven connections (with how the request was counted at its start);
// `opened` is what the transport saw, for the record.
struct ConnectionUse {
  bool opened = false;
  bool kept = false;
};

// A request that waited in line too long: release it after `defer`.
struct ExpiredRequest {
  uint64_t tag = 0;
  absl::Duration defer;
};

// A destination that has spare capacity again while deliveries it refused
// as backlog may still wait in their later slots: make up to `limit` of the
// parked deliveries of `webhook_ids` (its webhooks seen most recently) due
// now (DispatchStore::PullForward).
struct BacklogPull {
  std::string destination;
  std::vector<std::string> webhook_ids;
  int limit = 0;
};

class DestinationAdmission {
 public:
  DestinationAdmission(AdmissionOptions options, const Clock& clock);

  // `deferred` counts this claim batch's deferrals of the webhook so far (in
  // and out), so that a batch's surplus comes back spread out.
  Admission Admit(const AdmissionAsk& ask, int& deferred);
  // The rendered request of a delivery admitted kWait, into its line.
  // Returns what may start now (it, when a running slot freed meanwhile).
  std::vector<OutgoingRequest> Enqueue(OutgoingRequest request);
  // An admitted delivery is not sent after all (it could not be rendered).
  // Returns what may start now.
  std::vector<OutgoingRequest> Withdraw(uint64_t tag);
  // A started request ended: `sent` it reached the network (its `duration`
  // is the destination's pace); `connection` what the transport saw: kept
  // by a request started beyond the proven connections proves one more,
  // closed under one started within them one less. Returns what may start
  // now, in line order.
  std::vector<OutgoingRequest> Finished(uint64_t tag, absl::Duration duration, bool sent, ConnectionUse connection);
  // Requests that waited longer than max_queue_wait, taken out of line: those
  // a freed slot found too old to start (always), and with `scan` the fronts
  // of every line.
  std::vector<ExpiredRequest> ExpireWaiting(bool scan = true);
  // Starts what may start in every line: requests held back by their
  // webhook's rate (called on the pipeline's tick).
  std::vector<OutgoingRequest> PromoteAll();
  // Every request still in line, taken out (at shutdown: released unsent).
  std::vector<uint64_t> DropWaiting();
  // The destinations whose parked backlog may be pulled forward now
  // (destination_pace.cc): each answered within kWarmFor, runs at most half
  // of max_per_host with an empty line, refused nothing for
  // kPullAfterRefusal and drains what it would be given within 3/4 of
  // max_queue_wait (so a pulled delivery is not parked again); at most one
  // pull per destination per kPullEvery. A destination that was parked at a
  // slow pace and answers fast again (or a restarted process that knows
  // nothing of the slots) gets its backlog back at once instead of at the
  // old slots' pace.
  //
  // A destination known to have parked deliveries (this process refused
  // some as backlog, or a claimed delivery of it had been parked:
  // AdmissionAsk::parked) is offered until a pull returns fewer than its
  // limit (PullDone: nothing more is parked). Any other (a restarted
  // process knows nothing of the slots) is probed: after each pull that
  // found nothing the next waits twice as long, up to kMaxPullProbe.
  std::vector<BacklogPull> TakePulls();
  void PullDone(const BacklogPull& pull, int pulled);

  // For tests and metrics: requests running / waiting at a destination.
  int Running(const std::string& destination) const;
  int Queued(const std::string& destination) const;

  // The longest deferral of a delivery over its webhook's limits.
  static constexpr absl::Duration kMaxLimitDefer = absl::Hours(1);
  // The shortest deferral of a delivery over its webhook's rate.
  static constexpr absl::Duration kMinLimitDefer = absl::Milliseconds(10);
  // The shortest and longest deferral of a delivery refused by a backlogged
  // destination.
  static constexpr absl::Duration kMinBacklogDefer = absl::Seconds(1);
  static constexpr absl::Duration kMaxBacklogDefer = absl::Minutes(10);
  // The backlog horizon (the farthest slot given) is at most this many of
  // the destination's paces ahead, and never capped below
  // kMinBacklogHorizon: a destination answering in 300 ms parks its backlog
  // at most a minute ahead (one answering in 1 s, 200 s), one hanging at a
  // 15 s timeout up to ten. The pace here is DrainPace: the learned one, at
  // least the age of the youngest running request.
  static constexpr int kBacklogHorizonPaces = 200;
  static constexpr absl::Duration kMinBacklogHorizon = absl::Minutes(1);
  // A destination whose line is empty and that refused nothing for this
  // long has caught up: its next refusal starts a new backlog at now.
  static constexpr absl::Duration kBacklogForgottenAfter = absl::Seconds(10);
  // Requests opening a new connection to one destination at once at most.
  static constexpr int kNewConnections = 4;
  // Idle this long, a destination's connections are assumed closed (the
  // shortest common server keep-alive: Node.js closes after 5 s).
  static constexpr absl::Duration kWarmFor = absl::Seconds(5);
  // Pulls of a parked backlog: at most one per destination per kPullEvery,
  // none within kPullAfterRefusal of its last backlog refusal, at most
  // kMaxPull deliveries each, of its kPullWebhooks webhooks seen last.
  static constexpr absl::Duration kPullEvery = absl::Milliseconds(100);
  static constexpr absl::Duration kPullAfterRefusal = absl::Milliseconds(500);
  static constexpr int kMaxPull = 1000;
  static constexpr std::size_t kPullWebhooks = 16;
  static constexpr absl::Duration kMaxPullProbe = absl::Seconds(10);
  static constexpr std::size_t kMaxPullsPerScan = 8;
  // For tests: the destination's proven connections.
  int ProvenConnections(const std::string& destination) const;
  // For tests: when the destination's last backlog refusal is due back.
  absl::Time BacklogUntil(const std::string& destination) const;

 private:
  struct Waiting {
    uint64_t tag = 0;
    bool rendered = false;
    OutgoingRequest request;
    absl::Time since;
  };
  // What is remembered of a destination while it is idle too.
  struct History {
    absl::Duration pace;  // moving average of its transfer times; zero: unknown
    int proven = 0;       // connections the transport reported opened and kept, less those closed
    int connecting = 0;   // running requests that opened a new connection
    absl::Time last_active = absl::InfinitePast();
    // When the last request refused as backlog is due back (BacklogWait),
    // at most kMaxBacklogDefer ahead.
    absl::Time backlog_until = absl::InfinitePast();
    absl::Time last_refusal = absl::InfinitePast();
    absl::Time last_pull = absl::InfinitePast();
    bool parked = false;  // it has deliveries parked in later slots, as far as known
    absl::Time next_probe = absl::InfinitePast();  // pull while not known parked from then
    absl::Duration probe_every;                    // doubled by each pull that found none
    // Its webhooks admitted most recently (at most kPullWebhooks), with
    // when: whose parked deliveries a pull makes due.
    std::vector<std::pair<std::string, absl::Time>> webhooks;
  };
  struct Destination {
    int running = 0;
    std::deque<Waiting> line;
    std::multiset<absl::Time> running_since;  // start times of its running requests
  };
  struct Webhook {
    int in_flight = 0;
    absl::Time next_send = absl::InfinitePast();   // earliest admission the rate allows
    absl::Time next_start = absl::InfinitePast();  // earliest start the rate allows
    absl::Duration typical_duration = absl::Milliseconds(100);  // moving average of attempts
  };
  struct Ticket {
    std::string destination;
    std::string webhook_id;  // "" unless it holds a slot of its webhook's limits
    bool running = false;
    bool new_connection = false;  // started beyond the proven connections
    absl::Duration start_interval;  // its webhook's rate: starts at least this far apart
    absl::Time started_at;          // when running
  };

  absl::Duration AdmitLimited(const AdmissionAsk& ask, int& deferred);
  int Slots(const std::string& key, const Destination& d) const;
  absl::Duration Pace(const std::string& key, const Destination& d) const;
  absl::Duration DrainPace(const std::string& key, const Destination& d) const;
  absl::Duration SlotTime(const std::string& key, const Destination& d) const;
  bool LineTooLong(const std::string& key, const Destination& d) const;
  absl::Duration BacklogWait(const std::string& key, const Destination& d);
  void Release(uint64_t tag, absl::Duration duration, bool sent, ConnectionUse connection);
  bool MayStart(const std::string& key, const Destination& d);
  void MarkStarted(const std::string& key, Destination& d, Ticket& ticket);
  std::vector<OutgoingRequest> Promote(const std::string& key);
  bool WaitedTooLong(const Waiting& w, absl::Time now) const;
  bool RateHolds(const Ticket& ticket, absl::Time now) const;
  void Forget(const std::string& key);
  static void NoteWebhook(History& h, const std::string& webhook_id, absl::Time now);
  int PullLimit(const std::string& key, absl::Time now);

  const AdmissionOptions options_;
  const Clock& clock_;
  std::unordered_map<std::string, Destination> destinations_;
  std::unordered_map<std::string, History> history_;
  std::unordered_map<std::string, Webhook> webhooks_;
  std::unordered_map<uint64_t, Ticket> tickets_;
  std::vector<ExpiredRequest> expired_;  // released by Promote, for ExpireWaiting
  absl::Time last_pull_scan_ = absl::InfinitePast();
};

}  // namespace octo::delivery
