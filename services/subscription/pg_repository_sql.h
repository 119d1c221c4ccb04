#pragma once
// The SQL of the subscription repository (pg_repository.cc): its named
// statements, registered with the pool in PgRepository::Create. Internal to
// the repository.
#include <array>

#include "services/common/pg_statements.h"

namespace octo::subscription::repository_sql {

// clang-format off
// Microseconds since the Unix epoch: exact (extract() returns numeric).
#define OCTO_MICROS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

#define OCTO_SUPPLIER_COLUMNS                                                   \
  "id::text, name, endpoint, contact::text, "                                  \
  OCTO_MICROS("created_at") ", " OCTO_MICROS("updated_at")
#define OCTO_CONNECTION_COLUMNS                                                 \
  "id::text, supplier_id::text, name, max_webhooks, " OCTO_MICROS("created_at")
#define OCTO_API_KEY_COLUMNS                                                    \
  "id::text, connection_id::text, name, prefix, "                              \
  OCTO_MICROS("created_at") ", " OCTO_MICROS("revoked_at")
#define OCTO_WEBHOOK_COLUMNS                                                    \
  "id::text, connection_id::text, event, url, retry_on_error, "                \
  "use_contact_language, headers::text, capabilities::text, secret, status, "  \
  "COALESCE(disabled_reason, ''), "                                            \
  OCTO_MICROS("created_at") ", " OCTO_MICROS("updated_at") ", "                \
  OCTO_MICROS("disabled_at") ", " OCTO_MICROS("failing_since") ", "          \
  OCTO_MICROS("previous_secret_expires_at") ", rate_limit_per_second, "       \
  "max_concurrency, dialect, array_to_string(event_types, ','), ordered"
// clang-format on

inline constexpr PgStatement kInsertSupplier{
    "insert_supplier",
    "INSERT INTO suppliers (name, endpoint, contact) VALUES ($1, $2, $3::jsonb) "
    "RETURNING " OCTO_SUPPLIER_COLUMNS};
inline constexpr PgStatement kSelectSupplier{
    "select_supplier", "SELECT " OCTO_SUPPLIER_COLUMNS " FROM suppliers WHERE id = $1::uuid"};
inline constexpr PgStatement kListSuppliers{
    "list_suppliers", "SELECT " OCTO_SUPPLIER_COLUMNS " FROM suppliers ORDER BY created_at, id"};
inline constexpr PgStatement kUpdateSupplier{
    "update_supplier",
    "UPDATE suppliers SET name = COALESCE($2, name), endpoint = COALESCE($3, endpoint), "
    "contact = COALESCE($4::jsonb, contact), updated_at = greatest(now(), created_at) "
    "WHERE id = $1::uuid RETURNING " OCTO_SUPPLIER_COLUMNS};

inline constexpr PgStatement kInsertConnection{
    "insert_connection",
    "INSERT INTO connections (supplier_id, name, max_webhooks) VALUES ($1::uuid, $2, $3) "
    "RETURNING " OCTO_CONNECTION_COLUMNS};
inline constexpr PgStatement kSelectConnection{
    "select_connection", "SELECT " OCTO_CONNECTION_COLUMNS " FROM connections WHERE id = $1::uuid"};
inline constexpr PgStatement kListConnections{"list_connections",
                                     "SELECT " OCTO_CONNECTION_COLUMNS
                                     " FROM connections WHERE supplier_id = $1::uuid "
                                     "ORDER BY created_at, id"};
inline constexpr PgStatement kSupplierExists{"supplier_exists",
                                    "SELECT 1 FROM suppliers WHERE id = $1::uuid"};
inline constexpr PgStatement kConnectionExists{"connection_exists",
                                      "SELECT 1 FROM connections WHERE id = $1::uuid"};

inline constexpr PgStatement kInsertApiKey{
    "insert_api_key",
    "INSERT INTO api_keys (connection_id, name, prefix, key_hash) "
    "VALUES ($1::uuid, $2, $3, decode($4, 'hex')) RETURNING " OCTO_API_KEY_COLUMNS};
inline constexpr PgStatement kListApiKeys{"list_api_keys", "SELECT " OCTO_API_KEY_COLUMNS
                                                  " FROM api_keys WHERE connection_id = $1::uuid "
                                                  "ORDER BY created_at, id"};
inline constexpr PgStatement kRevokeApiKey{
    "revoke_api_key",
    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, greatest(now(), created_at)) "
    "WHERE id = $1::uuid RETURNING " OCTO_API_KEY_COLUMNS};
inline constexpr PgStatement kAuthenticate{
    "authenticate_api_key",
    "SELECT k.id::text, k.connection_id::text, c.supplier_id::text, k.revoked_at IS NOT NULL "
    "FROM api_keys k JOIN connections c ON c.id = k.connection_id "
    "WHERE k.key_hash = decode($1, 'hex')"};

inline constexpr PgStatement kInsertWebhook{
    "insert_webhook",
    "INSERT INTO webhooks (connection_id, event, url, retry_on_error, use_contact_language, "
    "headers, capabilities, secret, rate_limit_per_second, max_concurrency, dialect, "
    "event_types, status, disabled_reason, disabled_at, ordered) "
    "VALUES ($1::uuid, $2, $3, $4::boolean, $5::boolean, $6::jsonb, $7::jsonb, $8, "
    "$9::double precision, $10::integer, $11, $12::text[], "
    "CASE WHEN $13::boolean THEN 'enabled' ELSE 'disabled' END, "
    "CASE WHEN $13::boolean THEN NULL ELSE 'deactivated' END, "
    "CASE WHEN $13::boolean THEN NULL ELSE now() END, $14::boolean) "
    "RETURNING " OCTO_WEBHOOK_COLUMNS};
inline constexpr PgStatement kSelectWebhook{
    "select_webhook", "SELECT " OCTO_WEBHOOK_COLUMNS
                      " FROM webhooks WHERE id = $1::uuid AND connection_id = $2::uuid"};
inline constexpr PgStatement kSelectWebhooksById{
    "select_webhooks_by_id",
    "SELECT " OCTO_WEBHOOK_COLUMNS " FROM webhooks WHERE id = ANY($1::uuid[])"
    " AND connection_id IN (SELECT id FROM connections WHERE supplier_id = $2::uuid)"};
inline constexpr PgStatement kListWebhooksFirst{"list_webhooks_first",
                                       "SELECT " OCTO_WEBHOOK_COLUMNS
                                       " FROM webhooks WHERE connection_id = $1::uuid "
                                       "AND ($3 = '' OR dialect = $3) "
                                       "ORDER BY created_at, id LIMIT $2"};
inline constexpr PgStatement kListWebhooksAfter{"list_webhooks_after",
                                       "SELECT " OCTO_WEBHOOK_COLUMNS
                                       " FROM webhooks WHERE connection_id = $1::uuid "
                                       "AND (created_at, id) > ('epoch'::timestamptz + $2::bigint "
                                       "* interval '1 microsecond', $3::uuid) "
                                       "AND ($5 = '' OR dialect = $5) "
                                       "ORDER BY created_at, id LIMIT $4"};
inline constexpr PgStatement kUpdateWebhook{
    "update_webhook",
    "UPDATE webhooks SET event = COALESCE(($10::text[])[1], $3, event), url = COALESCE($4, url), "
    "event_types = COALESCE($10::text[], event_types), "
    "status = CASE WHEN $11::boolean IS NULL THEN status "
    "  WHEN $11::boolean THEN 'enabled' ELSE 'disabled' END, "
    "disabled_reason = CASE WHEN $11::boolean IS NULL OR (NOT $11::boolean AND status = 'disabled') "
    "  THEN disabled_reason WHEN $11::boolean THEN NULL ELSE 'deactivated' END, "
    "disabled_at = CASE WHEN $11::boolean IS NULL OR (NOT $11::boolean AND status = 'disabled') "
    "  THEN disabled_at WHEN $11::boolean THEN NULL ELSE now() END, "
    "failing_since = CASE WHEN $11::boolean THEN NULL ELSE failing_since END, "
    "retry_on_error = COALESCE($5::boolean, retry_on_error), "
    "use_contact_language = COALESCE($6::boolean, use_contact_language), "
    "headers = COALESCE($7::jsonb, headers), "
    "rate_limit_per_second = CASE WHEN $8::double precision IS NULL THEN rate_limit_per_second "
    "  ELSE NULLIF($8::double precision, 0) END, "
    "max_concurrency = CASE WHEN $9::integer IS NULL THEN max_concurrency "
    "  ELSE NULLIF($9::integer, 0) END, "
    "ordered = COALESCE($12::boolean, ordered), "
    "updated_at = greatest(now(), created_at) "
    "WHERE id = $1::uuid AND connection_id = $2::uuid RETURNING " OCTO_WEBHOOK_COLUMNS};
// Deleting a webhook deletes its ordered resources (ON DELETE CASCADE) and
// deliveries (the statement trigger webhooks_delete_deliveries, migration
// 0020). Every writer takes webhooks rows before ordered_resources
// rows before deliveries rows (docs/delivery.md, "Lock order"): a result
// write locks the webhook rows it writes first, an enqueue, redeliver or
// replay holds its webhook FOR KEY SHARE before it touches resources or
// deliveries. So the delete locks the webhook first (FOR UPDATE: it waits
// for those holders, and new ones wait for it), then its resources in the
// enqueue's order, then its deliveries in id order, and only then deletes.
// Locking the deliveries before the webhook deadlocked with a redeliver
// (webhook, then delivery) and now would with a result write.
inline constexpr PgStatement kLockWebhookForDelete{
    "lock_webhook_for_delete",
    "SELECT id FROM webhooks WHERE id = $1::uuid AND connection_id = $2::uuid FOR UPDATE"};
inline constexpr PgStatement kLockWebhookResources{
    "lock_webhook_resources",
    "SELECT count(*) FROM (SELECT id FROM ordered_resources WHERE webhook_id = $1::uuid"
    " ORDER BY webhook_id, resource_kind, resource_key FOR UPDATE) AS locked"};
inline constexpr PgStatement kLockWebhookDeliveries{
    "lock_webhook_deliveries",
    "SELECT count(*) FROM (SELECT id FROM deliveries WHERE webhook_id = $1::uuid"
    " ORDER BY id FOR UPDATE) AS locked"};
inline constexpr PgStatement kDeleteWebhook{
    "delete_webhook",
    "DELETE FROM webhooks WHERE id = $1::uuid AND connection_id = $2::uuid "
    "RETURNING " OCTO_WEBHOOK_COLUMNS};

// $3 the new secret, $4 the grace in microseconds (0: keep no previous secret).
inline constexpr PgStatement kRotateWebhookSecret{
    "rotate_webhook_secret",
    "UPDATE webhooks SET "
    "previous_secret = CASE WHEN $4::bigint > 0 THEN secret END, "
    "previous_secret_expires_at = CASE WHEN $4::bigint > 0 "
    "  THEN now() + $4::bigint * interval '1 microsecond' END, "
    "secret = $3, updated_at = greatest(now(), created_at) "
    "WHERE id = $1::uuid AND connection_id = $2::uuid RETURNING " OCTO_WEBHOOK_COLUMNS};
inline constexpr PgStatement kEnableWebhook{
    "enable_webhook",
    "UPDATE webhooks SET status = 'enabled', disabled_reason = NULL, disabled_at = NULL, "
    "failing_since = NULL, updated_at = greatest(now(), created_at) "
    "WHERE id = $1::uuid AND connection_id = $2::uuid RETURNING " OCTO_WEBHOOK_COLUMNS};

inline constexpr std::array kStatements = {
    kInsertSupplier,    kSelectSupplier,    kListSuppliers,  kUpdateSupplier,   kInsertConnection,
    kSelectConnection,  kListConnections,   kSupplierExists, kConnectionExists, kInsertApiKey,
    kListApiKeys,       kRevokeApiKey,      kAuthenticate,   kInsertWebhook,    kSelectWebhook,
    kSelectWebhooksById,
    kListWebhooksFirst, kListWebhooksAfter, kUpdateWebhook,  kLockWebhookForDelete, kLockWebhookResources,
    kLockWebhookDeliveries, kDeleteWebhook, kRotateWebhookSecret, kEnableWebhook,
};

#undef OCTO_MICROS
#undef OCTO_SUPPLIER_COLUMNS
#undef OCTO_CONNECTION_COLUMNS
#undef OCTO_API_KEY_COLUMNS
#undef OCTO_WEBHOOK_COLUMNS

}  // namespace octo::subscription::repository_sql
