#include "services/delivery/enqueue_txn.h"

#include <map>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/log.h"
#include "services/common/uuid.h"
#include "services/delivery/enqueue_recordset.h"
#include "services/delivery/enqueue_sql.h"
#include "services/delivery/notification_ranges.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::delivery::enqueue {
std::string Prefix(const Where& where) {
  return where.index < 0 ? std::string("enqueue") : absl::StrCat("events[", where.index, "]");
}


Flat Flatten(const std::vector<const std::vector<EventToStore>*>& batches,
             const std::vector<absl::Status>* keep) {
  Flat flat;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    if (keep != nullptr && !(*keep)[b].ok()) continue;
    for (std::size_t i = 0; i < batches[b]->size(); ++i) {
      flat.events.push_back(&(*batches[b])[i]);
      flat.batch_of.push_back(b);
      flat.index_in_batch.push_back(i);
    }
  }
  return flat;
}

std::vector<absl::Status> CheckOwners(pqxx::work& txn, const Flat& all, std::size_t batches,
                                      Where& where) {
  std::set<std::string> supplier_ids;
  std::set<std::string> connection_ids;
  for (const EventToStore* e : all.events) {
    supplier_ids.insert(Lower(e->supplier_id));
    if (!e->connection_id.empty()) connection_ids.insert(Lower(e->connection_id));
  }
  where.operation = enqueue::kLockSuppliers.name;
  std::set<std::string> found_suppliers;
  for (const pqxx::row& row :
       txn.exec_prepared(enqueue::kLockSuppliers.name, PlainArray(supplier_ids))) {
    found_suppliers.insert(row[0].as<std::string>());
  }
  std::map<std::string, std::string> connection_supplier;
  if (!connection_ids.empty()) {
    where.operation = enqueue::kLockConnections.name;
    for (const pqxx::row& row :
         txn.exec_prepared(enqueue::kLockConnections.name, PlainArray(connection_ids))) {
      connection_supplier.emplace(row[0].as<std::string>(), row[1].as<std::string>());
    }
  }
  std::vector<absl::Status> status(batches);
  for (std::size_t n = 0; n < all.events.size(); ++n) {
    absl::Status& s = status[all.batch_of[n]];
    if (!s.ok()) continue;
    const EventToStore& e = *all.events[n];
    const std::string supplier = Lower(e.supplier_id);
    if (found_suppliers.count(supplier) == 0) {
      s = absl::NotFoundError(
          absl::StrCat("events[", all.index_in_batch[n], "].supplier_id: no such supplier"));
      continue;
    }
    if (e.connection_id.empty()) continue;
    auto it = connection_supplier.find(Lower(e.connection_id));
    if (it == connection_supplier.end() || it->second != supplier) {
      s = absl::NotFoundError(absl::StrCat("events[", all.index_in_batch[n],
                                           "].connection_id: no such connection of this supplier"));
    }
  }
  return status;
}

// The new events and their deliveries: one statement, no joins (the ids are
// made here, the webhooks matched in C++). An availability publish reaches a
// notification subscription once per product, with the range of its dates;
// a publish is one caller's batch (a group commit stores several), so the
// ranges are keyed by batch and supplier.
void EnqueueTxn::InsertEvents(const std::vector<std::string>& diffs,
                              const enqueue::WebhookIndex& webhooks) {
  auto publish_of = [this](std::size_t i) {
    return absl::StrCat(flat_.batch_of[i], "/", Lower(flat_.events[i]->supplier_id));
  };
  NotificationRanges ranges;
  for (std::size_t i : fresh_) {
    const EventToStore& e = *flat_.events[i];
    if (e.valid->kind != payload::ResourceKind::kAvailability) continue;
    ranges.Add(publish_of(i), e.product_id, e.valid->resource);
  }
  Recordset rows;
  JsonArray resources, localized, final_diffs;
  std::vector<Unordered> unordered;
  for (std::size_t i : fresh_) {
    const EventToStore& e = *flat_.events[i];
    const ValidEvent& v = *e.valid;
    const std::string event_id = NewUuidV7();  // time-ordered: see uuid.h
    const std::string supplier = Lower(e.supplier_id);
    const bool availability = v.kind == payload::ResourceKind::kAvailability;
    const std::string publish = availability ? publish_of(i) : std::string();
    const DateRange* range = availability ? ranges.Find(publish, e.product_id) : nullptr;
    std::vector<const enqueue::WebhookRow*> receivers = webhooks.Receivers(e);
    if (availability) {
      std::erase_if(receivers, [&](const enqueue::WebhookRow* w) {
        // This publish's range for the product is on its way already.
        return w->notification && !ranges.FirstFor(w->id, publish, e.product_id);
      });
    }
    for (const enqueue::WebhookRow* webhook : receivers) {
      if (webhook->ordered) {
        ordered_.push_back({event_id, webhook, &e});
      } else {
        unordered.push_back({webhook, i, range});
      }
    }
    rows.Row()
        .Text("id", event_id)
        .Text("supplier_id", supplier)
        .Text("idempotency_key", e.idempotency_key)
        .TextOrNull("connection_id", Lower(e.connection_id))
        .Text("event", e.event)
        .Text("resource_kind", payload::ResourceKindName(v.kind))
        .Text("resource_key", v.resource_key)
        .Bool("diff_supplied", e.diff_json.has_value())
        .TextOrNull("product_id", e.product_id)
        .TextOrNull("option_id", e.option_id)
        .Int("occurred_at", v.occurred_at_micros)
        .Int("delivery_count", static_cast<std::int64_t>(receivers.size()));
    resources.Add(e.resource_json);
    localized.Add(v.localized_json);
    final_diffs.Add(diffs[i]);
    rows.TextOrNull("notification_date_start", range != nullptr ? range->start : "")
        .TextOrNull("notification_date_end", range != nullptr ? range->end : "");
    StoredEvent stored;
    stored.event_id = event_id;
    stored.delivery_count = static_cast<int>(receivers.size());
    new_deliveries_ += stored.delivery_count;
    stored_[i] = std::move(stored);
  }
  std::vector<EnqueueHandoff::Leased> leased;
  std::string delivery_events, delivery_webhooks, leased_ids;
  SplitForHandoff(unordered, diffs, &leased, &delivery_events, &delivery_webhooks, &leased_ids);
  std::set<std::string_view> handed_webhooks;
  for (const EnqueueHandoff::Leased& l : leased) handed_webhooks.insert(l.webhook_id);
  where_.operation = enqueue::kInsertEvents.name;
  const pqxx::result returned = txn_.exec_prepared(
      enqueue::kInsertEvents.name, rows.Finish(), delivery_events, delivery_webhooks, resources.Finish(),
      localized.Finish(), final_diffs.Finish(), leased_ids,
      static_cast<long long>(handoff_ == nullptr ? 0 : handoff_->lease_ms()), PlainArray(handed_webhooks));
  if (handoff_ != nullptr) handoff_->Build(leased, returned);
}

void EnqueueTxn::SplitForHandoff(const std::vector<Unordered>& deliveries, const std::vector<std::string>& diffs,
                                 std::vector<EnqueueHandoff::Leased>* leased, std::string* events,
                                 std::string* webhooks, std::string* ids) {
  const int slots = handoff_ == nullptr ? 0 : handoff_->Slots(static_cast<int>(deliveries.size()));
  *events = "{";
  *webhooks = "{";
  *ids = "{";
  for (std::size_t n = 0; n < deliveries.size(); ++n) {
    const Unordered& d = deliveries[n];
    const std::string& event_id = stored_[d.index]->event_id;
    const char* sep = n > 0 ? "," : "";
    absl::StrAppend(events, sep, event_id);
    absl::StrAppend(webhooks, sep, d.webhook->id);
    if (static_cast<int>(n) >= slots) continue;
    // Leased: first in the arrays (unnest pads the shorter ids with NULLs).
    std::string id = NewUuidV7();
    absl::StrAppend(ids, sep, id);
    leased->push_back({std::move(id), event_id, d.webhook->id, flat_.events[d.index], &diffs[d.index], d.range});
  }
  events->push_back('}');
  webhooks->push_back('}');
  ids->push_back('}');
}

// Ordered delivery: each (webhook, resource) numbers its deliveries from 1
// in publish order (the group's order), the counter locked until the
// commit; the deliveries wait, and each resource's first pending delivery
// is then made due (it may be an older one, still pending).
void EnqueueTxn::InsertOrderedDeliveries(const std::vector<OrderedDelivery>& deliveries) {
  using Key = std::tuple<std::string, std::string, std::string>;  // webhook, kind, key
  const auto key_of = [](const OrderedDelivery& d) {
    return Key{d.webhook->id, std::string(payload::ResourceKindName(d.event->valid->kind)),
               d.event->valid->resource_key};
  };
  std::map<Key, std::int64_t> counts;
  for (const OrderedDelivery& d : deliveries) ++counts[key_of(d)];
  Recordset resources;
  for (const auto& [key, n] : counts) {
    resources.Row()
        .Text("webhook_id", std::get<0>(key))
        .Text("resource_kind", std::get<1>(key))
        .Text("resource_key", std::get<2>(key))
        .Int("n", n);
  }
  // key -> (ordered_resources.id, the last number taken before this batch)
  std::map<Key, std::pair<std::int64_t, std::int64_t>> taken;
  std::string resource_ids = "{";
  where_.operation = enqueue::kTakeSequences.name;
  for (const pqxx::row& row : txn_.exec_prepared(enqueue::kTakeSequences.name, resources.Finish())) {
    Key key{row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<std::string>()};
    const std::int64_t id = row[0].as<std::int64_t>();
    const std::int64_t last = row[4].as<std::int64_t>();
    absl::StrAppend(&resource_ids, resource_ids.size() > 1 ? "," : "", id);
    taken[key] = {id, last - counts.at(key)};
  }
  resource_ids.push_back('}');
  std::string events = "{", webhooks = "{", ids = "{", sequences = "{", occurred = "{";
  for (const OrderedDelivery& d : deliveries) {
    auto& [id, last] = taken.at(key_of(d));
    const char* sep = events.size() > 1 ? "," : "";
    absl::StrAppend(&events, sep, d.event_id);
    absl::StrAppend(&webhooks, sep, d.webhook->id);
    absl::StrAppend(&ids, sep, id);
    absl::StrAppend(&sequences, sep, ++last);
    absl::StrAppend(&occurred, sep, d.event->valid->occurred_at_micros);
  }
  for (std::string* array : {&events, &webhooks, &ids, &sequences, &occurred}) array->push_back('}');
  where_.operation = enqueue::kInsertOrderedDeliveries.name;
  txn_.exec_prepared(enqueue::kInsertOrderedDeliveries.name, events, webhooks, ids, sequences, occurred);
  where_.operation = enqueue::kPromoteHeadsAfterEnqueue.name;
  txn_.exec_prepared(enqueue::kPromoteHeadsAfterEnqueue.name, resource_ids);
}

// The last state of each resource the batch changed.
void EnqueueTxn::UpsertSnapshots() {
  Recordset changed;
  JsonArray documents;
  for (const auto& [id, s] : snapshots_) {
    if (!s.changed) continue;
    changed.Row()
        .Text("supplier_id", std::get<0>(id))
        .Text("resource_kind", std::get<1>(id))
        .Text("resource_key", std::get<2>(id))
        .Int("occurred_at", s.occurred_at);
    documents.Add(s.resource);
  }
  if (changed.empty()) return;
  where_.operation = enqueue::kUpsertSnapshots.name;
  txn_.exec_prepared0(enqueue::kUpsertSnapshots.name, changed.Finish(), documents.Finish());
}

}  // namespace octo::delivery::enqueue
