#pragma once
// The attempt log and the hand-driven operations on deliveries:
// listing a webhook's deliveries, one delivery with its attempts, redelivery,
// replay of failed deliveries and the webhook_test ping. The rows are the
// dispatcher's (migration 0002): these only read them or make deliveries
// pending and due now, then NOTIFY octo_deliveries so a dispatcher claims
// them at once.
//
// Every call is scoped by connection: a webhook of another connection, or a
// delivery of another webhook, is NOT_FOUND exactly like a missing one. The
// inputs are validated by the caller (OperationsServiceImpl); ids must be
// UUIDs. Results are the wire messages (operations.proto), filled from the
// rows. Status codes:
//   NOT_FOUND            "webhookId: no such webhook", "deliveryId: no such delivery"
//   FAILED_PRECONDITION  the webhook is disabled (redeliver, replay, test)
//   INVALID_ARGUMENT     a bad page token ("pageToken: ...")
//   UNAVAILABLE/ABORTED/UNKNOWN/INTERNAL  from the database (the table of
//                        pg_status.h); a class 22/23 SQLSTATE is INTERNAL here:
//                        a constraint our statements break is our bug
// Thread-safe.
//
// Example:
//   ASSIGN_OR_RETURN(auto ops, PgOperationsStore::Create(pool.get()));
//   absl::StatusOr<pb::ReplayDeliveriesResponse> r =
//       ops->Replay(connection_id, webhook_id, absl::Now() - absl::Hours(24), 100);
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "octo/webhooks/v1/operations.pb.h"
#include "services/common/pg_pool.h"

namespace octo::delivery {

// A position in a webhook's attempt log (newest first): the (created_at, id)
// of the last delivery of a page.
struct DeliveryCursor {
  int64_t create_time_micros = 0;
  std::string id;  // lower-case UUID
};
// Opaque, URL-safe.
std::string EncodeDeliveryCursor(const DeliveryCursor& cursor);
// INVALID_ARGUMENT ("pageToken: ...") for anything EncodeDeliveryCursor did not make.
absl::StatusOr<DeliveryCursor> DecodeDeliveryCursor(std::string_view token);

struct DeliveryFilter {
  std::string state;  // pending | succeeded | failed | cancelled; "" = any
  std::string event;  // "" = any
};

class PgOperationsStore {
 public:
  // Registers the store's statements with `pool` (INTERNAL when one clashes
  // with another store's). `pool` must outlive the store.
  static absl::StatusOr<std::unique_ptr<PgOperationsStore>> Create(PgPool* pool);

  // Newest first; `page_size` 1..100. next_page_token is set when more follow.
  absl::StatusOr<::octo::webhooks::v1::ListDeliveriesResponse> List(
      std::string_view connection_id, std::string_view webhook_id, int page_size,
      const std::optional<DeliveryCursor>& after, const DeliveryFilter& filter);

  // With every attempt, oldest first.
  absl::StatusOr<::octo::webhooks::v1::Delivery> Get(std::string_view connection_id,
                                                    std::string_view webhook_id,
                                                    std::string_view delivery_id);

  // Pending and due now, whatever its state; a delivery being sent keeps its
  // lease (the attempt in flight is recorded, and the next one follows at once).
  absl::StatusOr<::octo::webhooks::v1::Delivery> Redeliver(std::string_view connection_id,
                                                          std::string_view webhook_id,
                                                          std::string_view delivery_id);

  // At most `max_count` failed deliveries created at or after `since`, oldest
  // first, made pending and due now.
  absl::StatusOr<::octo::webhooks::v1::ReplayDeliveriesResponse> Replay(
      std::string_view connection_id, std::string_view webhook_id, absl::Time since,
      int max_count);

  // Stores a webhook_test event (resource kind of the webhook's event, the
  // body in docs/api.md) and one pending delivery of it to this webhook.
  absl::StatusOr<::octo::webhooks::v1::Delivery> SendTest(std::string_view connection_id,
                                                         std::string_view webhook_id);

 private:
  explicit PgOperationsStore(PgPool* pool) : pool_(pool) {}
  PgPool* const pool_;
};

}  // namespace octo::delivery
