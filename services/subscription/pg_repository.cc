#include "services/subscription/pg_repository.h"

#include <array>
#include <cstdint>
#include <exception>
#include <utility>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/pg_status.h"
#include "services/common/pg_transaction.h"
#include "services/common/strings.h"
#include "services/common/validation.h"
#include "services/subscription/pg_repository_rows.h"
#include "services/subscription/pg_repository_sql.h"

namespace octo::subscription {
namespace {

// The statements (kInsertSupplier, ..., kStatements).
using namespace repository_sql;  // NOLINT(build/namespaces): this file's own SQL

// --------------------------------------------------------------- errors --

// How a foreign-key or uniqueness violation reads for one operation. The
// codes come from the one table (pg_status.h); only the words are ours.
struct ErrorText {
  std::string_view foreign_key;  // NOT_FOUND message; "" = the table's code
  std::string_view unique;       // ALREADY_EXISTS message; "" = generic
};

absl::Status Reword(const absl::Status& status, const ErrorText& text) {
  const std::string state = SqlstateOf(status);
  if (state == "OW001") {  // raised by the webhooks_enforce_cap trigger
    return absl::ResourceExhaustedError(
        "this connection already has its maximum number of webhooks; delete one first");
  }
  if (state == "23503" && !text.foreign_key.empty()) {
    return absl::NotFoundError(AbslView(text.foreign_key));
  }
  if (state == "23505" && !text.unique.empty()) {
    return absl::AlreadyExistsError(AbslView(text.unique));
  }
  return status;
}

// Runs `body` (pqxx::work& -> absl::StatusOr<T>) in one transaction on a
// pooled connection (pg_transaction.h: committed when it returns OK, rerun
// after a lost connection when safe), with this repository's wording.
template <typename T, typename Body>
absl::StatusOr<T> InTransaction(PgPool* pool, const PgTxOptions& options, const ErrorText& text,
                                Body&& body) {
  absl::StatusOr<T> result = RunInTransaction(*pool, options, std::forward<Body>(body));
  if (result.ok()) return result;
  return Reword(result.status(), text);
}
template <typename T, typename Body>
absl::StatusOr<T> InTransaction(PgPool* pool, std::string_view operation, const ErrorText& text,
                                Body&& body) {
  return InTransaction<T>(pool, PgTxOptions{.operation = operation}, text,
                          std::forward<Body>(body));
}

// The same for a transaction that only reads: rerun after any lost
// connection.
template <typename T, typename Body>
absl::StatusOr<T> ReadTransaction(PgPool* pool, std::string_view operation, Body&& body) {
  return RunInTransaction(*pool, {.operation = operation, .read_only = true},
                          std::forward<Body>(body));
}

// Rows, JSON columns and parameters (FromMicros, WebhookFromRow, ...).
using namespace repository_rows;  // NOLINT(build/namespaces): this file's own conversions

absl::Status WebhookNotFound() { return absl::NotFoundError("webhookId: no such webhook"); }

constexpr ErrorText kNoText{};
constexpr ErrorText kSupplierText{"", "a supplier with these values already exists"};
constexpr ErrorText kConnectionText{"supplierId: no such supplier",
                                    "name: this supplier already has a connection with this name"};
constexpr ErrorText kApiKeyText{"connectionId: no such connection", "apiKey: key collision, retry"};
constexpr ErrorText kWebhookText{"connectionId: no such connection", ""};

}  // namespace

// ------------------------------------------------------------ page token --

std::string EncodePageToken(const PageCursor& cursor) {
  // version byte, 8-byte big-endian micros, 16-byte UUID.
  std::string raw(1, '\x01');
  const auto micros = static_cast<std::uint64_t>(cursor.create_time_micros);
  for (int shift = 56; shift >= 0; shift -= 8)
    raw.push_back(static_cast<char>((micros >> shift) & 0xff));
  std::string hex;
  for (char c : cursor.id) {
    if (c != '-') hex.push_back(c);
  }
  raw += absl::HexStringToBytes(hex);
  return crypto::Base64UrlEncode(raw);
}

absl::StatusOr<PageCursor> DecodePageToken(std::string_view token) {
  const auto invalid = [] {
    return absl::InvalidArgumentError("pageToken: not a token from a previous page");
  };
  if (token.size() > 64) return invalid();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(AbslView(token), &raw) || raw.size() != 25 || raw[0] != '\x01') {
    return invalid();
  }
  std::uint64_t micros = 0;
  for (int i = 1; i <= 8; ++i) micros = (micros << 8) | static_cast<unsigned char>(raw[i]);
  const std::string hex = absl::BytesToHexString(absl::string_view(raw).substr(9));
  PageCursor cursor;
  cursor.create_time_micros = static_cast<long long>(micros);
  cursor.id = absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                           hex.substr(16, 4), "-", hex.substr(20));
  return cursor;
}

absl::StatusOr<std::unique_ptr<PgRepository>> PgRepository::Create(PgPool* pool) {
  // A clash with another store on the same pool: refuse to start rather than
  // fail every request that names the statement.
  if (absl::Status s = pool->RegisterStatements(kStatements); !s.ok()) return s;
  return std::unique_ptr<PgRepository>(new PgRepository(pool));
}

// ------------------------------------------------------------- suppliers --

absl::StatusOr<SupplierRecord> PgRepository::CreateSupplier(const NewSupplier& supplier) {
  return InTransaction<SupplierRecord>(pool_, kInsertSupplier.name, kSupplierText,
                                       [&](pqxx::work& txn) -> absl::StatusOr<SupplierRecord> {
                                         return SupplierFromRow(txn.exec_prepared1(
                                             kInsertSupplier.name, supplier.name, supplier.endpoint,
                                             ContactToJson(supplier.contact)));
                                       });
}

absl::StatusOr<SupplierRecord> PgRepository::GetSupplier(std::string_view supplier_id) {
  if (!IsUuid(supplier_id)) return absl::NotFoundError("supplierId: no such supplier");
  return ReadTransaction<SupplierRecord>(
      pool_, kSelectSupplier.name, [&](pqxx::work& txn) -> absl::StatusOr<SupplierRecord> {
        const pqxx::result r = txn.exec_prepared(kSelectSupplier.name, std::string(supplier_id));
        if (r.empty()) return absl::NotFoundError("supplierId: no such supplier");
        return SupplierFromRow(r[0]);
      });
}

absl::StatusOr<std::vector<SupplierRecord>> PgRepository::ListSuppliers() {
  return ReadTransaction<std::vector<SupplierRecord>>(pool_, kListSuppliers.name,
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<SupplierRecord>> {
        std::vector<SupplierRecord> out;
        for (const auto& row : txn.exec_prepared(kListSuppliers.name))
          out.push_back(SupplierFromRow(row));
        return out;
      });
}

absl::StatusOr<SupplierRecord> PgRepository::UpdateSupplier(std::string_view supplier_id,
                                                            const SupplierPatch& patch) {
  if (!IsUuid(supplier_id)) return absl::NotFoundError("supplierId: no such supplier");
  if (!patch.name && !patch.endpoint && !patch.contact) return GetSupplier(supplier_id);
  std::optional<std::string> contact;
  if (patch.contact) contact = ContactToJson(*patch.contact);
  return InTransaction<SupplierRecord>(
      pool_, kUpdateSupplier.name, kSupplierText,
      [&](pqxx::work& txn) -> absl::StatusOr<SupplierRecord> {
        const pqxx::result r = txn.exec_prepared(
            kUpdateSupplier.name, std::string(supplier_id), NullableText(patch.name),
            NullableText(patch.endpoint), NullableText(contact));
        if (r.empty()) return absl::NotFoundError("supplierId: no such supplier");
        return SupplierFromRow(r[0]);
      });
}

// ----------------------------------------------------------- connections --

absl::StatusOr<ConnectionRecord> PgRepository::CreateConnection(std::string_view supplier_id,
                                                                std::string_view name,
                                                                int max_webhooks) {
  if (!IsUuid(supplier_id)) return absl::NotFoundError("supplierId: no such supplier");
  return InTransaction<ConnectionRecord>(
      pool_, kInsertConnection.name, kConnectionText,
      [&](pqxx::work& txn) -> absl::StatusOr<ConnectionRecord> {
        return ConnectionFromRow(txn.exec_prepared1(
            kInsertConnection.name, std::string(supplier_id), std::string(name), max_webhooks));
      });
}

absl::StatusOr<ConnectionRecord> PgRepository::GetConnection(std::string_view connection_id) {
  if (!IsUuid(connection_id)) return absl::NotFoundError("connectionId: no such connection");
  return ReadTransaction<ConnectionRecord>(pool_, kSelectConnection.name,
      [&](pqxx::work& txn) -> absl::StatusOr<ConnectionRecord> {
        const pqxx::result r =
            txn.exec_prepared(kSelectConnection.name, std::string(connection_id));
        if (r.empty()) return absl::NotFoundError("connectionId: no such connection");
        return ConnectionFromRow(r[0]);
      });
}

absl::StatusOr<std::vector<ConnectionRecord>> PgRepository::ListConnections(
    std::string_view supplier_id) {
  if (!IsUuid(supplier_id)) return absl::NotFoundError("supplierId: no such supplier");
  return ReadTransaction<std::vector<ConnectionRecord>>(pool_, kListConnections.name,
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<ConnectionRecord>> {
        const std::string id(supplier_id);
        if (txn.exec_prepared(kSupplierExists.name, id).empty()) {
          return absl::NotFoundError("supplierId: no such supplier");
        }
        std::vector<ConnectionRecord> out;
        for (const auto& row : txn.exec_prepared(kListConnections.name, id))
          out.push_back(ConnectionFromRow(row));
        return out;
      });
}

// -------------------------------------------------------------- API keys --

absl::StatusOr<ApiKeyRecord> PgRepository::CreateApiKey(const NewApiKey& key) {
  if (!IsUuid(key.connection_id)) return absl::NotFoundError("connectionId: no such connection");
  if (key.key_hash.size() != 32)
    return absl::InvalidArgumentError("apiKey: the hash must be 32 bytes");
  return InTransaction<ApiKeyRecord>(
      pool_, kInsertApiKey.name, kApiKeyText, [&](pqxx::work& txn) -> absl::StatusOr<ApiKeyRecord> {
        return ApiKeyFromRow(txn.exec_prepared1(kInsertApiKey.name, key.connection_id, key.name,
                                                key.prefix, crypto::HexEncode(key.key_hash)));
      });
}

absl::StatusOr<std::vector<ApiKeyRecord>> PgRepository::ListApiKeys(
    std::string_view connection_id) {
  if (!IsUuid(connection_id)) return absl::NotFoundError("connectionId: no such connection");
  return ReadTransaction<std::vector<ApiKeyRecord>>(pool_, kListApiKeys.name,
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<ApiKeyRecord>> {
        const std::string id(connection_id);
        if (txn.exec_prepared(kConnectionExists.name, id).empty()) {
          return absl::NotFoundError("connectionId: no such connection");
        }
        std::vector<ApiKeyRecord> out;
        for (const auto& row : txn.exec_prepared(kListApiKeys.name, id))
          out.push_back(ApiKeyFromRow(row));
        return out;
      });
}

absl::StatusOr<ApiKeyRecord> PgRepository::RevokeApiKey(std::string_view api_key_id) {
  if (!IsUuid(api_key_id)) return absl::NotFoundError("apiKeyId: no such API key");
  return InTransaction<ApiKeyRecord>(
      pool_, kRevokeApiKey.name, kNoText, [&](pqxx::work& txn) -> absl::StatusOr<ApiKeyRecord> {
        const pqxx::result r = txn.exec_prepared(kRevokeApiKey.name, std::string(api_key_id));
        if (r.empty()) return absl::NotFoundError("apiKeyId: no such API key");
        return ApiKeyFromRow(r[0]);
      });
}

absl::StatusOr<KeyOwner> PgRepository::AuthenticateKeyHash(std::string_view key_hash) {
  if (key_hash.size() != 32) return absl::UnauthenticatedError("invalid API key");
  return ReadTransaction<KeyOwner>(
      pool_, kAuthenticate.name, [&](pqxx::work& txn) -> absl::StatusOr<KeyOwner> {
        const pqxx::result r = txn.exec_prepared(kAuthenticate.name, crypto::HexEncode(key_hash));
        if (r.empty()) return absl::UnauthenticatedError("invalid API key");
        if (r[0][3].as<bool>()) return absl::UnauthenticatedError("API key revoked");
        return KeyOwner{r[0][0].as<std::string>(), r[0][1].as<std::string>(),
                        r[0][2].as<std::string>()};
      });
}

// -------------------------------------------------------------- webhooks --

absl::StatusOr<WebhookRecord> PgRepository::CreateWebhook(const NewWebhook& w) {
  if (!IsUuid(w.connection_id)) return absl::NotFoundError("connectionId: no such connection");
  return InTransaction<WebhookRecord>(
      pool_, kInsertWebhook.name, kWebhookText,
      [&](pqxx::work& txn) -> absl::StatusOr<WebhookRecord> {
        return WebhookFromRow(
            txn.exec_prepared1(kInsertWebhook.name, w.connection_id, w.event, w.url,
                               BoolText(w.retry_on_error), BoolText(w.use_contact_language),
                               HeadersToJson(w.headers), StringsToJson(w.capabilities), w.secret,
                               NullableText(NumberText(w.rate_limit_per_second)),
                               NullableText(NumberText(w.max_concurrency)), w.dialect,
                               *TextArray(w.event_types), BoolText(w.active),
                               BoolText(w.ordered)));
      });
}

absl::StatusOr<WebhookRecord> PgRepository::GetWebhook(std::string_view connection_id,
                                                       std::string_view webhook_id) {
  if (!IsUuid(connection_id) || !IsUuid(webhook_id)) return WebhookNotFound();
  return ReadTransaction<WebhookRecord>(
      pool_, kSelectWebhook.name, [&](pqxx::work& txn) -> absl::StatusOr<WebhookRecord> {
        const pqxx::result r = txn.exec_prepared(kSelectWebhook.name, std::string(webhook_id),
                                                 std::string(connection_id));
        if (r.empty()) return WebhookNotFound();
        return WebhookFromRow(r[0]);
      });
}

absl::StatusOr<std::vector<WebhookRecord>> PgRepository::GetWebhooksById(
    std::string_view supplier_id, const std::vector<std::string>& webhook_ids) {
  using Out = std::vector<WebhookRecord>;
  for (const std::string& id : webhook_ids) {
    if (!IsUuid(id)) return absl::InvalidArgumentError("webhookId: not a UUID");
  }
  if (webhook_ids.empty() || !IsUuid(supplier_id)) return Out{};
  const std::string array = absl::StrCat("{", absl::StrJoin(webhook_ids, ","), "}");
  return ReadTransaction<Out>(pool_, kSelectWebhooksById.name, [&](pqxx::work& txn) -> absl::StatusOr<Out> {
    Out out;
    for (const auto& row : txn.exec_prepared(kSelectWebhooksById.name, array, std::string(supplier_id))) {
      out.push_back(WebhookFromRow(row));
    }
    return out;
  });
}

absl::StatusOr<WebhookPage> PgRepository::ListWebhooks(std::string_view connection_id,
                                                       int page_size, std::string_view page_token,
                                                       std::string_view dialect) {
  if (page_size < 1 || page_size > 1000) {
    return absl::InvalidArgumentError("pageSize: must be between 1 and 1000");
  }
  std::optional<PageCursor> after;
  if (!page_token.empty()) {
    absl::StatusOr<PageCursor> cursor = DecodePageToken(page_token);
    if (!cursor.ok()) return cursor.status();
    after = *std::move(cursor);
  }
  if (!IsUuid(connection_id)) return WebhookPage{};
  return ReadTransaction<WebhookPage>(
      pool_, kListWebhooksFirst.name, [&](pqxx::work& txn) -> absl::StatusOr<WebhookPage> {
        // One row more than asked tells whether another page follows.
        const int limit = page_size + 1;
        const std::string id(connection_id);
        const pqxx::result r = after
                                   ? txn.exec_prepared(kListWebhooksAfter.name, id,
                                                       after->create_time_micros, after->id, limit,
                                                       std::string(dialect))
                                   : txn.exec_prepared(kListWebhooksFirst.name, id, limit,
                                                       std::string(dialect));
        WebhookPage page;
        for (const auto& row : r) {
          if (static_cast<int>(page.webhooks.size()) == page_size) break;
          page.webhooks.push_back(WebhookFromRow(row));
        }
        if (static_cast<int>(r.size()) > page_size) {
          const WebhookRecord& last = page.webhooks.back();
          page.next_page_token = EncodePageToken({absl::ToUnixMicros(last.create_time), last.id});
        }
        return page;
      });
}

absl::StatusOr<WebhookRecord> PgRepository::UpdateWebhook(std::string_view connection_id,
                                                          std::string_view webhook_id,
                                                          const WebhookPatch& patch) {
  if (!IsUuid(connection_id) || !IsUuid(webhook_id)) return WebhookNotFound();
  if (patch.empty()) return GetWebhook(connection_id, webhook_id);
  std::optional<std::string> headers;
  if (patch.headers) headers = HeadersToJson(*patch.headers);
  const std::optional<std::string> rate = NumberText(patch.rate_limit_per_second);
  const std::optional<std::string> concurrency = NumberText(patch.max_concurrency);
  const std::optional<std::string> event_types = TextArray(patch.event_types);
  const std::optional<bool> active = patch.active;
  return InTransaction<WebhookRecord>(
      pool_, kUpdateWebhook.name, kWebhookText,
      [&](pqxx::work& txn) -> absl::StatusOr<WebhookRecord> {
        const pqxx::result r = txn.exec_prepared(
            kUpdateWebhook.name, std::string(webhook_id), std::string(connection_id),
            NullableText(patch.event), NullableText(patch.url), NullableBool(patch.retry_on_error),
            NullableBool(patch.use_contact_language), NullableText(headers),
            NullableText(rate), NullableText(concurrency), NullableText(event_types),
            NullableBool(active), NullableBool(patch.ordered));
        if (r.empty()) return WebhookNotFound();
        return WebhookFromRow(r[0]);
      });
}

absl::StatusOr<WebhookRecord> PgRepository::DeleteWebhook(std::string_view connection_id,
                                                          std::string_view webhook_id) {
  if (!IsUuid(connection_id) || !IsUuid(webhook_id)) return WebhookNotFound();
  // The lock order (webhook, its resources, its deliveries: see
  // kLockWebhookForDelete). A deadlock that remains (with a result write
  // holding two deliveries of the webhook in another order) aborts one of
  // the two: the delete is rerun, with a few more runs than the default.
  return InTransaction<WebhookRecord>(
      pool_, {.operation = kDeleteWebhook.name, .max_attempts = 5}, kNoText,
      [&](pqxx::work& txn) -> absl::StatusOr<WebhookRecord> {
        if (txn.exec_prepared(kLockWebhookForDelete.name, std::string(webhook_id), std::string(connection_id))
                .empty()) {
          return WebhookNotFound();
        }
        txn.exec_prepared(kLockWebhookResources.name, std::string(webhook_id));
        txn.exec_prepared(kLockWebhookDeliveries.name, std::string(webhook_id));
        const pqxx::result r = txn.exec_prepared(kDeleteWebhook.name, std::string(webhook_id),
                                                 std::string(connection_id));
        if (r.empty()) return WebhookNotFound();
        return WebhookFromRow(r[0]);
      });
}

absl::StatusOr<WebhookRecord> PgRepository::RotateWebhookSecret(std::string_view connection_id,
                                                                std::string_view webhook_id,
                                                                std::string_view new_secret,
                                                                absl::Duration grace) {
  if (!IsUuid(connection_id) || !IsUuid(webhook_id)) return WebhookNotFound();
  const long long grace_us = absl::ToInt64Microseconds(grace);
  return InTransaction<WebhookRecord>(
      pool_, kRotateWebhookSecret.name, kNoText,
      [&](pqxx::work& txn) -> absl::StatusOr<WebhookRecord> {
        const pqxx::result r =
            txn.exec_prepared(kRotateWebhookSecret.name, std::string(webhook_id),
                              std::string(connection_id), std::string(new_secret), grace_us);
        if (r.empty()) return WebhookNotFound();
        return WebhookFromRow(r[0]);
      });
}

absl::StatusOr<WebhookRecord> PgRepository::EnableWebhook(std::string_view connection_id,
                                                          std::string_view webhook_id) {
  if (!IsUuid(connection_id) || !IsUuid(webhook_id)) return WebhookNotFound();
  return InTransaction<WebhookRecord>(
      pool_, kEnableWebhook.name, kNoText, [&](pqxx::work& txn) -> absl::StatusOr<WebhookRecord> {
        const pqxx::result r = txn.exec_prepared(kEnableWebhook.name, std::string(webhook_id),
                                                 std::string(connection_id));
        if (r.empty()) return WebhookNotFound();
        return WebhookFromRow(r[0]);
      });
}

}  // namespace octo::subscription
