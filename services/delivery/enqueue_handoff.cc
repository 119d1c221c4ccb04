#include "services/delivery/enqueue_handoff.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "services/common/log.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::delivery::enqueue {
namespace {

// The webhook's part of a handed-off delivery, as kClaim returns it
// (kInsertEvents' columns 0-16).
void FillWebhook(const pqxx::row& row, ClaimedDelivery& d) {
  d.webhook_event = row[1].as<std::string>();
  d.url = row[2].as<std::string>();
  d.retry_on_error = row[3].as<bool>();
  d.use_contact_language = row[4].as<bool>();
  d.headers_json = row[5].as<std::string>();
  d.capabilities_json = row[6].as<std::string>();
  d.secret = row[7].as<std::string>();
  d.webhook_enabled = row[8].as<bool>();
  d.supplier_id = row[9].as<std::string>();
  d.supplier_name = row[10].as<std::string>();
  d.supplier_endpoint = row[11].as<std::string>();
  d.supplier_contact_json = row[12].as<std::string>();
  d.previous_secret = row[13].as<std::string>();
  d.rate_limit_per_second = row[14].as<double>();
  d.max_concurrency = row[15].as<int>();
  d.dialect = row[16].as<std::string>();
}

std::string Trimmed(std::string_view json) {
  const absl::string_view t = absl::StripAsciiWhitespace(absl::string_view(json.data(), json.size()));
  return std::string(t.data(), t.size());
}

// The event as a claim reads it back (kClaimEvents): what was stored.
ClaimedEvent EventOf(const EnqueueHandoff::Leased& l, int64_t created_us) {
  const EventToStore& e = *l.event;
  ClaimedEvent c;
  c.id = l.event_id;
  c.event = std::string(e.event);
  c.resource_kind = std::string(payload::ResourceKindName(e.valid->kind));
  c.resource_json = Trimmed(e.resource_json);
  c.localized_json = e.valid->localized_json.empty() ? "{}" : Trimmed(e.valid->localized_json);
  c.diff_json = l.diff == nullptr || l.diff->empty() ? "[]" : Trimmed(*l.diff);
  c.product_id = std::string(e.product_id);
  c.option_id = std::string(e.option_id);
  c.created_at = absl::FromUnixMicros(created_us);
  c.occurred_at_us = e.valid->occurred_at_micros;
  if (l.range != nullptr) {
    c.notification_date_start = l.range->start;
    c.notification_date_end = l.range->end;
  }
  return c;
}

}  // namespace

void EnqueueHandoff::Begin() {
  batch_ = ClaimBatch{};
  leased_ = 0;
  if (target_ != nullptr) batch_.claimed_at = target_->Now();
}

int EnqueueHandoff::Slots(int wanted) {
  if (target_ == nullptr || wanted <= 0) return 0;
  // Reserved once per enqueue: a rerun of the transaction (deadlock,
  // serialization failure) uses what the first run got, so one enqueue never
  // holds more than one claim batch (ClaimScheduler::Reserve).
  if (!reserved_once_) {
    reserved_once_ = true;
    reserved_ = target_->Reserve(wanted);
  }
  return std::min(reserved_, wanted);
}

void EnqueueHandoff::Build(const std::vector<Leased>& leased, const pqxx::result& webhooks) {
  leased_ = static_cast<int>(leased.size());
  if (leased.empty()) return;
  std::unordered_map<std::string, pqxx::result::size_type> by_id;
  for (pqxx::result::size_type i = 0; i < webhooks.size(); ++i) by_id.emplace(webhooks[i][0].as<std::string>(), i);
  batch_.deliveries.reserve(leased.size());
  for (const Leased& l : leased) {
    const auto it = by_id.find(l.webhook_id);
    if (it == by_id.end()) {
      // Cannot happen (the webhook is locked FOR KEY SHARE since its
      // resolution); its lease runs out and a claim takes it.
      log::Error("a handed-off delivery's webhook was not read back", {{"delivery_id", l.delivery_id}});
      continue;
    }
    const pqxx::row row = webhooks[it->second];
    ClaimedDelivery d;
    d.id = l.delivery_id;
    d.event_id = l.event_id;
    d.webhook_id = l.webhook_id;
    d.attempt_count = 0;  // this lease reserved attempt 1 (claimed_attempt)
    d.lease_us = row[17].as<int64_t>();
    d.created_us = row[18].as<int64_t>();
    FillWebhook(row, d);
    if (!batch_.events.contains(l.event_id)) batch_.events.emplace(l.event_id, EventOf(l, d.created_us));
    batch_.deliveries.push_back(std::move(d));
  }
}

void EnqueueHandoff::Finish(bool committed) {
  if (target_ == nullptr) return;
  int used = 0;
  if (committed && !batch_.deliveries.empty()) {
    used = static_cast<int>(batch_.deliveries.size());
    target_->Dispatch(std::move(batch_));
  }
  batch_ = ClaimBatch{};
  target_->Unreserve(reserved_ - used);
  reserved_ = 0;
  leased_ = 0;
}

}  // namespace octo::delivery::enqueue
