#pragma once
// Storage of suppliers, connections, API keys and webhooks.
//
// Repository is the seam between the gRPC services and PostgreSQL
// (PgRepository). Records carry the stored values unmasked (URL credentials,
// header values, the signing secret): masking is the caller's job when it
// renders a response. Inputs are expected to be validated already; the
// database constraints reject whatever slips through.
//
// Status codes, the same for every implementation:
//   NOT_FOUND           the addressed row does not exist, or belongs to another
//                       connection (indistinguishable on purpose); also for ids
//                       that are not UUIDs, without touching the database.
//   INVALID_ARGUMENT    a value rejected by a database constraint, or a bad
//                       page token ("pageToken: ...").
//   ALREADY_EXISTS      a uniqueness constraint (e.g. a connection name).
//   RESOURCE_EXHAUSTED  the connection's webhook cap is reached.
//   UNAVAILABLE/ABORTED the database is unreachable / a transaction must be
//                       retried.
//   INTERNAL            anything else.
// Messages never contain stored values.
//
// Example:
//   absl::StatusOr<WebhookRecord> w = repo.GetWebhook(connection_id, webhook_id);
//   if (absl::IsNotFound(w.status())) ...
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace octo::subscription {

struct ContactRecord {
  std::string website;
  std::string email;
  std::string telephone;
  std::string address;
};

struct SupplierRecord {
  std::string id;
  std::string name;
  std::string endpoint;
  ContactRecord contact;
  absl::Time create_time;
  absl::Time update_time;
};

struct NewSupplier {
  std::string name;
  std::string endpoint;
  ContactRecord contact;
};

// Unset fields keep their value.
struct SupplierPatch {
  std::optional<std::string> name;
  std::optional<std::string> endpoint;
  std::optional<ContactRecord> contact;  // replaces the whole contact
};

struct ConnectionRecord {
  std::string id;
  std::string supplier_id;
  std::string name;
  int max_webhooks = 0;
  absl::Time create_time;
};

struct ApiKeyRecord {
  std::string id;
  std::string connection_id;
  std::string name;
  std::string prefix;
  absl::Time create_time;
  std::optional<absl::Time> revoke_time;
};

struct NewApiKey {
  std::string connection_id;
  std::string name;
  std::string prefix;    // the first characters of the key
  std::string key_hash;  // SHA-256 of the key, 32 raw bytes
};

// Who an API key belongs to.
struct KeyOwner {
  std::string api_key_id;
  std::string connection_id;
  std::string supplier_id;
};

enum class WebhookStatus { kEnabled, kDisabled };

// Which REST shape manages a webhook and which body it receives.
inline constexpr std::string_view kWebhookDialect = "webhook";
inline constexpr std::string_view kNotificationDialect = "notification";
// The disabled reason of a subscription the partner set inactive.
inline constexpr std::string_view kDeactivatedReason = "deactivated";

struct WebhookRecord {
  std::string id;
  std::string connection_id;
  std::string event;
  std::string url;  // unmasked
  bool retry_on_error = true;
  bool use_contact_language = true;
  std::map<std::string, std::string> headers;  // unmasked
  std::vector<std::string> capabilities;
  std::string secret;
  WebhookStatus status = WebhookStatus::kEnabled;
  std::string disabled_reason;
  absl::Time create_time;
  absl::Time update_time;
  std::optional<absl::Time> disable_time;
  // Endpoint health: when the current run of failed attempts began.
  std::optional<absl::Time> failing_since;
  // Set while a rotation's grace period runs (the previous secret signs too).
  std::optional<absl::Time> previous_secret_expire_time;
  // Per-endpoint limits (none when unset).
  std::optional<double> rate_limit_per_second;
  std::optional<int> max_concurrency;
  std::string dialect = std::string(kWebhookDialect);
  // Notification subscriptions: every event they want (event is the first);
  // empty for webhooks.
  std::vector<std::string> event_types;
  // Deliveries sent one at a time per resource, in order (docs/delivery.md).
  bool ordered = false;
};

struct NewWebhook {
  std::string connection_id;
  std::string event;
  std::string url;
  bool retry_on_error = true;
  bool use_contact_language = true;
  std::map<std::string, std::string> headers;
  std::vector<std::string> capabilities;
  std::string secret;
  std::optional<double> rate_limit_per_second;  // unset: none
  std::optional<int> max_concurrency;           // unset: none
  std::string dialect = std::string(kWebhookDialect);
  std::vector<std::string> event_types;  // notifications: event is the first
  bool active = true;                    // false: stored disabled ("deactivated")
  bool ordered = false;                  // ordered delivery per resource
};

// Unset fields keep their value.
struct WebhookPatch {
  std::optional<std::string> event;
  std::optional<std::string> url;
  std::optional<bool> retry_on_error;
  std::optional<bool> use_contact_language;
  std::optional<std::map<std::string, std::string>> headers;  // replaces all
  std::optional<double> rate_limit_per_second;  // 0 removes the limit
  std::optional<int> max_concurrency;           // 0 removes the limit
  // Notification subscriptions: replaces the types (and event, the first).
  std::optional<std::vector<std::string>> event_types;
  // false: disabled with kDeactivatedReason (unless disabled already);
  // true: enabled as EnableWebhook does.
  std::optional<bool> active;
  // Ordered delivery for the deliveries enqueued from now on.
  std::optional<bool> ordered;

  bool empty() const {
    return !event && !url && !retry_on_error && !use_contact_language && !headers &&
           !rate_limit_per_second && !max_concurrency && !event_types && !active && !ordered;
  }
};

struct WebhookPage {
  std::vector<WebhookRecord> webhooks;  // oldest first
  std::string next_page_token;          // empty on the last page
};

// Implementations are thread-safe.
class Repository {
 public:
  virtual ~Repository() = default;

  // ---- suppliers ----
  virtual absl::StatusOr<SupplierRecord> CreateSupplier(const NewSupplier& supplier) = 0;
  virtual absl::StatusOr<SupplierRecord> GetSupplier(std::string_view supplier_id) = 0;
  // Oldest first.
  virtual absl::StatusOr<std::vector<SupplierRecord>> ListSuppliers() = 0;
  // An empty patch returns the supplier unchanged.
  virtual absl::StatusOr<SupplierRecord> UpdateSupplier(std::string_view supplier_id,
                                                        const SupplierPatch& patch) = 0;

  // ---- connections ----
  // NOT_FOUND if the supplier does not exist; ALREADY_EXISTS if the supplier
  // already has a connection with this name.
  virtual absl::StatusOr<ConnectionRecord> CreateConnection(std::string_view supplier_id,
                                                            std::string_view name,
                                                            int max_webhooks) = 0;
  virtual absl::StatusOr<ConnectionRecord> GetConnection(std::string_view connection_id) = 0;
  // Oldest first; NOT_FOUND if the supplier does not exist.
  virtual absl::StatusOr<std::vector<ConnectionRecord>> ListConnections(
      std::string_view supplier_id) = 0;

  // ---- API keys ----
  // NOT_FOUND if the connection does not exist.
  virtual absl::StatusOr<ApiKeyRecord> CreateApiKey(const NewApiKey& key) = 0;
  // Oldest first, revoked keys included; NOT_FOUND if the connection does not
  // exist.
  virtual absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys(std::string_view connection_id) = 0;
  // Idempotent: a revoked key is returned unchanged (first revoke time kept).
  virtual absl::StatusOr<ApiKeyRecord> RevokeApiKey(std::string_view api_key_id) = 0;
  // Looks a key up by its SHA-256. UNAUTHENTICATED if no key has this hash or
  // the key is revoked.
  virtual absl::StatusOr<KeyOwner> AuthenticateKeyHash(std::string_view key_hash) = 0;

  // ---- webhooks (always scoped by connection) ----
  // NOT_FOUND if the connection does not exist; RESOURCE_EXHAUSTED at the cap.
  virtual absl::StatusOr<WebhookRecord> CreateWebhook(const NewWebhook& webhook) = 0;
  virtual absl::StatusOr<WebhookRecord> GetWebhook(std::string_view connection_id,
                                                   std::string_view webhook_id) = 0;
  // The webhooks among `webhook_ids` that exist and belong to a connection
  // of `supplier_id`, in one read and in no particular order (another
  // supplier's id is left out, as an unknown one). INVALID_ARGUMENT for an
  // id that is not a UUID.
  virtual absl::StatusOr<std::vector<WebhookRecord>> GetWebhooksById(
      std::string_view supplier_id, const std::vector<std::string>& webhook_ids) = 0;
  // Keyset pagination by (create time, id). `page_size` must be 1..1000;
  // `page_token` is "" or a previous page's next_page_token (INVALID_ARGUMENT
  // otherwise).
  // `dialect` "" lists every webhook, else only those of that dialect.
  virtual absl::StatusOr<WebhookPage> ListWebhooks(std::string_view connection_id, int page_size,
                                                   std::string_view page_token,
                                                   std::string_view dialect = {}) = 0;
  // An empty patch returns the webhook unchanged.
  virtual absl::StatusOr<WebhookRecord> UpdateWebhook(std::string_view connection_id,
                                                      std::string_view webhook_id,
                                                      const WebhookPatch& patch) = 0;
  // Returns the deleted webhook.
  virtual absl::StatusOr<WebhookRecord> DeleteWebhook(std::string_view connection_id,
                                                      std::string_view webhook_id) = 0;
  // Makes `new_secret` the signing secret. The replaced one is kept as the
  // previous secret until now + `grace` (a zero grace keeps none); a previous
  // secret from an earlier rotation is dropped.
  virtual absl::StatusOr<WebhookRecord> RotateWebhookSecret(std::string_view connection_id,
                                                            std::string_view webhook_id,
                                                            std::string_view new_secret,
                                                            absl::Duration grace) = 0;
  // Enabled, with no disabled reason/time and no failing_since. Idempotent.
  virtual absl::StatusOr<WebhookRecord> EnableWebhook(std::string_view connection_id,
                                                      std::string_view webhook_id) = 0;
};

}  // namespace octo::subscription
