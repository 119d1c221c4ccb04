#include "services/delivery/enqueue_plan.h"

#include <set>
#include <system_error>

#include "absl/strings/ascii.h"
#include "services/common/strings.h"
#include "services/delivery/payload/json_diff.h"
#include "services/delivery/payload/json_parse.h"
#include "services/delivery/payload/json_text.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::delivery::enqueue {

std::string Lower(std::string_view s) { return absl::AsciiStrToLower(AbslView(s)); }

std::vector<std::size_t> FirstOfKey(const Events& events) {
  std::vector<std::size_t> first(events.size());
  std::map<std::pair<std::string, std::string_view>, std::size_t> by_key;
  for (std::size_t i = 0; i < events.size(); ++i) {
    first[i] = by_key.emplace(std::pair(Lower(events[i]->supplier_id), events[i]->idempotency_key), i)
                   .first->second;
  }
  return first;
}

ResourceId ResourceOf(const EventToStore& event) {
  const ValidEvent& v = *event.valid;
  return ResourceId{Lower(event.supplier_id), payload::ResourceKindName(v.kind),
                    std::string_view(v.resource_key)};
}

namespace {

// The diff of a new event without a supplied one, from the latest state `s`.
absl::Status ComputedDiff(const EventToStore& e, const Snapshot& s, std::string* diff) {
  if (!s.exists) {
    *diff = "[]";  // the first state known of the resource
    return absl::OkStatus();
  }
  boost::json::value before_storage;
  const boost::json::value* before = s.parsed;
  if (before == nullptr) {
    std::error_code ec;
    before_storage = payload::ParseJsonText(s.resource, ec);
    if (ec) return absl::InternalError("the stored snapshot of the resource is unreadable");
    before = &before_storage;
  }
  *diff = payload::SerializeCompact(payload::ComputeDiff(*before, e.valid->resource));
  return absl::OkStatus();
}

}  // namespace

absl::Status ChainDiffs(const Events& events, const std::vector<std::size_t>& fresh,
                        Snapshots& snapshots, std::vector<std::string>* diffs, int* bad_index) {
  diffs->assign(events.size(), std::string());
  for (std::size_t i : fresh) {
    const EventToStore& e = *events[i];
    const ValidEvent& v = *e.valid;
    Snapshot& s = snapshots.at(ResourceOf(e));
    if (e.diff_json) {
      (*diffs)[i] = std::string(*e.diff_json);
    } else if (absl::Status st = ComputedDiff(e, s, &(*diffs)[i]); !st.ok()) {
      *bad_index = static_cast<int>(i);
      return st;
    }
    if (!s.exists || s.occurred_at <= v.occurred_at_micros) {
      s.exists = true;
      s.changed = true;
      s.resource = e.resource_json;
      s.parsed = &v.resource;
      s.occurred_at = v.occurred_at_micros;
    }
  }
  return absl::OkStatus();
}

WebhookIndex::WebhookIndex(std::vector<WebhookRow> rows) : rows_(std::move(rows)) {
  for (const WebhookRow& row : rows_) {
    by_target_[{row.supplier_id, row.event}].push_back(&row);
    for (const std::string& type : row.event_types) {
      if (type != row.event) by_target_[{row.supplier_id, type}].push_back(&row);
    }
  }
}

std::vector<const WebhookRow*> WebhookIndex::Receivers(const EventToStore& event) const {
  std::vector<const WebhookRow*> out;
  const std::string supplier = Lower(event.supplier_id);
  auto it = by_target_.find({supplier, event.event});
  if (it == by_target_.end()) return out;
  const std::string connection = Lower(event.connection_id);
  std::set<std::string_view> seen;
  for (const WebhookRow* row : it->second) {
    if (!connection.empty() && row->connection_id != connection) continue;
    if (seen.insert(row->id).second) out.push_back(row);
  }
  return out;
}

}  // namespace octo::delivery::enqueue
