#pragma once
// octo.webhooks.v1.DeliveryOperationsService (operations.proto): validates
// each request, then runs it on PgOperationsStore. Called by the subscription
// service, which forwards its partners' requests scoped to their connection.
//
// Validation (INVALID_ARGUMENT, message "<field>: ..."): connection_id a
// UUID; page_size 0..100 (0 = 20); page_token from a previous page; state a
// known value; event "" or one of the five events; since set and a valid
// timestamp; max_count 0..1000 (0 = 100). A webhook_id or delivery_id that is
// not a UUID answers NOT_FOUND, exactly like an unknown one. Other codes are
// the store's (operations_store.h). Thread-safe.
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

#include "octo/webhooks/v1/operations.grpc.pb.h"
#include "services/delivery/operations_store.h"

namespace octo::delivery {

inline constexpr int kDefaultDeliveryPageSize = 20;
inline constexpr int kMaxDeliveryPageSize = 100;
inline constexpr int kDefaultReplayCount = 100;
inline constexpr int kMaxReplayCount = 1000;

// "pending", "succeeded", "failed", "cancelled"; "" for UNSPECIFIED;
// INVALID_ARGUMENT ("state: ...") for a value outside the enum.
absl::StatusOr<std::string> DeliveryStateName(int state);

class OperationsServiceImpl final
    : public ::octo::webhooks::v1::DeliveryOperationsService::Service {
 public:
  // `store` must outlive the service.
  explicit OperationsServiceImpl(PgOperationsStore* store) : store_(store) {}

  grpc::Status ListDeliveries(grpc::ServerContext* context,
                              const ::octo::webhooks::v1::ListDeliveriesRequest* request,
                              ::octo::webhooks::v1::ListDeliveriesResponse* response) override;
  grpc::Status GetDelivery(grpc::ServerContext* context,
                           const ::octo::webhooks::v1::GetDeliveryRequest* request,
                           ::octo::webhooks::v1::Delivery* response) override;
  grpc::Status RedeliverDelivery(grpc::ServerContext* context,
                                 const ::octo::webhooks::v1::RedeliverDeliveryRequest* request,
                                 ::octo::webhooks::v1::Delivery* response) override;
  grpc::Status ReplayDeliveries(grpc::ServerContext* context,
                                const ::octo::webhooks::v1::ReplayDeliveriesRequest* request,
                                ::octo::webhooks::v1::ReplayDeliveriesResponse* response) override;
  grpc::Status SendTestEvent(grpc::ServerContext* context,
                             const ::octo::webhooks::v1::SendTestEventRequest* request,
                             ::octo::webhooks::v1::SendTestEventResponse* response) override;

 private:
  PgOperationsStore* const store_;
};

}  // namespace octo::delivery
