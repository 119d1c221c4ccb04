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
  // Whatever the verdict: a pull of its parked backlog needs its webhooks.
  History& seen = history_[ask.destination];
  NoteWebhook(seen, ask.webhook_id, clock_.Now());
  if (ask.parked) seen.parked = true;
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

int DestinationAdmission::Running(const std::string& destination) const {
  const auto it = destinations_.find(destination);
  return it == destinations_.end() ? 0 : it->second.running;
}

int DestinationAdmission::Queued(const std::string& destination) const {
  const auto it = destinations_.find(destination);
  return it == destinations_.end() ? 0 : static_cast<int>(it->second.line.size());
}

}  // namespace octo::delivery
