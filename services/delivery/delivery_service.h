#pragma once
// octo.webhooks.v1.DeliveryService: accepts events from the subscription
// service and stores them durably (EventStore: resolves their webhooks and
// stores events and deliveries in one transaction) before answering.
//
// Enqueue validates every event first (octo::delivery::ValidateEvent; at most
// kMaxEventsPerBatch events): one invalid event rejects the whole request with
// INVALID_ARGUMENT naming it ("events[3].event.resource_json: ..."), and
// nothing is stored. Then the batch is stored (with the batches of concurrent
// calls when the store is a GroupCommitEventStore) and the answer, one result
// per event in order, is sent only after the commit. Other codes are the
// store's (store.h). An empty request answers OK with no results.
// Thread-safe.
#include <grpcpp/grpcpp.h>

#include "octo/webhooks/v1/delivery.grpc.pb.h"
#include "services/delivery/store.h"

namespace octo::delivery {

class DeliveryServiceImpl final : public ::octo::webhooks::v1::DeliveryService::Service {
 public:
  // `store` must outlive the service.
  explicit DeliveryServiceImpl(EventStore* store) : store_(store) {}

  grpc::Status Enqueue(grpc::ServerContext* context,
                       const ::octo::webhooks::v1::EnqueueRequest* request,
                       ::octo::webhooks::v1::EnqueueResponse* response) override;

 private:
  EventStore* const store_;
};

}  // namespace octo::delivery
