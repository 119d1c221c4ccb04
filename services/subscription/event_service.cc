#include "services/subscription/event_service.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <boost/json/monotonic_resource.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/grpc_auth.h"
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
// not. NOT_FOUND (an unknown supplier, or a connection not of that supplier)
// is the delivery service's answer; it validates with the same rules as we
// do, so its INVALID_ARGUMENT means version skew: passed on as it is.
absl::Status FromEnqueueStatus(const grpc::Status& status, bool batch) {
  if (grpc_auth::IsCallerRefusal(status)) return grpc_auth::FromInternalCall(status, "octo-delivery");
  const std::string message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      // "events[0].supplier_id: ..." names the field of a PublishEvent
      // without the batch prefix, as its validation errors do.
      if (!batch && absl::StartsWith(message, "events[0].")) {
        return absl::NotFoundError(message.substr(std::strlen("events[0].")));
      }
      return FromGrpcStatus(status);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::CANCELLED:
      return FromGrpcStatus(status);
    // The connection was lost during the commit, which may or may not have
    // happened: all of the batch or none of it is stored.
    case grpc::StatusCode::UNKNOWN:
      return absl::UnavailableError(absl::StrCat(
          "the delivery service may or may not have stored the events (", message,
          "); publish again with the same idempotency keys"));
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

// Releases the events an EnqueueRequest borrowed (unsafe_arena_set_allocated)
// when it goes out of scope, before the request itself.
class BorrowedEvents {
 public:
  explicit BorrowedEvents(pb::EnqueueRequest* request) : request_(request) {}
  BorrowedEvents(const BorrowedEvents&) = delete;
  BorrowedEvents& operator=(const BorrowedEvents&) = delete;
  ~BorrowedEvents() {
    for (pb::EnqueueEvent& e : *request_->mutable_events()) e.unsafe_arena_release_event();
  }

 private:
  pb::EnqueueRequest* request_;
};

// Validates and enqueues `events`; one result per event.
absl::Status Publish(pb::DeliveryService::StubInterface* delivery,
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

  // 1. Validate everything before touching the database. The parses are
  //    only checked and dropped: each event's nodes come from a buffer on the
  //    stack (a large document continues on the heap), released at once.
  for (int i = 0; i < count; ++i) {
    unsigned char buffer[8192];
    boost::json::monotonic_resource parses(buffer, sizeof buffer);
    absl::StatusOr<delivery::ValidEvent> valid = delivery::ValidateEvent(
        *events[i], FieldPrefix(batch, i), boost::json::storage_ptr(&parses));
    if (!valid.ok()) return valid.status();
  }

  // 2. Enqueue: the delivery service resolves the webhooks and stores the
  //    events in one transaction.
  //    The request borrows the caller's events instead of copying them
  //    (~10 k instructions per event): gRPC owns them until this handler
  //    returns, serializing reads them only, and every one is released
  //    before the request is destroyed, so it never frees what it does not own.
  //    The guard comes first: should add_events() throw halfway, what was
  //    borrowed so far is released before the request is destroyed.
  pb::EnqueueRequest request;
  const BorrowedEvents borrowed(&request);
  request.mutable_events()->Reserve(count);
  for (int i = 0; i < count; ++i) {
    request.add_events()->unsafe_arena_set_allocated_event(
        const_cast<pb::PublishEventRequest*>(events[i]));
  }
  if (request.ByteSizeLong() > static_cast<std::size_t>(delivery::kMaxEnqueueRequestBytes)) {
    return absl::ResourceExhaustedError("events: too large; publish fewer events per call");
  }
  grpc::ClientContext client;
  auto deadline = std::chrono::system_clock::now() + delivery_timeout;
  if (context != nullptr) deadline = std::min(deadline, context->deadline());
  client.set_deadline(deadline);
  pb::EnqueueResponse response;
  const grpc::Status status = delivery->Enqueue(&client, request, &response);
  if (!status.ok()) return FromEnqueueStatus(status, batch);
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
    absl::Status s = Publish(delivery_, delivery_timeout_, context, {request},
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
    absl::Status s = Publish(delivery_, delivery_timeout_, context, events,
                             /*batch=*/true, metrics_, &results);
    if (!s.ok()) return s;
    for (pb::PublishEventResponse& r : results) *response->add_results() = std::move(r);
    return absl::OkStatus();
  });
}

}  // namespace octo::subscription
