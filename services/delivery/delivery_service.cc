#include "services/delivery/delivery_service.h"

#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/monotonic_resource.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/log.h"
#include "services/common/rpc_handler.h"
#include "services/common/status.h"
#include "services/delivery/event_validation.h"

namespace octo::delivery {
namespace {

namespace pb = ::octo::webhooks::v1;

absl::Status Enqueue(EventStore* store, const pb::EnqueueRequest& request,
                     pb::EnqueueResponse* response, int* deliveries) {
  const int count = request.events_size();
  if (count > kMaxEventsPerBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("events: at most ", kMaxEventsPerBatch, " per request, got ", count));
  }
  // Validate everything before storing anything. The parsed resources live
  // only until the store answers: their nodes come from one arena, freed in
  // one go after the call (declared first, so it outlives `valid`), not node
  // by node. Only this call's thread, or the group commit's leader while
  // this one waits, reads them.
  boost::json::monotonic_resource parses;
  const boost::json::storage_ptr storage(&parses);
  std::vector<ValidEvent> valid;
  valid.reserve(count);
  for (int i = 0; i < count; ++i) {
    const pb::EnqueueEvent& e = request.events(i);
    if (!e.has_event())
      return absl::InvalidArgumentError(absl::StrCat("events[", i, "].event: required"));
    absl::StatusOr<ValidEvent> v =
        ValidateEvent(e.event(), absl::StrCat("events[", i, "].event."), storage);
    if (!v.ok()) return v.status();
    valid.push_back(*std::move(v));
  }

  std::vector<EventToStore> batch;
  batch.reserve(count);
  for (int i = 0; i < count; ++i) {
    const pb::PublishEventRequest& e = request.events(i).event();
    EventToStore s;
    s.supplier_id = e.supplier_id();
    s.idempotency_key = e.idempotency_key();
    s.connection_id = e.connection_id();
    s.event = e.event();
    s.resource_json = e.resource_json();
    if (e.has_diff_json()) s.diff_json = e.diff_json();
    s.product_id = e.product_id();
    s.option_id = e.option_id();
    s.valid = &valid[i];
    batch.push_back(std::move(s));
  }
  absl::StatusOr<std::vector<StoredEvent>> stored = store->Enqueue(batch);
  if (!stored.ok()) return stored.status();
  if (static_cast<int>(stored->size()) != count) {
    return absl::InternalError("enqueue: the store answered a different number of events");
  }
  for (StoredEvent& s : *stored) {
    pb::PublishEventResponse* r = response->add_results();
    r->set_event_id(std::move(s.event_id));
    r->set_delivery_count(s.delivery_count);
    r->set_duplicate(s.duplicate);
    if (!s.duplicate) *deliveries += s.delivery_count;
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status DeliveryServiceImpl::Enqueue(grpc::ServerContext*, const pb::EnqueueRequest* request,
                                          pb::EnqueueResponse* response) {
  const auto start = std::chrono::steady_clock::now();
  int deliveries = 0;
  const absl::Status status = RunHandlerBody(
      "DeliveryService/Enqueue", [&] { return delivery::Enqueue(store_, *request, response, &deliveries); });
  if (!status.ok()) response->Clear();
  const std::string duration = MillisecondsSince(start);
  const std::string code = absl::StatusCodeToString(status.code());
  const std::string events = std::to_string(request->events_size());
  const std::string created = std::to_string(deliveries);
  const bool server_fault = IsServerFault(status);
  if (status.ok()) {
    log::Info("rpc", {{"method", "DeliveryService/Enqueue"},
                      {"code", code},
                      {"duration_ms", duration},
                      {"events", events},
                      {"deliveries", created}});
  } else {
    const std::string error(status.message());
    log::Write(server_fault ? log::Level::kError : log::Level::kInfo, "rpc",
               {{"method", "DeliveryService/Enqueue"},
                {"code", code},
                {"duration_ms", duration},
                {"events", events},
                {"error", error}});
  }
  return ToGrpcStatus(status);
}

}  // namespace octo::delivery
