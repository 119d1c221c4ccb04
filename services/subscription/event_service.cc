#include "services/subscription/event_service.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "services/common/status.h"
#include "services/delivery/event_validation.h"
#include "services/subscription/rpc_util.h"

namespace octo::subscription {
namespace {

namespace pb = ::octo::webhooks::v1;

// The message prefix naming event `i` of a request: "events[i]." for
// PublishEvents, nothing for PublishEvent.
std::string FieldPrefix(bool batch, int i) {
  return batch ? absl::StrCat("events[", i, "].") : std::string();
}

// What a publisher should do about a failed Enqueue: retry (UNAVAILABLE) or
// not. The delivery service validates with the same rules as we do, so its
// INVALID_ARGUMENT and NOT_FOUND mean a race (a supplier deleted meanwhile) or
// version skew: passed on as they are.
absl::Status FromEnqueueStatus(const grpc::Status& status) {
  const std::string message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::CANCELLED:
      return FromGrpcStatus(status);
    // Nothing or everything of the batch was committed: the same keys
    // published again store at most once, so retrying is safe.
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
      return absl::UnavailableError(
          absl::StrCat("the delivery service could not store the events (",
                       absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                       ": ", message, "); publish again with the same idempotency keys"));
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return absl::ResourceExhaustedError(absl::StrCat(
          "the delivery service refused the batch (", message, "); publish fewer events per call"));
    default:
      return absl::InternalError(
          absl::StrCat("the delivery service failed (",
                       absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                       ": ", message, ")"));
  }
}

// Validates, resolves and enqueues `events`; one result per event.
absl::Status Publish(Repository* repository, pb::DeliveryService::StubInterface* delivery,
                     std::chrono::milliseconds delivery_timeout, grpc::ServerContext* context,
                     const std::vector<const pb::PublishEventRequest*>& events, bool batch,
                     metrics::PublishMetrics* metrics,
                     std::vector<pb::PublishEventResponse>* results) {
  const int count = static_cast<int>(events.size());
  if (count > delivery::kMaxEventsPerBatch) {
    return absl::InvalidArgumentError(absl::StrCat("events: at most ", delivery::kMaxEventsPerBatch,
                                                   " per request, got ", count));
  }
  if (count == 0) return absl::OkStatus();

  // 1. Validate everything before touching the database.
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<delivery::ValidEvent> valid =
        delivery::ValidateEvent(*events[i], FieldPrefix(batch, i));
    if (!valid.ok()) return valid.status();
  }

  // 2. Resolve, once per distinct (supplier, connection, event).
  std::vector<EventTarget> targets;
  std::map<std::tuple<std::string, std::string, std::string>, int> target_index;
  std::vector<int> target_of(count);
  for (int i = 0; i < count; ++i) {
    const pb::PublishEventRequest& e = *events[i];
    auto [it, inserted] =
        target_index.emplace(std::make_tuple(e.supplier_id(), e.connection_id(), e.event()),
                             static_cast<int>(targets.size()));
    if (inserted) targets.push_back(EventTarget{e.supplier_id(), e.connection_id(), e.event()});
    target_of[i] = it->second;
  }
  absl::StatusOr<std::vector<ResolvedTarget>> resolved = repository->ResolveWebhooks(targets);
  if (!resolved.ok()) {
    if (absl::IsAborted(resolved.status())) {
      return absl::UnavailableError(absl::StrCat(resolved.status().message(), "; publish again"));
    }
    return resolved.status();
  }
  for (int i = 0; i < count; ++i) {
    const ResolvedTarget& r = (*resolved)[target_of[i]];
    if (!r.supplier_exists) {
      return absl::NotFoundError(
          absl::StrCat(FieldPrefix(batch, i), "supplier_id: no such supplier"));
    }
    if (!r.connection_exists) {
      return absl::NotFoundError(absl::StrCat(
          FieldPrefix(batch, i), "connection_id: no such connection of this supplier"));
    }
  }

  // 3. Enqueue the batch: one transaction in the delivery service.
  pb::EnqueueRequest request;
  for (int i = 0; i < count; ++i) {
    pb::EnqueueEvent* e = request.add_events();
    *e->mutable_event() = *events[i];
    for (const std::string& id : (*resolved)[target_of[i]].webhook_ids) e->add_webhook_ids(id);
  }
  if (request.ByteSizeLong() > static_cast<std::size_t>(delivery::kMaxEnqueueRequestBytes)) {
    return absl::ResourceExhaustedError(
        "events: too large with the webhooks they resolve to; publish fewer events per call");
  }
  grpc::ClientContext client;
  auto deadline = std::chrono::system_clock::now() + delivery_timeout;
  if (context != nullptr) deadline = std::min(deadline, context->deadline());
  client.set_deadline(deadline);
  pb::EnqueueResponse response;
  const grpc::Status status = delivery->Enqueue(&client, request, &response);
  if (!status.ok()) return FromEnqueueStatus(status);
  if (response.results_size() != count) {
    return absl::InternalError("the delivery service answered a different number of events");
  }
  results->assign(response.results().begin(), response.results().end());
  if (metrics != nullptr) {
    for (int i = 0; i < count; ++i) {
      const pb::PublishEventResponse& r = (*results)[i];
      metrics->EventPublished(events[i]->event(), r.duplicate(), r.delivery_count());
    }
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status EventServiceImpl::PublishEvent(grpc::ServerContext* context,
                                            const pb::PublishEventRequest* request,
                                            pb::PublishEventResponse* response) {
  return HandleRpc("EventService/PublishEvent", [&](RpcLogFields& log) -> absl::Status {
    log.connection_id = request->connection_id();
    std::vector<pb::PublishEventResponse> results;
    absl::Status s = Publish(repository_, delivery_, delivery_timeout_, context, {request},
                             /*batch=*/false, metrics_, &results);
    if (!s.ok()) return s;
    if (results.size() != 1) return absl::InternalError("no result for the event");
    *response = std::move(results[0]);
    return absl::OkStatus();
  });
}

grpc::Status EventServiceImpl::PublishEvents(grpc::ServerContext* context,
                                             const pb::PublishEventsRequest* request,
                                             pb::PublishEventsResponse* response) {
  return HandleRpc("EventService/PublishEvents", [&](RpcLogFields&) -> absl::Status {
    std::vector<const pb::PublishEventRequest*> events;
    events.reserve(request->events_size());
    for (const pb::PublishEventRequest& e : request->events()) events.push_back(&e);
    std::vector<pb::PublishEventResponse> results;
    absl::Status s = Publish(repository_, delivery_, delivery_timeout_, context, events,
                             /*batch=*/true, metrics_, &results);
    if (!s.ok()) return s;
    for (pb::PublishEventResponse& r : results) *response->add_results() = std::move(r);
    return absl::OkStatus();
  });
}

}  // namespace octo::subscription
