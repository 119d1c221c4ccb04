#include "tools/admin/admin_args.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"

namespace octo::admin {
namespace {

// One row per command: the words that select it, whether it takes an id
// argument, and the flags it accepts (besides the global ones).
struct CommandSpec {
  absl::string_view resource;
  absl::string_view verb;
  AdminCommand command;
  absl::string_view id_name;  // empty: no id argument
  std::vector<absl::string_view> flags;
  std::vector<absl::string_view> required_flags;
};

const std::vector<CommandSpec>& CommandSpecs() {
  static const auto* specs = new std::vector<CommandSpec>{
      {"health", "", AdminCommand::kHealth, "", {"service"}, {}},
      {"supplier",
       "create",
       AdminCommand::kSupplierCreate,
       "",
       {"name", "endpoint", "website", "email", "telephone", "address"},
       {"name", "endpoint"}},
      {"supplier", "list", AdminCommand::kSupplierList, "", {}, {}},
      {"supplier", "get", AdminCommand::kSupplierGet, "SUPPLIER_ID", {}, {}},
      {"supplier",
       "update",
       AdminCommand::kSupplierUpdate,
       "SUPPLIER_ID",
       {"name", "endpoint", "website", "email", "telephone", "address"},
       {}},
      {"connection",
       "create",
       AdminCommand::kConnectionCreate,
       "",
       {"supplier", "name", "max-webhooks"},
       {"supplier", "name"}},
      {"connection", "list", AdminCommand::kConnectionList, "", {"supplier"}, {"supplier"}},
      {"key", "create", AdminCommand::kKeyCreate, "", {"connection", "name"}, {"connection"}},
      {"key", "list", AdminCommand::kKeyList, "", {"connection"}, {"connection"}},
      {"key", "revoke", AdminCommand::kKeyRevoke, "KEY_ID", {}, {}},
  };
  return *specs;
}

constexpr absl::string_view kGlobalValueFlags[] = {"target", "timeout", "output"};
constexpr absl::string_view kGlobalBoolFlags[] = {"help", "version"};

bool Contains(const auto& range, absl::string_view value) {
  return std::find(std::begin(range), std::end(range), value) != std::end(range);
}

// "suppliers" -> "supplier", "keys"/"api-key" -> "key": forgiving aliases.
std::string CanonicalResource(absl::string_view word) {
  if (word == "suppliers") return "supplier";
  if (word == "connections") return "connection";
  if (word == "keys" || word == "api-key" || word == "api-keys" || word == "apikey") return "key";
  return std::string(word);
}

absl::Status UsageError(absl::string_view message) { return absl::InvalidArgumentError(message); }

// Splits argv into flags (name -> value; bool flags get "") and positional
// words.
struct SplitArgs {
  std::map<std::string, std::string> flags;
  std::vector<std::string> words;
};

absl::StatusOr<SplitArgs> Split(const std::vector<std::string>& args) {
  SplitArgs out;
  bool flags_done = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      out.words.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h") {
      out.flags["help"] = "";
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return UsageError(absl::StrCat("unknown flag ", arg, " (flags are written --name=value)"));
    }
    absl::string_view body = absl::string_view(arg).substr(2);
    std::string name;
    std::optional<std::string> value;
    if (auto eq = body.find('='); eq != absl::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
    } else {
      name = std::string(body);
    }
    name = absl::StrReplaceAll(name, {{"_", "-"}});
    if (name.empty()) return UsageError(absl::StrCat("malformed flag ", arg));
    if (Contains(kGlobalBoolFlags, name)) {
      if (value.has_value()) return UsageError(absl::StrCat("--", name, " takes no value"));
      value = "";
    } else if (!value.has_value()) {
      if (i + 1 >= args.size()) return UsageError(absl::StrCat("--", name, " needs a value"));
      value = args[++i];
    }
    if (!out.flags.emplace(name, *value).second) {
      return UsageError(absl::StrCat("--", name, " given more than once"));
    }
  }
  return out;
}

absl::StatusOr<int32_t> ParseNonNegativeInt(absl::string_view flag, absl::string_view text) {
  int32_t n = 0;
  if (!absl::SimpleAtoi(text, &n) || n < 0) {
    return UsageError(
        absl::StrCat("--", flag, " must be a non-negative integer, got '", text, "'"));
  }
  return n;
}

// Accepts "10s", "500ms", "1m" or a bare number of seconds.
absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text) {
  absl::Duration d;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return UsageError(absl::StrCat("--timeout: cannot parse '", text, "' (e.g. 10s, 500ms)"));
  }
  if (d <= absl::ZeroDuration()) return UsageError("--timeout must be positive");
  return d;
}

// Copies the contact flags present in `flags` into `contact`; returns their names.
std::set<std::string> FillContact(const std::map<std::string, std::string>& flags,
                                  octo::webhooks::v1::SupplierContact& contact) {
  std::set<std::string> given;
  auto take = [&](const char* name, std::string* field) {
    if (auto it = flags.find(name); it != flags.end()) {
      *field = it->second;
      given.insert(name);
    }
  };
  take("website", contact.mutable_website());
  take("email", contact.mutable_email());
  take("telephone", contact.mutable_telephone());
  take("address", contact.mutable_address());
  return given;
}

std::string CommandName(const CommandSpec& spec) {
  return spec.verb.empty() ? std::string(spec.resource)
                           : absl::StrCat(spec.resource, " ", spec.verb);
}

}  // namespace

absl::StatusOr<AdminInvocation> ParseAdminArgs(const std::vector<std::string>& args,
                                               const std::string& default_target) {
  absl::StatusOr<SplitArgs> split = Split(args);
  if (!split.ok()) return split.status();
  std::map<std::string, std::string>& flags = split->flags;
  std::vector<std::string>& words = split->words;

  AdminInvocation inv;
  if (flags.count("help") || (!words.empty() && words[0] == "help")) {
    inv.command = AdminCommand::kHelp;
    return inv;
  }
  if (flags.count("version") || (!words.empty() && words[0] == "version")) {
    inv.command = AdminCommand::kVersion;
    return inv;
  }
  if (words.empty()) return UsageError("no command given (try --help)");

  // Find the command.
  const std::string resource = CanonicalResource(words[0]);
  const CommandSpec* spec = nullptr;
  std::vector<std::string> verbs;
  for (const CommandSpec& s : CommandSpecs()) {
    if (s.resource != resource) continue;
    if (!s.verb.empty()) verbs.emplace_back(s.verb);
    if (s.verb.empty() || (words.size() > 1 && s.verb == words[1])) {
      spec = &s;
      break;
    }
  }
  if (spec == nullptr) {
    if (verbs.empty())
      return UsageError(absl::StrCat("unknown command '", words[0], "' (try --help)"));
    if (words.size() < 2) {
      return UsageError(
          absl::StrCat("'", resource, "' needs one of: ", absl::StrJoin(verbs, ", ")));
    }
    return UsageError(absl::StrCat("unknown command '", resource, " ", words[1],
                                   "'; expected one of: ", absl::StrJoin(verbs, ", ")));
  }
  inv.command = spec->command;
  const std::string name = CommandName(*spec);

  // Positional id.
  const std::size_t consumed = spec->verb.empty() ? 1 : 2;
  std::string id;
  if (!spec->id_name.empty()) {
    if (words.size() <= consumed) {
      return UsageError(absl::StrCat("'", name, "' needs ", spec->id_name));
    }
    id = words[consumed];
    if (id.empty()) return UsageError(absl::StrCat(spec->id_name, " must not be empty"));
    if (words.size() > consumed + 1) {
      return UsageError(absl::StrCat("unexpected argument '", words[consumed + 1], "'"));
    }
  } else if (words.size() > consumed) {
    return UsageError(absl::StrCat("unexpected argument '", words[consumed], "'"));
  }

  // Flags: known, and required ones present.
  for (const auto& [flag, value] : flags) {
    if (!Contains(kGlobalValueFlags, flag) && !Contains(spec->flags, flag)) {
      return UsageError(absl::StrCat("unknown flag --", flag, " for '", name, "'"));
    }
  }
  for (absl::string_view required : spec->required_flags) {
    auto it = flags.find(std::string(required));
    if (it == flags.end() || it->second.empty()) {
      return UsageError(absl::StrCat("'", name, "' needs --", required));
    }
  }
  auto flag = [&](const char* n) -> const std::string* {
    auto it = flags.find(n);
    return it == flags.end() ? nullptr : &it->second;
  };

  // Global flags.
  inv.target = flag("target") ? *flag("target") : default_target;
  if (inv.target.empty()) return UsageError("--target must not be empty");
  if (const std::string* t = flag("timeout")) {
    absl::StatusOr<absl::Duration> d = ParseTimeout(*t);
    if (!d.ok()) return d.status();
    inv.timeout = *d;
  }
  if (const std::string* o = flag("output")) {
    if (*o == "json") {
      inv.output = OutputFormat::kJson;
    } else if (*o == "id" && inv.command != AdminCommand::kHealth) {
      inv.output = OutputFormat::kId;
    } else if (*o == "key" && inv.command == AdminCommand::kKeyCreate) {
      inv.output = OutputFormat::kKey;
    } else {
      return UsageError(absl::StrCat("--output=", *o, " is not valid for '", name,
                                     "' (json, id; key for 'key create')"));
    }
  }

  // The request.
  switch (inv.command) {
    case AdminCommand::kHelp:
    case AdminCommand::kVersion:
      break;
    case AdminCommand::kHealth:
      if (const std::string* s = flag("service")) inv.health.set_service(*s);
      break;
    case AdminCommand::kSupplierCreate:
      inv.create_supplier.set_name(*flag("name"));
      inv.create_supplier.set_endpoint(*flag("endpoint"));
      FillContact(flags, *inv.create_supplier.mutable_contact());
      break;
    case AdminCommand::kSupplierList:
      break;
    case AdminCommand::kSupplierGet:
      inv.get_supplier.set_supplier_id(id);
      break;
    case AdminCommand::kSupplierUpdate: {
      inv.update_supplier.set_supplier_id(id);
      if (const std::string* n = flag("name")) inv.update_supplier.set_name(*n);
      if (const std::string* e = flag("endpoint")) inv.update_supplier.set_endpoint(*e);
      octo::webhooks::v1::SupplierContact contact;
      inv.update_contact_fields = FillContact(flags, contact);
      if (!inv.update_contact_fields.empty()) *inv.update_supplier.mutable_contact() = contact;
      if (!inv.update_supplier.has_name() && !inv.update_supplier.has_endpoint() &&
          inv.update_contact_fields.empty()) {
        return UsageError(
            "'supplier update' needs at least one of --name, --endpoint, --website, --email, "
            "--telephone, --address");
      }
      break;
    }
    case AdminCommand::kConnectionCreate: {
      inv.create_connection.set_supplier_id(*flag("supplier"));
      inv.create_connection.set_name(*flag("name"));
      if (const std::string* m = flag("max-webhooks")) {
        absl::StatusOr<int32_t> n = ParseNonNegativeInt("max-webhooks", *m);
        if (!n.ok()) return n.status();
        inv.create_connection.set_max_webhooks(*n);
      }
      break;
    }
    case AdminCommand::kConnectionList:
      inv.list_connections.set_supplier_id(*flag("supplier"));
      break;
    case AdminCommand::kKeyCreate:
      inv.create_api_key.set_connection_id(*flag("connection"));
      if (const std::string* n = flag("name")) inv.create_api_key.set_name(*n);
      break;
    case AdminCommand::kKeyList:
      inv.list_api_keys.set_connection_id(*flag("connection"));
      break;
    case AdminCommand::kKeyRevoke:
      inv.revoke_api_key.set_api_key_id(id);
      break;
  }
  return inv;
}

std::string AdminUsage() {
  return R"(octo-admin: operator CLI for the OCTO webhooks platform (AdminService over gRPC).

Usage: octo-admin [--token_file=PATH] [--target=HOST:PORT] [--timeout=10s] [--output=json|id|key]
                  COMMAND [ARGS]

Commands:
  supplier create --name=NAME --endpoint=URL
                  [--website=URL] [--email=ADDR] [--telephone=TEL] [--address=TEXT]
  supplier list
  supplier get SUPPLIER_ID
  supplier update SUPPLIER_ID [--name=NAME] [--endpoint=URL]
                  [--website=..] [--email=..] [--telephone=..] [--address=..]
                  (contact fields not given keep their value)
  connection create --supplier=SUPPLIER_ID --name=NAME [--max-webhooks=N]
                  (N=0 or absent: the service default)
  connection list --supplier=SUPPLIER_ID
  key create --connection=CONNECTION_ID [--name=NAME]
                  (prints the bearer key: it is shown this once, only its hash is stored)
  key list --connection=CONNECTION_ID
  key revoke KEY_ID
  health [--service=NAME]   gRPC health check; exit 0 when SERVING

Global flags:
  --token_file=PATH   the admin caller token, one line (default: $OCTO_ADMIN_TOKEN_FILE);
                      required: the subscription service refuses calls without it
                      (docs/operations.md, "Internal credentials")
  --target=HOST:PORT  the subscription service (default: $OCTO_SUBSCRIPTION_TARGET,
                      else 127.0.0.1:50051)
  --timeout=DURATION  deadline of each call (default 10s)
  --output=FORMAT     json (default): the response as JSON;
                      id: only the id (one per line for lists);
                      key: only the bearer key (key create)
  --help, --version

Flags may also be written --flag VALUE; '_' and '-' are interchangeable in names.
Exit status: 0 success, 1 the call failed (the gRPC code is printed on stderr), 2 usage error.

Example:
  octo-admin supplier create --name="Demo Tours" --endpoint=https://demo.example.com/octo
  octo-admin connection create --supplier=<supplier id> --name="Demo reseller"
  octo-admin key create --connection=<connection id> --output=key
)";
}

}  // namespace octo::admin
