#pragma once
// octo.webhooks.v1.EventService: where internal services publish domain
// events. Validate every event (octo::delivery::ValidateEvent; the whole
// batch before anything else), then hand the batch to
// DeliveryService.Enqueue, which resolves the enabled webhooks that want each
// event (its connection's, or every connection's of the supplier) and stores
// the events and their deliveries in one transaction, resolving only there so
// that what is stored is what the transaction saw. OK means committed.
//
// Status codes:
//   INVALID_ARGUMENT    an invalid event ("events[3].resource_json: ...";
//                       PublishEvent has no "events[i]." prefix), or more than
//                       500 events; nothing is stored.
//   NOT_FOUND           an event's supplier does not exist, or its
//                       connection is not one of that supplier's
//                       ("events[3].supplier_id: no such supplier"); nothing
//                       is stored.
//   UNAVAILABLE         the database or the delivery service is unreachable,
//                       too slow, or had to abort: publish again with the same
//                       idempotency keys (safe: a key stores at most once).
//   RESOURCE_EXHAUSTED  the batch is too large for one Enqueue; publish
//                       fewer events per call.
//   INTERNAL            anything else.
// An event no webhook wants is still stored (for idempotency, and as the
// snapshot later diffs are computed against), with delivery_count 0.
// Thread-safe.
#include <chrono>

#include <grpcpp/grpcpp.h>

#include "octo/webhooks/v1/delivery.grpc.pb.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "services/common/metrics.h"

namespace octo::subscription {

class EventServiceImpl final : public ::octo::webhooks::v1::EventService::Service {
 public:
  // `delivery` (a DeliveryService stub) must outlive the service. Each
  // Enqueue call gets `delivery_timeout`, or what is left of the caller's
  // deadline if that is sooner.
  // `metrics` (may be null) counts accepted and duplicate events.
  EventServiceImpl(::octo::webhooks::v1::DeliveryService::StubInterface* delivery,
                   std::chrono::milliseconds delivery_timeout,
                   metrics::PublishMetrics* metrics = nullptr)
      : delivery_(delivery),
        delivery_timeout_(delivery_timeout),
        metrics_(metrics) {}

  grpc::Status PublishEvent(grpc::ServerContext* context,
                            const ::octo::webhooks::v1::PublishEventRequest* request,
                            ::octo::webhooks::v1::PublishEventResponse* response) override;
  grpc::Status PublishEvents(grpc::ServerContext* context,
                             const ::octo::webhooks::v1::PublishEventsRequest* request,
                             ::octo::webhooks::v1::PublishEventsResponse* response) override;

 private:
  ::octo::webhooks::v1::DeliveryService::StubInterface* const delivery_;
  const std::chrono::milliseconds delivery_timeout_;
  metrics::PublishMetrics* const metrics_;
};

}  // namespace octo::subscription
