#pragma once
// Repository on PostgreSQL (libpqxx), over the schema in migrations/.
//
// Every statement is registered with the pool under a constant name (also the
// log and metrics label), every transaction goes through RunInTransaction
// (a lost connection is replaced and the call rerun when safe), and every
// libpqxx exception is translated by the table of pg_status.h into the codes
// documented in repository.h; no pqxx type escapes. Status
// messages and logs carry the operation and the SQLSTATE, never row values
// (PostgreSQL's error DETAIL can quote a whole row, secret included).
//
// Example:
//   ASSIGN_OR_RETURN(auto pool, octo::PgPool::Create(conninfo, 8));
//   ASSIGN_OR_RETURN(auto repo, octo::subscription::PgRepository::Create(pool.get()));
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "services/common/pg_pool.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

class PgRepository final : public Repository {
 public:
  // Registers the repository's statements with `pool` (INTERNAL when one
  // clashes with another store's). `pool` must outlive the repository.
  // Thread-safe.
  static absl::StatusOr<std::unique_ptr<PgRepository>> Create(PgPool* pool);

  absl::StatusOr<SupplierRecord> CreateSupplier(const NewSupplier& supplier) override;
  absl::StatusOr<SupplierRecord> GetSupplier(std::string_view supplier_id) override;
  absl::StatusOr<std::vector<SupplierRecord>> ListSuppliers() override;
  absl::StatusOr<SupplierRecord> UpdateSupplier(std::string_view supplier_id,
                                                const SupplierPatch& patch) override;

  absl::StatusOr<ConnectionRecord> CreateConnection(std::string_view supplier_id,
                                                    std::string_view name,
                                                    int max_webhooks) override;
  absl::StatusOr<ConnectionRecord> GetConnection(std::string_view connection_id) override;
  absl::StatusOr<std::vector<ConnectionRecord>> ListConnections(
      std::string_view supplier_id) override;

  absl::StatusOr<ApiKeyRecord> CreateApiKey(const NewApiKey& key) override;
  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys(std::string_view connection_id) override;
  absl::StatusOr<ApiKeyRecord> RevokeApiKey(std::string_view api_key_id) override;
  absl::StatusOr<KeyOwner> AuthenticateKeyHash(std::string_view key_hash) override;

  absl::StatusOr<WebhookRecord> CreateWebhook(const NewWebhook& webhook) override;
  absl::StatusOr<WebhookRecord> GetWebhook(std::string_view connection_id,
                                           std::string_view webhook_id) override;
  absl::StatusOr<std::vector<WebhookRecord>> GetWebhooksById(
      std::string_view supplier_id, const std::vector<std::string>& webhook_ids) override;
  absl::StatusOr<WebhookPage> ListWebhooks(std::string_view connection_id, int page_size,
                                           std::string_view page_token,
                                           std::string_view dialect = {}) override;
  absl::StatusOr<WebhookRecord> UpdateWebhook(std::string_view connection_id,
                                              std::string_view webhook_id,
                                              const WebhookPatch& patch) override;
  absl::StatusOr<WebhookRecord> DeleteWebhook(std::string_view connection_id,
                                              std::string_view webhook_id) override;
  absl::StatusOr<WebhookRecord> RotateWebhookSecret(std::string_view connection_id,
                                                    std::string_view webhook_id,
                                                    std::string_view new_secret,
                                                    absl::Duration grace) override;
  absl::StatusOr<WebhookRecord> EnableWebhook(std::string_view connection_id,
                                              std::string_view webhook_id) override;

 private:
  explicit PgRepository(PgPool* pool) : pool_(pool) {}
  PgPool* const pool_;
};

// The opaque ListWebhooks page token: the (create time, id) of the last
// webhook of a page. Exposed for tests.
struct PageCursor {
  long long create_time_micros = 0;
  std::string id;  // canonical lower-case UUID
};
std::string EncodePageToken(const PageCursor& cursor);
// INVALID_ARGUMENT ("pageToken: ...") for anything EncodePageToken did not make.
absl::StatusOr<PageCursor> DecodePageToken(std::string_view token);

}  // namespace octo::subscription
