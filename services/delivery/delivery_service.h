#pragma once
// octo.webhooks.v1.DeliveryService: accepts events resolved by the
// subscription service and stores them durably (EventStore) before answering.
//
// Enqueue validates every event first (octo::delivery::ValidateEvent, plus
// webhook_ids: UUIDs, at most kMaxWebhooksPerEvent; at most
// kMaxEventsPerBatch events): one invalid event rejects the whole request with
// INVALID_ARGUMENT naming it ("events[3].event.resource_json: ..."), and
// nothing is stored. Then the batch is stored in one transaction and the
// answer, one result per event in order, is sent only after the commit.
// Other codes are the store's (store.h). An empty request answers OK with no
// results. Thread-safe.
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
