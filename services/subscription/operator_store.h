#pragma once
// PostgreSQL storage of operators (a supplier's dashboard users), their
// sessions, and the supplier-scoped reads the dashboard needs (connections
// with webhook counts, webhooks with their 24-hour attempt health).
// Migration 0009_operators.sql. Hashes are SHA-256 (32 raw bytes): the
// password and the session token are generated with 256 bits of entropy, so
// a slow password hash would add nothing. libpqxx exceptions become
// absl::Status here. Thread-safe.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/health_window.h"
#include "services/common/pg_pool.h"

namespace octo::subscription {

struct OperatorRecord {
  std::string id;
  std::string supplier_id;
  std::string supplier_name;
  std::string name;
  absl::Time create_time;
};

struct SessionRecord {
  OperatorRecord op;
  std::string csrf_token;
  absl::Time expire_time;
};

struct ConnectionSummary {
  std::string id;
  std::string name;
  int max_webhooks = 0;  // 0: the service default applies
  absl::Time create_time;
  int webhook_count = 0;
};

struct WebhookRef {
  std::string webhook_id;
  std::string connection_id;
  std::string connection_name;
};

struct WebhookFilter {
  std::string connection_id;  // "" any
  std::string event;          // "" any
  std::string status;         // "" any, "enabled", "disabled"
};

// The attempts of the last kHealthWindowHours by hour, and the pending
// deliveries, of a webhook's deliveries created or requeued within
// kHealthLookbackHours (services/common/health_window.h).
struct HealthCounts {
  int succeeded[kHealthWindowHours] = {};  // [0] = the hour ending now, [23] = 23-24 h ago
  int failed[kHealthWindowHours] = {};
  int pending = 0;
};

class OperatorStore {
 public:
  explicit OperatorStore(PgPool* pool) : pool_(pool) {}

  // NOT_FOUND: no such supplier; ALREADY_EXISTS: the name is taken.
  absl::StatusOr<OperatorRecord> CreateOperator(std::string_view supplier_id, std::string_view name,
                                                std::string_view password_hash);
  absl::StatusOr<std::vector<OperatorRecord>> ListOperators(std::string_view supplier_id);
  absl::StatusOr<OperatorRecord> DeleteOperator(std::string_view operator_id);

  // The operator whose name and password hash match; UNAUTHENTICATED
  // otherwise (one answer for both mistakes).
  absl::StatusOr<OperatorRecord> CheckLogin(std::string_view name, std::string_view password_hash);
  // Stores a session and removes expired ones.
  absl::Status CreateSession(std::string_view operator_id, std::string_view token_hash,
                             std::string_view csrf_token, absl::Time expire_time);
  // UNAUTHENTICATED when unknown or expired.
  absl::StatusOr<SessionRecord> GetSession(std::string_view token_hash);
  absl::Status DeleteSession(std::string_view token_hash);

  absl::StatusOr<std::vector<ConnectionSummary>> ListConnections(std::string_view supplier_id);
  // At most 1000, oldest first.
  absl::StatusOr<std::vector<WebhookRef>> ListWebhooks(std::string_view supplier_id,
                                                       const WebhookFilter& filter);
  // NOT_FOUND when the webhook does not exist or is another supplier's.
  absl::StatusOr<WebhookRef> ResolveWebhook(std::string_view supplier_id, std::string_view webhook_id);
  absl::StatusOr<std::map<std::string, HealthCounts>> Health(const std::vector<std::string>& webhook_ids);

 private:
  PgPool* pool_;
};

}  // namespace octo::subscription
