#include "services/subscription/pg_repository_rows.h"

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

namespace octo::subscription::repository_rows {
namespace {

std::string StringField(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(boost::json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_string()) return "";
  return std::string(v->as_string());
}

}  // namespace

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
  w.ordered = r[20].as<bool>();
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

}  // namespace octo::subscription::repository_rows
