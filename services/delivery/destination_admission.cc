#include "services/delivery/destination_admission.h"

#include <curl/curl.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace octo::delivery {
namespace {

// Webhook limiter entries kept before idle ones are forgotten.
constexpr std::size_t kMaxIdleWebhooks = 10000;
// Destinations whose pace is remembered before the map is reset.
constexpr std::size_t kMaxPaces = 10000;

}  // namespace

std::optional<std::string> DestinationKey(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return std::nullopt;
  std::optional<std::string> key;
  char* scheme = nullptr;
  char* host = nullptr;
  char* port = nullptr;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    key = absl::AsciiStrToLower(absl::StrCat(scheme, "://", host, ":", port));
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return key;
}

DestinationAdmission::DestinationAdmission(AdmissionOptions options, const Clock& clock)
    : options_(options), clock_(clock) {}

Admission DestinationAdmission::Admit(const AdmissionAsk& ask, int& deferred) {
  Destination& d = destinations_[ask.destination];
  Admission out;
  // A destination that holds all it may (running + in line), or whose line
  // would not reach this one before it waited max_queue_wait, refuses it:
  // released before it is rendered, due again about when the destination
  // can take it. Checked first so that a refused delivery takes none of its
  // webhook's rate or concurrency.
  const bool full =
      d.running + static_cast<int>(d.line.size()) >= options_.max_per_host + options_.max_queued_per_host;
  const bool starts_now = d.line.empty() && MayStart(ask.destination, d);
  if (full || (!starts_now && LineTooLong(ask.destination, d))) {
    out.verdict = Admission::kDefer;
    out.backlogged = true;
    out.defer = BacklogWait(ask.destination, d);
    return out;
  }
  const absl::Time now = clock_.Now();
  // Caught up (empty line, no recent refusal): the next backlog is spread
  // out from its own start.
  const auto h = d.line.empty() ? history_.find(ask.destination) : history_.end();
  if (h != history_.end() && now - h->second.last_refusal > kBacklogForgottenAfter) {
    h->second.backlog_until = absl::InfinitePast();
  }
  Ticket ticket{ask.destination, "", false, false, absl::ZeroDuration(), absl::InfinitePast()};
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
  if (starts_now && !RateHolds(ticket, now)) {
    MarkStarted(ask.destination, d, ticket);
    out.verdict = Admission::kStart;
  } else {
    // Its wait counts from its claim: the lease ran from then.
    const absl::Time since = ask.claimed_at == absl::InfinitePast() ? now : std::min(ask.claimed_at, now);
    d.line.push_back(Waiting{ask.tag, false, {}, since});
    out.verdict = Admission::kWait;
  }
  tickets_.emplace(ask.tag, std::move(ticket));
  return out;
}

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
// slot time each, and not before kMinBacklogDefer. Each refusal takes the
// next slot, so a slow destination's backlog comes back spread out at the
// pace it drains (each return costs a claim and a release) instead of all
// at once.
absl::Duration DestinationAdmission::BacklogWait(const std::string& key, const Destination& d) {
  const absl::Time now = clock_.Now();
  History& h = history_[key];
  const absl::Time drained = now + SlotTime(key, d) * (d.running + static_cast<int>(d.line.size()));
  const absl::Duration slot = Pace(key, d) / options_.max_per_host;
  // Capped, so that a long run of refusals does not push later ones ever
  // further out (the returned deferral is capped the same).
  h.backlog_until =
      std::min(std::max({h.backlog_until, drained, now + kMinBacklogDefer}) + slot, now + kMaxBacklogDefer);
  h.last_refusal = now;
  return h.backlog_until - now;
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
  if (sent && ticket.running) {
    // Proven connections are the kept-alive ones the transport holds for the
    // destination. A request started within them took one and gives it back
    // if its connection stayed open; one started beyond them brought one
    // (opened, or an idle one libcurl still had after the count was reset)
    // and adds it if it stayed open. A reused connection that closed is gone.
    History& h = history_[ticket.destination];
    const int change = (connection.kept ? 1 : 0) - (ticket.new_connection ? 0 : 1);
    h.proven = std::clamp(h.proven + change, 0, options_.max_per_host);
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
  if (ticket.running) {
    Destination& d = destinations_[ticket.destination];
    --d.running;
    d.running_since.erase(d.running_since.find(ticket.started_at));  // MarkStarted put it there
  }
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
      expired_.push_back({tag, BacklogWait(key, d)});
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
  const Destination& d = it->second;
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
      expired.push_back({tag, BacklogWait(key, d)});
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
  ticket.started_at = clock_.Now();
  d.running_since.insert(ticket.started_at);
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

absl::Time DestinationAdmission::BacklogUntil(const std::string& destination) const {
  const auto it = history_.find(destination);
  return it == history_.end() ? absl::InfinitePast() : it->second.backlog_until;
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
