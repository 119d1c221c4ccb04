#pragma once
// Between the subscription repository's rows and parameters and its records
// (pg_repository.cc): timestamps in microseconds, the JSON columns (contact,
// headers, string arrays), the rows of each table, and the text of nullable
// parameters. Internal to the repository.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

#include "absl/time/time.h"
#include "services/subscription/repository.h"

namespace octo::subscription::repository_rows {

absl::Time FromMicros(const pqxx::field& f);
std::optional<absl::Time> FromNullableMicros(const pqxx::field& f);

std::string ContactToJson(const ContactRecord& c);
ContactRecord ContactFromJson(std::string_view json);
std::string HeadersToJson(const std::map<std::string, std::string>& headers);
std::map<std::string, std::string> HeadersFromJson(std::string_view json);
std::string StringsToJson(const std::vector<std::string>& values);
std::vector<std::string> StringsFromJson(std::string_view json);

SupplierRecord SupplierFromRow(const pqxx::row& r);
ConnectionRecord ConnectionFromRow(const pqxx::row& r);
ApiKeyRecord ApiKeyFromRow(const pqxx::row& r);
WebhookRecord WebhookFromRow(const pqxx::row& r);

// libpqxx passes a null const char* as SQL NULL.
const char* NullableText(const std::optional<std::string>& v);
const char* NullableBool(const std::optional<bool>& v);
const char* BoolText(bool v);
// Text for a nullable numeric parameter (NULL when unset); exact for doubles.
std::optional<std::string> NumberText(const std::optional<double>& v);
std::optional<std::string> NumberText(const std::optional<int>& v);
// A text[] parameter of event names (validated: no quoting needed).
std::optional<std::string> TextArray(const std::optional<std::vector<std::string>>& values);

}  // namespace octo::subscription::repository_rows
