// DestinationAdmission's model of a destination: how many requests it can
// run now (warm-up), its pace, how long a line it may hold, and the slots a
// request refused as backlog comes back in. (destination_admission.cc has
// the admission, lines, webhook limits and expiry.)
#include "services/delivery/destination_admission.h"

#include <algorithm>
#include <string>

namespace octo::delivery {

// How many requests the destination can run now: its running ones, or its
// proven connections plus those it may open at once (warm-up), at most
// max_per_host.
int DestinationAdmission::Slots(const std::string& key, const Destination& d) const {
  const auto h = history_.find(key);
  const int proven = h == history_.end() ? 0 : h->second.proven;
  return std::clamp(std::max(d.running, proven + kNewConnections), 1, options_.max_per_host);
}

// How long the destination takes per request: its learned pace, and at
// least as long as its oldest running request has run so far, so that a
// destination that suddenly hangs is seen slow before its requests time
// out (zero while unknown).
absl::Duration DestinationAdmission::Pace(const std::string& key, const Destination& d) const {
  const auto h = history_.find(key);
  const absl::Duration learned = h == history_.end() ? absl::ZeroDuration() : h->second.pace;
  const absl::Duration oldest =
      d.running_since.empty() ? absl::ZeroDuration() : clock_.Now() - *d.running_since.begin();
  return std::max(learned, oldest);
}

// How long the destination takes per request while it drains a backlog:
// its learned pace, and at least as long as its YOUNGEST running request has
// run so far. That age grows only while no request has started since, i.e.
// every slot it runs is held; one slow request among many that finish (an
// outlier near the request timeout) does not make a destination that
// answers look hung. In a steady hang the learned pace already is about
// the request timeout; this covers the first seconds of one. (Pace, with
// the oldest request, is the cautious bound for what may wait in line.)
absl::Duration DestinationAdmission::DrainPace(const std::string& key, const Destination& d) const {
  const auto h = history_.find(key);
  const absl::Duration learned = h == history_.end() ? absl::ZeroDuration() : h->second.pace;
  const absl::Duration youngest =
      d.running_since.empty() ? absl::ZeroDuration() : clock_.Now() - *d.running_since.rbegin();
  return std::max(learned, youngest);
}

// How long one of those slots takes per request, at the destination's pace
// (zero while the pace is unknown).
absl::Duration DestinationAdmission::SlotTime(const std::string& key, const Destination& d) const {
  return Pace(key, d) / Slots(key, d);
}

// Whether one more request in the line would wait longer than 3/4 of
// max_queue_wait before a slot took it (at the destination's pace and the
// slots it can run now): it would likely be released unsent after holding
// its lease, so it is better not taken. Unknown pace (the first burst to a
// destination): the line holds at most max_per_host, a burst the warm-up
// drains in a few round trips at any usual pace.
bool DestinationAdmission::LineTooLong(const std::string& key, const Destination& d) const {
  if (options_.max_queue_wait <= absl::ZeroDuration()) return false;
  const auto h = history_.find(key);
  const bool learned = h != history_.end() && h->second.pace > absl::ZeroDuration();
  if (!learned && static_cast<int>(d.line.size()) >= options_.max_per_host) return true;
  const absl::Duration slot = SlotTime(key, d);
  return slot > absl::ZeroDuration() && slot * (static_cast<int>(d.line.size()) + 1) > options_.max_queue_wait * 3 / 4;
}

// When a refused request should come back: after what the destination
// holds (running and waiting) and every request refused before it, one
// slot time each (its drain pace / --max_per_host), and not before
// kMinBacklogDefer. Each refusal takes the
// next slot, so a slow destination's backlog comes back spread out at the
// pace it drains (each return costs a claim and a release) instead of all
// at once.
absl::Duration DestinationAdmission::BacklogWait(const std::string& key, const Destination& d) {
  const absl::Time now = clock_.Now();
  // Spaced and capped at the pace it drains (DrainPace), not at its oldest
  // request's age: one outlier among 64 running requests would otherwise
  // space the slots and stretch the horizon as for a hung destination.
  // Spaced for every slot it may run (--max_per_host), not for those a
  // warming-up destination runs now: a due backlog claimed at once (a batch
  // refused whole is followed at once, ClaimScheduler) would otherwise be
  // parked at the first seconds' warm-up rate for its whole horizon.
  const absl::Duration drain_pace = DrainPace(key, d);
  const absl::Duration slot = drain_pace / options_.max_per_host;
  History& h = history_[key];
  const absl::Time drained = now + slot * (d.running + static_cast<int>(d.line.size()));
  // Capped, so that a long run of refusals does not push later ones ever
  // further out (the returned deferral is capped the same), and capped by
  // the destination's pace: a parked delivery cannot be claimed before its
  // slot, so a destination that answers faster than its pace promised
  // (or a new process after a restart) waits for slots spaced at the old
  // pace; a destination that answers gets its backlog back within 200 of
  // its paces (at least kMinBacklogHorizon), one that hangs (every slot
  // held, or a learned pace near the request timeout) keeps up to
  // kMaxBacklogDefer. A shrinking horizon pulls backlog_until back.
  const absl::Duration horizon =
      std::clamp(drain_pace * kBacklogHorizonPaces, kMinBacklogHorizon, kMaxBacklogDefer);
  h.backlog_until = std::min(std::max({h.backlog_until, drained, now + kMinBacklogDefer}) + slot, now + horizon);
  h.last_refusal = now;
  h.parked = true;
  return h.backlog_until - now;
}

// Whether one more request to `key` may start: below max_per_host, and
// either a proven connection is free or fewer than kNewConnections are
// being opened. Proven connections idle for kWarmFor are forgotten (the
// server has likely closed them).
bool DestinationAdmission::MayStart(const std::string& key, const Destination& d) {
  if (d.running >= options_.max_per_host) return false;
  History& h = history_[key];
  if (d.running == 0 && h.proven > 0 && clock_.Now() - h.last_active > kWarmFor) h.proven = 0;
  return d.running < h.proven || h.connecting < kNewConnections;
}

void DestinationAdmission::MarkStarted(const std::string& key, Destination& d, Ticket& ticket) {
  History& h = history_[key];
  ticket.running = true;
  ticket.started_at = clock_.Now();
  d.running_since.insert(ticket.started_at);
  ticket.new_connection = d.running >= h.proven;
  if (ticket.start_interval > absl::ZeroDuration()) {
    webhooks_[ticket.webhook_id].next_start = clock_.Now() + ticket.start_interval;
  }
  if (ticket.new_connection) ++h.connecting;
  ++d.running;
}

void DestinationAdmission::NoteWebhook(History& h, const std::string& webhook_id, absl::Time now) {
  for (auto& [id, seen] : h.webhooks) {
    if (id == webhook_id) {
      seen = now;
      return;
    }
  }
  if (h.webhooks.size() < kPullWebhooks) {
    h.webhooks.emplace_back(webhook_id, now);
    return;
  }
  auto oldest = std::min_element(h.webhooks.begin(), h.webhooks.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
  *oldest = {webhook_id, now};
}

// How many parked deliveries the destination may be given back now (0:
// none). Spare capacity: it answered within kWarmFor at a known pace, its
// line is empty, it runs at most half of max_per_host, and it refused
// nothing as backlog for kPullAfterRefusal. As many as its free slots
// start within 3/4 of max_queue_wait at its drain pace (what its line would
// hold: more would only be parked again, a claim and a release each), so a
// destination still slow or hanging gets none.
int DestinationAdmission::PullLimit(const std::string& key, absl::Time now) {
  const auto it = history_.find(key);
  if (it == history_.end()) return 0;
  History& h = it->second;
  if (h.webhooks.empty() || h.pace <= absl::ZeroDuration() || now - h.last_active > kWarmFor) return 0;
  if (now - h.last_refusal < kPullAfterRefusal || now - h.last_pull < kPullEvery) return 0;
  // Not known to have parked deliveries (a restarted process knows nothing
  // of the slots): probed, less often after each pull that found none.
  if (!h.parked && now < h.next_probe) return 0;
  static const Destination kIdle;
  const auto d = destinations_.find(key);
  const Destination& dest = d == destinations_.end() ? kIdle : d->second;
  if (!dest.line.empty() || dest.running > options_.max_per_host / 2) return 0;
  const absl::Duration window =
      options_.max_queue_wait > absl::ZeroDuration() ? options_.max_queue_wait * 3 / 4 : absl::Seconds(1);
  const int64_t per_slot = window / DrainPace(key, dest);
  const int64_t limit = (options_.max_per_host - dest.running) * per_slot;
  return static_cast<int>(std::min<int64_t>(limit, kMaxPull));
}

std::vector<BacklogPull> DestinationAdmission::TakePulls() {
  const absl::Time now = clock_.Now();
  std::vector<BacklogPull> pulls;
  // One scan per kPullEvery: a history of many destinations costs little.
  if (now - last_pull_scan_ < kPullEvery) return pulls;
  last_pull_scan_ = now;
  for (auto& [key, h] : history_) {
    // Each pull is a statement on the claimer's connection: a few per scan.
    // A destination passed over now is offered at a later scan (those
    // pulled or probed now are skipped for kPullEvery or their probe's wait).
    if (pulls.size() >= kMaxPullsPerScan) break;
    const int limit = PullLimit(key, now);
    if (limit <= 0) continue;
    h.last_pull = now;
    BacklogPull pull{key, {}, limit};
    for (const auto& w : h.webhooks) pull.webhook_ids.push_back(w.first);
    pulls.push_back(std::move(pull));
  }
  return pulls;
}

void DestinationAdmission::PullDone(const BacklogPull& pull, int pulled) {
  // Fewer than asked: nothing more of it is parked (until it refuses
  // again, or a parked delivery of it comes due at its slot); none at all:
  // the next probe waits twice as long as the last, up to kMaxPullProbe.
  const auto it = history_.find(pull.destination);
  if (it == history_.end()) return;
  History& h = it->second;
  if (pulled < pull.limit) h.parked = false;
  if (pulled > 0) {
    h.probe_every = absl::ZeroDuration();
    h.next_probe = absl::InfinitePast();
    return;
  }
  h.probe_every = std::clamp(h.probe_every * 2, kPullEvery, kMaxPullProbe);
  h.next_probe = clock_.Now() + h.probe_every;
}

int DestinationAdmission::ProvenConnections(const std::string& destination) const {
  const auto it = history_.find(destination);
  return it == history_.end() ? 0 : it->second.proven;
}

absl::Time DestinationAdmission::BacklogUntil(const std::string& destination) const {
  const auto it = history_.find(destination);
  return it == history_.end() ? absl::InfinitePast() : it->second.backlog_until;
}

}  // namespace octo::delivery
