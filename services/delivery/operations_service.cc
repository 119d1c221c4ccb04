#include "services/delivery/operations_service.h"

#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "services/common/log.h"
#include "services/common/rpc_handler.h"
#include "services/common/status.h"
#include "services/common/validation.h"

namespace octo::delivery {
namespace {

namespace pb = ::octo::webhooks::v1;

// 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, as google.protobuf.Timestamp allows.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

// Runs `body`, converts its status for the wire once, catches whatever
// escapes, and logs one line per call.
grpc::Status Run(std::string_view method, absl::FunctionRef<absl::Status()> body) {
  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = RunHandlerBody(method, body);
  log::Write(IsServerFault(status) ? log::Level::kError : log::Level::kInfo, "rpc",
             {{"method", method},
              {"code", absl::StatusCodeToString(status.code())},
              {"duration_ms", MillisecondsSince(start)},
              {"error", std::string(status.message())}});
  return ToGrpcStatus(status);
}

absl::Status CheckScope(const std::string& connection_id, const std::string& webhook_id) {
  if (!IsUuid(connection_id)) return absl::InvalidArgumentError("connectionId: must be a UUID");
  if (!IsUuid(webhook_id)) return absl::NotFoundError("webhookId: no such webhook");
  return absl::OkStatus();
}

absl::Status CheckDeliveryId(const std::string& delivery_id) {
  if (!IsUuid(delivery_id)) return absl::NotFoundError("deliveryId: no such delivery");
  return absl::OkStatus();
}

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

}  // namespace

absl::StatusOr<std::string> DeliveryStateName(int state) {
  switch (state) {
    case pb::DELIVERY_STATE_UNSPECIFIED:
      return std::string();
    case pb::DELIVERY_STATE_PENDING:
      return std::string("pending");
    case pb::DELIVERY_STATE_SUCCEEDED:
      return std::string("succeeded");
    case pb::DELIVERY_STATE_FAILED:
      return std::string("failed");
    case pb::DELIVERY_STATE_CANCELLED:
      return std::string("cancelled");
    default:
      return absl::InvalidArgumentError("state: not a delivery state");
  }
}

grpc::Status OperationsServiceImpl::ListDeliveries(grpc::ServerContext*,
                                                   const pb::ListDeliveriesRequest* request,
                                                   pb::ListDeliveriesResponse* response) {
  return Run("DeliveryOperationsService/ListDeliveries", [&]() -> absl::Status {
    if (absl::Status s = CheckScope(request->connection_id(), request->webhook_id()); !s.ok())
      return s;
    if (request->page_size() < 0 || request->page_size() > kMaxDeliveryPageSize) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "pageSize: must be between 0 and %d (0 means %d)", kMaxDeliveryPageSize,
          kDefaultDeliveryPageSize));
    }
    const int page_size =
        request->page_size() == 0 ? kDefaultDeliveryPageSize : request->page_size();
    std::optional<DeliveryCursor> after;
    if (!request->page_token().empty()) {
      absl::StatusOr<DeliveryCursor> cursor = DecodeDeliveryCursor(request->page_token());
      if (!cursor.ok()) return cursor.status();
      after = *std::move(cursor);
    }
    DeliveryFilter filter;
    absl::StatusOr<std::string> state = DeliveryStateName(request->state());
    if (!state.ok()) return state.status();
    filter.state = *std::move(state);
    if (!request->event().empty()) {
      if (request->event() != "webhook_test") {
        if (absl::Status s = ValidateWebhookEvent(request->event()); !s.ok()) {
          return absl::InvalidArgumentError(
              "event: must be booking_update, order_update, availability_update, product_update "
              "or webhook_test");
        }
      }
      filter.event = request->event();
    }
    absl::StatusOr<pb::ListDeliveriesResponse> page =
        store_->List(Lower(request->connection_id()), Lower(request->webhook_id()), page_size,
                     after, filter);
    if (!page.ok()) return page.status();
    *response = *std::move(page);
    return absl::OkStatus();
  });
}

grpc::Status OperationsServiceImpl::GetDelivery(grpc::ServerContext*,
                                                const pb::GetDeliveryRequest* request,
                                                pb::Delivery* response) {
  return Run("DeliveryOperationsService/GetDelivery", [&]() -> absl::Status {
    if (absl::Status s = CheckScope(request->connection_id(), request->webhook_id()); !s.ok())
      return s;
    if (absl::Status s = CheckDeliveryId(request->delivery_id()); !s.ok()) return s;
    absl::StatusOr<pb::Delivery> delivery =
        store_->Get(Lower(request->connection_id()), Lower(request->webhook_id()),
                    Lower(request->delivery_id()));
    if (!delivery.ok()) return delivery.status();
    *response = *std::move(delivery);
    return absl::OkStatus();
  });
}

grpc::Status OperationsServiceImpl::RedeliverDelivery(grpc::ServerContext*,
                                                      const pb::RedeliverDeliveryRequest* request,
                                                      pb::Delivery* response) {
  return Run("DeliveryOperationsService/RedeliverDelivery", [&]() -> absl::Status {
    if (absl::Status s = CheckScope(request->connection_id(), request->webhook_id()); !s.ok())
      return s;
    if (absl::Status s = CheckDeliveryId(request->delivery_id()); !s.ok()) return s;
    absl::StatusOr<pb::Delivery> delivery =
        store_->Redeliver(Lower(request->connection_id()), Lower(request->webhook_id()),
                          Lower(request->delivery_id()));
    if (!delivery.ok()) return delivery.status();
    *response = *std::move(delivery);
    return absl::OkStatus();
  });
}

grpc::Status OperationsServiceImpl::ReplayDeliveries(grpc::ServerContext*,
                                                     const pb::ReplayDeliveriesRequest* request,
                                                     pb::ReplayDeliveriesResponse* response) {
  return Run("DeliveryOperationsService/ReplayDeliveries", [&]() -> absl::Status {
    if (absl::Status s = CheckScope(request->connection_id(), request->webhook_id()); !s.ok())
      return s;
    if (!request->has_since()) return absl::InvalidArgumentError("since: required");
    const google::protobuf::Timestamp& since = request->since();
    if (since.seconds() < kMinTimestampSeconds || since.seconds() > kMaxTimestampSeconds ||
        since.nanos() < 0 || since.nanos() > 999999999) {
      return absl::InvalidArgumentError("since: not a valid timestamp");
    }
    if (request->max_count() < 0 || request->max_count() > kMaxReplayCount) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "maxCount: must be between 0 and %d (0 means %d)", kMaxReplayCount,
          kDefaultReplayCount));
    }
    const int max_count = request->max_count() == 0 ? kDefaultReplayCount : request->max_count();
    const absl::Time since_time =
        absl::FromUnixSeconds(since.seconds()) + absl::Nanoseconds(since.nanos());
    absl::StatusOr<pb::ReplayDeliveriesResponse> replayed =
        store_->Replay(Lower(request->connection_id()), Lower(request->webhook_id()), since_time,
                       max_count);
    if (!replayed.ok()) return replayed.status();
    *response = *std::move(replayed);
    return absl::OkStatus();
  });
}

grpc::Status OperationsServiceImpl::SendTestEvent(grpc::ServerContext*,
                                                  const pb::SendTestEventRequest* request,
                                                  pb::SendTestEventResponse* response) {
  return Run("DeliveryOperationsService/SendTestEvent", [&]() -> absl::Status {
    if (absl::Status s = CheckScope(request->connection_id(), request->webhook_id()); !s.ok())
      return s;
    absl::StatusOr<pb::Delivery> delivery =
        store_->SendTest(Lower(request->connection_id()), Lower(request->webhook_id()));
    if (!delivery.ok()) return delivery.status();
    *response->mutable_delivery() = *std::move(delivery);
    return absl::OkStatus();
  });
}

}  // namespace octo::delivery
