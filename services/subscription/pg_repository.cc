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

namespace octo::subscription {
namespace {

// ------------------------------------------------------------- statements --

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
  "max_concurrency, dialect, array_to_string(event_types, ',')"
// clang-format on

constexpr PgStatement kInsertSupplier{
    "insert_supplier",
    "INSERT INTO suppliers (name, endpoint, contact) VALUES ($1, $2, $3::jsonb) "
    "RETURNING " OCTO_SUPPLIER_COLUMNS};
constexpr PgStatement kSelectSupplier{
    "select_supplier", "SELECT " OCTO_SUPPLIER_COLUMNS " FROM suppliers WHERE id = $1::uuid"};
constexpr PgStatement kListSuppliers{
    "list_suppliers", "SELECT " OCTO_SUPPLIER_COLUMNS " FROM suppliers ORDER BY created_at, id"};
constexpr PgStatement kUpdateSupplier{
    "update_supplier",
    "UPDATE suppliers SET name = COALESCE($2, name), endpoint = COALESCE($3, endpoint), "
    "contact = COALESCE($4::jsonb, contact), updated_at = greatest(now(), created_at) "
    "WHERE id = $1::uuid RETURNING " OCTO_SUPPLIER_COLUMNS};

constexpr PgStatement kInsertConnection{
    "insert_connection",
    "INSERT INTO connections (supplier_id, name, max_webhooks) VALUES ($1::uuid, $2, $3) "
    "RETURNING " OCTO_CONNECTION_COLUMNS};
constexpr PgStatement kSelectConnection{
    "select_connection", "SELECT " OCTO_CONNECTION_COLUMNS " FROM connections WHERE id = $1::uuid"};
constexpr PgStatement kListConnections{"list_connections",
                                     "SELECT " OCTO_CONNECTION_COLUMNS
                                     " FROM connections WHERE supplier_id = $1::uuid "
                                     "ORDER BY created_at, id"};
constexpr PgStatement kSupplierExists{"supplier_exists",
                                    "SELECT 1 FROM suppliers WHERE id = $1::uuid"};
constexpr PgStatement kConnectionExists{"connection_exists",
                                      "SELECT 1 FROM connections WHERE id = $1::uuid"};

constexpr PgStatement kInsertApiKey{
    "insert_api_key",
    "INSERT INTO api_keys (connection_id, name, prefix, key_hash) "
    "VALUES ($1::uuid, $2, $3, decode($4, 'hex')) RETURNING " OCTO_API_KEY_COLUMNS};
constexpr PgStatement kListApiKeys{"list_api_keys", "SELECT " OCTO_API_KEY_COLUMNS
                                                  " FROM api_keys WHERE connection_id = $1::uuid "
                                                  "ORDER BY created_at, id"};
constexpr PgStatement kRevokeApiKey{
    "revoke_api_key",
    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, greatest(now(), created_at)) "
    "WHERE id = $1::uuid RETURNING " OCTO_API_KEY_COLUMNS};
constexpr PgStatement kAuthenticate{
    "authenticate_api_key",
    "SELECT k.id::text, k.connection_id::text, c.supplier_id::text, k.revoked_at IS NOT NULL "
    "FROM api_keys k JOIN connections c ON c.id = k.connection_id "
    "WHERE k.key_hash = decode($1, 'hex')"};

constexpr PgStatement kInsertWebhook{
    "insert_webhook",
    "INSERT INTO webhooks (connection_id, event, url, retry_on_error, use_contact_language, "
    "headers, capabilities, secret, rate_limit_per_second, max_concurrency, dialect, "
    "event_types, status, disabled_reason, disabled_at) "
    "VALUES ($1::uuid, $2, $3, $4::boolean, $5::boolean, $6::jsonb, $7::jsonb, $8, "
    "$9::double precision, $10::integer, $11, $12::text[], "
    "CASE WHEN $13::boolean THEN 'enabled' ELSE 'disabled' END, "
    "CASE WHEN $13::boolean THEN NULL ELSE 'deactivated' END, "
    "CASE WHEN $13::boolean THEN NULL ELSE now() END) "
    "RETURNING " OCTO_WEBHOOK_COLUMNS};
constexpr PgStatement kSelectWebhook{
    "select_webhook", "SELECT " OCTO_WEBHOOK_COLUMNS
                      " FROM webhooks WHERE id = $1::uuid AND connection_id = $2::uuid"};
constexpr PgStatement kSelectWebhooksById{
    "select_webhooks_by_id",
    "SELECT " OCTO_WEBHOOK_COLUMNS " FROM webhooks WHERE id = ANY($1::uuid[])"
    " AND connection_id IN (SELECT id FROM connections WHERE supplier_id = $2::uuid)"};
constexpr PgStatement kListWebhooksFirst{"list_webhooks_first",
                                       "SELECT " OCTO_WEBHOOK_COLUMNS
                                       " FROM webhooks WHERE connection_id = $1::uuid "
                                       "AND ($3 = '' OR dialect = $3) "
                                       "ORDER BY created_at, id LIMIT $2"};
constexpr PgStatement kListWebhooksAfter{"list_webhooks_after",
                                       "SELECT " OCTO_WEBHOOK_COLUMNS
                                       " FROM webhooks WHERE connection_id = $1::uuid "
                                       "AND (created_at, id) > ('epoch'::timestamptz + $2::bigint "
                                       "* interval '1 microsecond', $3::uuid) "
                                       "AND ($5 = '' OR dialect = $5) "
                                       "ORDER BY created_at, id LIMIT $4"};
constexpr PgStatement kUpdateWebhook{
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
    "updated_at = greatest(now(), created_at) "
    "WHERE id = $1::uuid AND connection_id = $2::uuid RETURNING " OCTO_WEBHOOK_COLUMNS};
constexpr PgStatement kDeleteWebhook{
    "delete_webhook",
    "DELETE FROM webhooks WHERE id = $1::uuid AND connection_id = $2::uuid "
    "RETURNING " OCTO_WEBHOOK_COLUMNS};

// $3 the new secret, $4 the grace in microseconds (0: keep no previous secret).
constexpr PgStatement kRotateWebhookSecret{
    "rotate_webhook_secret",
    "UPDATE webhooks SET "
    "previous_secret = CASE WHEN $4::bigint > 0 THEN secret END, "
    "previous_secret_expires_at = CASE WHEN $4::bigint > 0 "
    "  THEN now() + $4::bigint * interval '1 microsecond' END, "
    "secret = $3, updated_at = greatest(now(), created_at) "
    "WHERE id = $1::uuid AND connection_id = $2::uuid RETURNING " OCTO_WEBHOOK_COLUMNS};
constexpr PgStatement kEnableWebhook{
    "enable_webhook",
    "UPDATE webhooks SET status = 'enabled', disabled_reason = NULL, disabled_at = NULL, "
    "failing_since = NULL, updated_at = greatest(now(), created_at) "
    "WHERE id = $1::uuid AND connection_id = $2::uuid RETURNING " OCTO_WEBHOOK_COLUMNS};

constexpr std::array kStatements = {
    kInsertSupplier,    kSelectSupplier,    kListSuppliers,  kUpdateSupplier,   kInsertConnection,
    kSelectConnection,  kListConnections,   kSupplierExists, kConnectionExists, kInsertApiKey,
    kListApiKeys,       kRevokeApiKey,      kAuthenticate,   kInsertWebhook,    kSelectWebhook,
    kSelectWebhooksById,
    kListWebhooksFirst, kListWebhooksAfter, kUpdateWebhook,  kDeleteWebhook,
    kRotateWebhookSecret, kEnableWebhook,
};

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
absl::StatusOr<T> InTransaction(PgPool* pool, std::string_view operation, const ErrorText& text,
                                Body&& body) {
  absl::StatusOr<T> result =
      RunInTransaction(*pool, {.operation = operation}, std::forward<Body>(body));
  if (result.ok()) return result;
  return Reword(result.status(), text);
}

// The same for a transaction that only reads: rerun after any lost
// connection.
template <typename T, typename Body>
absl::StatusOr<T> ReadTransaction(PgPool* pool, std::string_view operation, Body&& body) {
  return RunInTransaction(*pool, {.operation = operation, .read_only = true},
                          std::forward<Body>(body));
}

// ------------------------------------------------------------ conversion --

absl::Time FromMicros(const pqxx::field& f) { return absl::FromUnixMicros(f.as<long long>()); }

std::optional<absl::Time> FromNullableMicros(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return FromMicros(f);
}

std::string ContactToJson(const ContactRecord& c) {
  boost::json::object o;
  // Only the fields that are set, so an empty contact is {}.
  if (!c.website.empty()) o["website"] = c.website;
  if (!c.email.empty()) o["email"] = c.email;
  if (!c.telephone.empty()) o["telephone"] = c.telephone;
  if (!c.address.empty()) o["address"] = c.address;
  return boost::json::serialize(o);
}

std::string StringField(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(boost::json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_string()) return "";
  return std::string(v->as_string());
}

ContactRecord ContactFromJson(std::string_view json) {
  ContactRecord c;
  const boost::json::value v =
      boost::json::parse(boost::json::string_view(json.data(), json.size()));
  if (!v.is_object()) return c;  // the schema guarantees an object
  const auto& o = v.as_object();
  c.website = StringField(o, "website");
  c.email = StringField(o, "email");
  c.telephone = StringField(o, "telephone");
  c.address = StringField(o, "address");
  return c;
}

std::string HeadersToJson(const std::map<std::string, std::string>& headers) {
  boost::json::object o;
  for (const auto& [name, value] : headers) o[name] = value;
  return boost::json::serialize(o);
}

std::map<std::string, std::string> HeadersFromJson(std::string_view json) {
  std::map<std::string, std::string> out;
  const boost::json::value v =
      boost::json::parse(boost::json::string_view(json.data(), json.size()));
  if (!v.is_object()) return out;
  for (const auto& [name, value] : v.as_object()) {
    if (value.is_string()) out.emplace(std::string(name), std::string(value.as_string()));
  }
  return out;
}

std::string StringsToJson(const std::vector<std::string>& values) {
  boost::json::array a;
  for (const auto& s : values) a.emplace_back(boost::json::string(s));
  return boost::json::serialize(a);
}

std::vector<std::string> StringsFromJson(std::string_view json) {
  std::vector<std::string> out;
  const boost::json::value v =
      boost::json::parse(boost::json::string_view(json.data(), json.size()));
  if (!v.is_array()) return out;
  for (const auto& item : v.as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

SupplierRecord SupplierFromRow(const pqxx::row& r) {
  SupplierRecord s;
  s.id = r[0].as<std::string>();
  s.name = r[1].as<std::string>();
  s.endpoint = r[2].as<std::string>();
  s.contact = ContactFromJson(r[3].as<std::string>());
  s.create_time = FromMicros(r[4]);
  s.update_time = FromMicros(r[5]);
  return s;
}

ConnectionRecord ConnectionFromRow(const pqxx::row& r) {
  ConnectionRecord c;
  c.id = r[0].as<std::string>();
  c.supplier_id = r[1].as<std::string>();
  c.name = r[2].as<std::string>();
  c.max_webhooks = r[3].as<int>();
  c.create_time = FromMicros(r[4]);
  return c;
}

ApiKeyRecord ApiKeyFromRow(const pqxx::row& r) {
  ApiKeyRecord k;
  k.id = r[0].as<std::string>();
  k.connection_id = r[1].as<std::string>();
  k.name = r[2].as<std::string>();
  k.prefix = r[3].as<std::string>();
  k.create_time = FromMicros(r[4]);
  k.revoke_time = FromNullableMicros(r[5]);
  return k;
}

WebhookRecord WebhookFromRow(const pqxx::row& r) {
  WebhookRecord w;
  w.id = r[0].as<std::string>();
  w.connection_id = r[1].as<std::string>();
  w.event = r[2].as<std::string>();
  w.url = r[3].as<std::string>();
  w.retry_on_error = r[4].as<bool>();
  w.use_contact_language = r[5].as<bool>();
  w.headers = HeadersFromJson(r[6].as<std::string>());
  w.capabilities = StringsFromJson(r[7].as<std::string>());
  w.secret = r[8].as<std::string>();
  w.status =
      r[9].as<std::string>() == "disabled" ? WebhookStatus::kDisabled : WebhookStatus::kEnabled;
  w.disabled_reason = r[10].as<std::string>();
  w.create_time = FromMicros(r[11]);
  w.update_time = FromMicros(r[12]);
  w.disable_time = FromNullableMicros(r[13]);
  w.failing_since = FromNullableMicros(r[14]);
  w.previous_secret_expire_time = FromNullableMicros(r[15]);
  if (!r[16].is_null()) w.rate_limit_per_second = r[16].as<double>();
  if (!r[17].is_null()) w.max_concurrency = r[17].as<int>();
  w.dialect = r[18].as<std::string>();
  w.event_types = absl::StrSplit(r[19].as<std::string>(), ',', absl::SkipEmpty());
  return w;
}

// libpqxx passes a null const char* as SQL NULL.
const char* NullableText(const std::optional<std::string>& v) { return v ? v->c_str() : nullptr; }
const char* NullableBool(const std::optional<bool>& v) {
  if (!v) return nullptr;
  return *v ? "true" : "false";
}
const char* BoolText(bool v) { return v ? "true" : "false"; }
// Text for a nullable numeric parameter (NULL when unset); exact for doubles.
std::optional<std::string> NumberText(const std::optional<double>& v) {
  if (!v) return std::nullopt;
  return absl::StrFormat("%.17g", *v);
}
std::optional<std::string> NumberText(const std::optional<int>& v) {
  if (!v) return std::nullopt;
  return std::to_string(*v);
}

// A text[] parameter of event names (validated: no quoting needed).
std::optional<std::string> TextArray(const std::optional<std::vector<std::string>>& values) {
  if (!values) return std::nullopt;
  return absl::StrCat("{", absl::StrJoin(*values, ","), "}");
}

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
                               *TextArray(w.event_types), BoolText(w.active)));
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
            NullableBool(active));
        if (r.empty()) return WebhookNotFound();
        return WebhookFromRow(r[0]);
      });
}

absl::StatusOr<WebhookRecord> PgRepository::DeleteWebhook(std::string_view connection_id,
                                                          std::string_view webhook_id) {
  if (!IsUuid(connection_id) || !IsUuid(webhook_id)) return WebhookNotFound();
  return InTransaction<WebhookRecord>(
      pool_, kDeleteWebhook.name, kNoText, [&](pqxx::work& txn) -> absl::StatusOr<WebhookRecord> {
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
