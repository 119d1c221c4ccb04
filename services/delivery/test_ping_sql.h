#pragma once
// The statement of a webhook test ping (PgOperationsStore::SendTest), apart
// so that operations_store.cc stays readable in one sitting.

namespace octo::delivery {

// clang-format off
// $1 supplier, $2 connection, $3 resource kind, $4 resource, $5 webhook.
// A test ping is never ordered (no resource: its deliveries carry no order).
inline constexpr char kInsertTestPing[] =
    "WITH ev AS ("
    "  INSERT INTO events (supplier_id, idempotency_key, connection_id, event, resource_kind,"
    "    resource_key, resource, occurred_at, delivery_count)"
    "  VALUES ($1::uuid, 'webhook_test:' || gen_random_uuid(), $2::uuid, 'webhook_test', $3,"
    "    'webhook_test:' || gen_random_uuid(), $4::json, now(), 1) RETURNING id)"
    " INSERT INTO deliveries (event_id, webhook_id) SELECT id, $5::uuid FROM ev RETURNING id::text";
// clang-format on

}  // namespace octo::delivery
