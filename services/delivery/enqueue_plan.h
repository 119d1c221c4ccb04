#pragma once
// The pure steps of storing a batch of events (PgEventStore, store.cc): what
// can be decided in C++ between the statements of the enqueue transaction,
// without I/O, so it is unit-tested on its own (tests/unit/enqueue_plan_test).
//
//   FirstOfKey      which event of the batch stands for each idempotency key
//                   (a key repeated in the batch answers as its first);
//   ChainDiffs      the computed diffs, chained per resource in request order
//                   from the stored snapshot, and the snapshots to write;
//   WebhookIndex    the enabled webhooks the transaction read, and which of
//                   them receive an event: same supplier, the webhook's event
//                   or one of its event_types, and the event's connection
//                   when it names one.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "absl/status/status.h"
#include "services/delivery/store.h"

namespace octo::delivery::enqueue {

// The events of one transaction, in order (of one or several callers).
using Events = std::vector<const EventToStore*>;

std::string Lower(std::string_view s);

// first[i] is the index of the first event with event i's (supplier,
// idempotency key); first[i] == i for that first one.
std::vector<std::size_t> FirstOfKey(const Events& events);

// (supplier, resource kind, resource key), the supplier lower-case.
using ResourceId = std::tuple<std::string, std::string_view, std::string_view>;
ResourceId ResourceOf(const EventToStore& event);

// A resource's latest state while the batch is applied.
struct Snapshot {
  bool exists = false;   // stored before, or set by an earlier event of the batch
  bool changed = false;  // to be written back
  std::string_view resource;                   // into `stored_text` or an event
  const boost::json::value* parsed = nullptr;  // of an event of the batch
  std::string stored_text;
  std::int64_t occurred_at = 0;  // microseconds since the epoch
};
using Snapshots = std::map<ResourceId, Snapshot>;

// Sets (*diffs)[i] for every i in `fresh` (indexes of the events to insert,
// in request order): the supplied diff, "[]" for the first known state of a
// resource, or the diff from the resource's latest state. A newer event
// advances its snapshot; an older one diffs against it and leaves it.
// `snapshots` must hold an entry for every resource of `fresh`. INTERNAL
// ("<index>") if a stored snapshot is not JSON; *bad_index says which event.
absl::Status ChainDiffs(const Events& events, const std::vector<std::size_t>& fresh,
                        Snapshots& snapshots, std::vector<std::string>* diffs, int* bad_index);

// One enabled webhook as the transaction read it (ids lower-case).
struct WebhookRow {
  std::string id;
  std::string connection_id;
  std::string supplier_id;
  std::string event;
  bool notification = false;             // the thin-body dialect
  std::vector<std::string> event_types;  // every type it wants besides `event`
  bool ordered = false;                  // ordered delivery per resource
};

class WebhookIndex {
 public:
  explicit WebhookIndex(std::vector<WebhookRow> rows);
  // The webhooks that receive `event`, each once, in the order of the rows.
  std::vector<const WebhookRow*> Receivers(const EventToStore& event) const;

 private:
  std::vector<WebhookRow> rows_;
  // (supplier, event or one of event_types) -> rows.
  std::map<std::pair<std::string_view, std::string_view>, std::vector<const WebhookRow*>> by_target_;
};

}  // namespace octo::delivery::enqueue
