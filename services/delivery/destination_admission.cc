#include "services/delivery/destination_admission.h"

#include <algorithm>
#include <utility>

namespace octo::delivery {
namespace {

// Webhook limiter entries kept before idle ones are forgotten.
constexpr std::size_t kMaxIdleWebhooks = 10000;
// Destinations whose pace is remembered before the map is reset.
constexpr std::size_t kMaxPaces = 10000;

}  // namespace

DestinationAdmission::DestinationAdmission(AdmissionOptions options, const Clock& clock)
    : options_(options), clock_(clock) {}

Admission DestinationAdmission::Admit(const AdmissionAsk& ask, int& deferred) {
  Destination& d = destinations_[ask.destination];
  Admission out;
  // A destination that holds all it may (running + in line) refuses this one:
  // released, as the line would release it, before it is rendered. Checked
  // first so that a refused delivery takes none of its webhook's rate or
  // concurrency.
  if (d.running + static_cast<int>(d.line.size()) >= options_.max_per_host + options_.max_queued_per_host) {
    out.verdict = Admission::kDefer;
    out.backlogged = true;
    out.defer = std::max(kMinBacklogDefer, BacklogWait(ask.destination, d));
    return out;
  }
  Ticket ticket{ask.destination, "", false, false, absl::ZeroDuration()};
  if (ask.rate_limit_per_second > 0 || ask.max_concurrency > 0) {
    const absl::Duration defer = AdmitLimited(ask, deferred);
    if (defer > absl::ZeroDuration()) {
      Forget(ask.destination);
      out.verdict = Admission::kDefer;
      out.defer = defer;
      return out;
    }
    ticket.webhook_id = ask.webhook_id;
    if (ask.rate_limit_per_second > 0) ticket.start_interval = absl::Seconds(1.0 / ask.rate_limit_per_second);
  }
  if (d.line.empty() && !RateHolds(ticket, clock_.Now()) && MayStart(ask.destination, d)) {
    MarkStarted(ask.destination, d, ticket);
    out.verdict = Admission::kStart;
  } else {
    d.line.push_back(Waiting{ask.tag, false, {}, clock_.Now()});
    out.verdict = Admission::kWait;
  }
  tickets_.emplace(ask.tag, std::move(ticket));
  return out;
}

// About when `d` will have drained what is ahead of a refused request: its
// running, waiting and earlier refused requests at its pace, so that a slow
// destination's backlog comes back spread out instead of all at once (each
// return costs a claim and a release).
absl::Duration DestinationAdmission::BacklogWait(const std::string& key, Destination& d) {
  const int ahead = d.running + static_cast<int>(d.line.size()) + ++d.turned_away;
  const auto h = history_.find(key);
  const absl::Duration typical = h == history_.end() ? absl::ZeroDuration() : h->second.pace;
  return std::clamp(typical * ahead / options_.max_per_host, absl::ZeroDuration(), absl::Minutes(10));
}

// Zero, and a slot of the webhook taken (given back by Finished); else how
// long to defer the delivery.
absl::Duration DestinationAdmission::AdmitLimited(const AdmissionAsk& ask, int& deferred) {
  const absl::Time now = clock_.Now();
  if (webhooks_.size() > kMaxIdleWebhooks) {
    std::erase_if(webhooks_, [&](const auto& kv) { return kv.second.in_flight == 0 && kv.second.next_send < now; });
  }
  Webhook& w = webhooks_[ask.webhook_id];
  if (ask.max_concurrency > 0 && w.in_flight >= ask.max_concurrency) {
    // A slot frees when a running attempt ends: about one typical duration,
    // per max_concurrency deferred deliveries.
    const absl::Duration typical = std::clamp(w.typical_duration, absl::Milliseconds(20), absl::Seconds(5));
    ++deferred;
    return std::min(kMaxLimitDefer, typical * (1.0 + static_cast<double>(deferred - 1) / ask.max_concurrency));
  }
  if (ask.rate_limit_per_second > 0) {
    const absl::Duration interval = absl::Seconds(1.0 / ask.rate_limit_per_second);
    if (w.next_send > now) {
      ++deferred;
      return std::clamp((w.next_send - now) + interval * (deferred - 1), kMinLimitDefer, kMaxLimitDefer);
    }
    w.next_send = now + interval;
  }
  ++w.in_flight;
  return absl::ZeroDuration();
}

std::vector<OutgoingRequest> DestinationAdmission::Enqueue(OutgoingRequest request) {
  const auto ticket = tickets_.find(request.tag);
  if (ticket == tickets_.end()) return {};
  const std::string key = ticket->second.destination;
  Destination& d = destinations_[key];
  for (Waiting& w : d.line) {
    if (w.tag != request.tag) continue;
    w.request = std::move(request);
    w.rendered = true;
    break;
  }
  return Promote(key);
}

std::vector<OutgoingRequest> DestinationAdmission::Withdraw(uint64_t tag) {
  const auto ticket = tickets_.find(tag);
  if (ticket == tickets_.end()) return {};
  const std::string key = ticket->second.destination;
  if (!ticket->second.running) std::erase_if(destinations_[key].line, [&](const Waiting& w) { return w.tag == tag; });
  Release(tag, absl::ZeroDuration(), /*sent=*/false, {});
  return Promote(key);
}

std::vector<OutgoingRequest> DestinationAdmission::Finished(uint64_t tag, absl::Duration duration, bool sent,
                                                            ConnectionUse connection) {
  const auto ticket = tickets_.find(tag);
  if (ticket == tickets_.end()) return {};
  const std::string key = ticket->second.destination;
  Release(tag, duration, sent, connection);
  return Promote(key);
}

// Gives back what the ticket holds and learns the pace of what was sent.
void DestinationAdmission::Release(uint64_t tag, absl::Duration duration, bool sent, ConnectionUse connection) {
  const auto it = tickets_.find(tag);
  const Ticket& ticket = it->second;
  if (sent) {
    if (history_.size() > kMaxPaces) {
      // Idle destinations only lose estimates; those with requests running
      // keep their count of connections being opened.
      std::erase_if(history_, [&](const auto& kv) { return !destinations_.contains(kv.first); });
    }
    History& h = history_[ticket.destination];
    if (duration > absl::ZeroDuration()) {
      h.pace = h.pace == absl::ZeroDuration() ? duration : h.pace * 0.8 + duration * 0.2;
    }
    h.last_active = clock_.Now();
  }
  if (ticket.new_connection) {
    History& h = history_[ticket.destination];
    if (h.connecting > 0) --h.connecting;
  }
  if (sent) {
    History& h = history_[ticket.destination];
    if (connection.opened && connection.kept) h.proven = std::min(options_.max_per_host, h.proven + 1);
    if (!connection.opened && !connection.kept) h.proven = std::max(0, h.proven - 1);
  }
  if (!ticket.webhook_id.empty()) {
    auto w = webhooks_.find(ticket.webhook_id);
    if (w != webhooks_.end()) {
      if (w->second.in_flight > 0) --w->second.in_flight;
      if (sent && duration > absl::ZeroDuration()) {
        w->second.typical_duration = w->second.typical_duration * 0.8 + duration * 0.2;
      }
    }
  }
  if (ticket.running) --destinations_[ticket.destination].running;
  tickets_.erase(it);
}

// Starts rendered requests in line order while the destination has free
// running slots, passing over those still being rendered and those whose
// webhook's rate holds them back (limits admitted at claim time must hold
// at start too, or a line would start them together). One that waited
// longer than max_queue_wait is released instead (kept for ExpireWaiting):
// started now, it could outlive its lease.
std::vector<OutgoingRequest> DestinationAdmission::Promote(const std::string& key) {
  std::vector<OutgoingRequest> start;
  Destination& d = destinations_[key];
  const absl::Time now = clock_.Now();
  for (auto it = d.line.begin(); it != d.line.end();) {
    if (!it->rendered) {
      ++it;
    } else if (WaitedTooLong(*it, now)) {
      const uint64_t tag = it->tag;
      it = d.line.erase(it);
      expired_.push_back({tag, std::max(kMinBacklogDefer, BacklogWait(key, d))});
      Release(tag, absl::ZeroDuration(), false, {});
    } else if (RateHolds(tickets_[it->tag], now)) {
      ++it;
    } else if (MayStart(key, d)) {
      MarkStarted(key, d, tickets_[it->tag]);
      start.push_back(std::move(it->request));
      it = d.line.erase(it);
    } else {
      break;
    }
  }
  Forget(key);
  return start;
}

std::vector<OutgoingRequest> DestinationAdmission::PromoteAll() {
  std::vector<std::string> keys;
  for (const auto& [key, d] : destinations_) {
    if (!d.line.empty()) keys.push_back(key);
  }
  std::vector<OutgoingRequest> start;
  for (const std::string& key : keys) {
    for (OutgoingRequest& r : Promote(key)) start.push_back(std::move(r));
  }
  return start;
}

bool DestinationAdmission::RateHolds(const Ticket& ticket, absl::Time now) const {
  if (ticket.start_interval <= absl::ZeroDuration()) return false;
  const auto w = webhooks_.find(ticket.webhook_id);
  return w != webhooks_.end() && w->second.next_start > now;
}

bool DestinationAdmission::WaitedTooLong(const Waiting& w, absl::Time now) const {
  return w.rendered && options_.max_queue_wait > absl::ZeroDuration() && now - w.since > options_.max_queue_wait;
}

// An idle destination's entry goes (its pace stays).
void DestinationAdmission::Forget(const std::string& key) {
  auto it = destinations_.find(key);
  if (it == destinations_.end()) return;
  Destination& d = it->second;
  // Nothing waits behind the running ones any more: the earlier refusals
  // have been taken into account.
  if (d.line.empty()) d.turned_away = 0;
  if (d.running == 0 && d.line.empty()) destinations_.erase(it);
}

std::vector<ExpiredRequest> DestinationAdmission::ExpireWaiting(bool scan) {
  std::vector<ExpiredRequest> expired = std::move(expired_);
  expired_.clear();
  if (!scan || options_.max_queue_wait <= absl::ZeroDuration()) return expired;
  const std::size_t taken_by_promote = expired.size();
  const absl::Time now = clock_.Now();
  std::vector<std::string> keys;
  for (auto& [key, d] : destinations_) {
    // Lines are in arrival order: only fronts are looked at.
    while (!d.line.empty() && WaitedTooLong(d.line.front(), now)) {
      const uint64_t tag = d.line.front().tag;
      d.line.pop_front();
      expired.push_back({tag, std::max(kMinBacklogDefer, BacklogWait(key, d))});
    }
    keys.push_back(key);
  }
  for (std::size_t i = taken_by_promote; i < expired.size(); ++i) {
    Release(expired[i].tag, absl::ZeroDuration(), false, {});
  }
  for (const std::string& key : keys) Forget(key);
  return expired;
}

std::vector<uint64_t> DestinationAdmission::DropWaiting() {
  std::vector<uint64_t> dropped;
  std::vector<std::string> keys;
  for (auto& [key, d] : destinations_) {
    for (const Waiting& w : d.line) dropped.push_back(w.tag);
    d.line.clear();
    keys.push_back(key);
  }
  for (uint64_t tag : dropped) Release(tag, absl::ZeroDuration(), false, {});
  for (const std::string& key : keys) Forget(key);
  return dropped;
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
  ticket.new_connection = d.running >= h.proven;
  if (ticket.start_interval > absl::ZeroDuration()) {
    webhooks_[ticket.webhook_id].next_start = clock_.Now() + ticket.start_interval;
  }
  if (ticket.new_connection) ++h.connecting;
  ++d.running;
}

int DestinationAdmission::ProvenConnections(const std::string& destination) const {
  const auto it = history_.find(destination);
  return it == history_.end() ? 0 : it->second.proven;
}

int DestinationAdmission::Running(const std::string& destination) const {
  const auto it = destinations_.find(destination);
  return it == destinations_.end() ? 0 : it->second.running;
}

int DestinationAdmission::Queued(const std::string& destination) const {
  const auto it = destinations_.find(destination);
  return it == destinations_.end() ? 0 : static_cast<int>(it->second.line.size());
}

}  // namespace octo::delivery
