#include "services/common/pg_connection.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace octo {
namespace {

constexpr absl::Duration kMaxSessionTimeout = absl::Hours(24);
constexpr absl::Duration kMaxConnectTimeout = absl::Minutes(10);
constexpr absl::Duration kMaxKeepalive = absl::Hours(2);

bool WholeUnits(absl::Duration d, absl::Duration unit) {
  return absl::IDivDuration(d, unit, &d) >= 0 && d == absl::ZeroDuration();
}

absl::Status CheckRange(std::string_view flag, absl::Duration d, absl::Duration min,
                        absl::Duration max, absl::Duration unit, std::string_view unit_name) {
  if (d < min || d > max || !WholeUnits(d, unit)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", std::string(flag), ": must be a whole number of ", std::string(unit_name),
        " between ", absl::FormatDuration(min), " and ", absl::FormatDuration(max), ", got ",
        absl::FormatDuration(d)));
  }
  return absl::OkStatus();
}

// Single quotes around a value, with ' and \ escaped (libpq's key=value syntax).
std::string Quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string Seconds(absl::Duration d) { return std::to_string(absl::ToInt64Seconds(d)); }
std::string Millis(absl::Duration d) { return std::to_string(absl::ToInt64Milliseconds(d)); }

bool EnvSet(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

// The parsed conninfo, keyword -> value, only what it sets.
absl::StatusOr<std::map<std::string, std::string>> Parse(std::string_view conninfo) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(std::string(conninfo).c_str(), &error);
  if (parsed == nullptr) {
    // libpq's reason quotes the offending token, which can be part of the
    // password (a bad %-escape, a space in an unquoted value): not repeated.
    if (error != nullptr) PQfreemem(error);
    return absl::InvalidArgumentError(
        "unparsable PostgreSQL conninfo (expected key=value pairs or a postgresql:// URI; "
        "quote values with spaces, percent-encode URI parts)");
  }
  std::map<std::string, std::string> out;
  for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out.emplace(o->keyword, o->val);
  }
  PQconninfoFree(parsed);
  return out;
}

}  // namespace

absl::Status ValidatePgConnectionOptions(const PgConnectionOptions& o) {
  const absl::Duration ms = absl::Milliseconds(1);
  const absl::Duration s = absl::Seconds(1);
  const absl::Duration zero = absl::ZeroDuration();
  for (absl::Status st : {
           CheckRange("pg_statement_timeout", o.statement_timeout, zero, kMaxSessionTimeout, ms,
                      "milliseconds"),
           CheckRange("pg_lock_timeout", o.lock_timeout, zero, kMaxSessionTimeout, ms,
                      "milliseconds"),
           CheckRange("pg_idle_in_transaction_timeout", o.idle_in_transaction_timeout, zero,
                      kMaxSessionTimeout, ms, "milliseconds"),
           CheckRange("pg_connect_timeout", o.connect_timeout, absl::Seconds(2),
                      kMaxConnectTimeout, s, "seconds"),
           CheckRange("pg_keepalives_idle", o.keepalives_idle, s, kMaxKeepalive, s, "seconds"),
           CheckRange("pg_keepalives_interval", o.keepalives_interval, s, kMaxKeepalive, s,
                      "seconds"),
           CheckRange("pg_tcp_user_timeout", o.tcp_user_timeout, zero, kMaxKeepalive, ms,
                      "milliseconds"),
       }) {
    if (!st.ok()) return st;
  }
  if (o.keepalives_count < 1 || o.keepalives_count > 100) {
    return absl::InvalidArgumentError("--pg_keepalives_count: must be between 1 and 100");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PgConninfo(std::string_view conninfo,
                                       const PgConnectionOptions& options) {
  if (absl::Status s = ValidatePgConnectionOptions(options); !s.ok()) return s;
  absl::StatusOr<std::map<std::string, std::string>> parsed = Parse(conninfo);
  if (!parsed.ok()) return parsed.status();
  std::map<std::string, std::string>& kv = *parsed;
  // An operator's PGCONNECT_TIMEOUT applies when the conninfo names none.
  if (!EnvSet("PGCONNECT_TIMEOUT")) kv.emplace("connect_timeout", Seconds(options.connect_timeout));
  kv.emplace("keepalives", options.keepalives ? "1" : "0");
  kv.emplace("keepalives_idle", Seconds(options.keepalives_idle));
  kv.emplace("keepalives_interval", Seconds(options.keepalives_interval));
  kv.emplace("keepalives_count", std::to_string(options.keepalives_count));
  // libpq 12 and later; 0 keeps the system's default, as if unset.
  if (PQlibVersion() >= 120000 && options.tcp_user_timeout > absl::ZeroDuration()) {
    kv.emplace("tcp_user_timeout", Millis(options.tcp_user_timeout));
  }
  // Later -c settings win in PostgreSQL's startup options: ours first, then
  // the operator's (conninfo, else PGOPTIONS, which libpq would otherwise
  // drop once "options" is set), then the caller's overrides.
  std::string session = absl::StrCat(
      "-c statement_timeout=", Millis(options.statement_timeout),
      " -c lock_timeout=", Millis(options.lock_timeout),
      " -c idle_in_transaction_session_timeout=", Millis(options.idle_in_transaction_timeout),
      // Short statements, planned on estimates that grow with the tables: past
      // jit_above_cost each call compiled its plan with LLVM (97 % of the queue
      // gauge's read at 100,000 pending rows). An operator's options may set it.
      " -c jit=off");
  if (auto it = kv.find("options"); it != kv.end()) {
    if (!it->second.empty()) absl::StrAppend(&session, " ", it->second);
  } else if (EnvSet("PGOPTIONS")) {
    absl::StrAppend(&session, " ", std::getenv("PGOPTIONS"));
  }
  if (!options.override_options.empty()) absl::StrAppend(&session, " ", options.override_options);
  kv["options"] = session;
  std::string out;
  for (const auto& [key, value] : kv) {
    absl::StrAppend(&out, out.empty() ? "" : " ", key, "=", Quote(value));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> OpenPgConnection(const std::string& conninfo) {
  try {
    return std::make_unique<pqxx::connection>(conninfo);
  } catch (const std::exception& e) {
    // libpq's connection errors name host and port, never the password.
    std::string reason = e.what();
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", reason));
  }
}

}  // namespace octo
