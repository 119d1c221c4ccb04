#pragma once
// Command-line grammar of octo-admin, the operator CLI over AdminService.
//
// ParseAdminArgs() turns argv into an AdminInvocation: which RPC to call and
// its request message, already filled in. It does no I/O, so the grammar is
// unit-tested without a server (tools/admin/admin_args_test.cc).
//
// Example:
//   octo-admin supplier create --name="Demo Tours" --endpoint=https://demo.example/octo
//   -> command kSupplierCreate, create_supplier.name() == "Demo Tours"
//
// Flags may come before or after the command words, as `--flag=value` or
// `--flag value`; `-` and `_` are interchangeable in flag names
// (`--max-webhooks` == `--max_webhooks`); `--` ends the flags.
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.pb.h"
#include "octo/webhooks/v1/webhooks.pb.h"

namespace octo::admin {

enum class AdminCommand {
  kHelp,
  kVersion,
  kHealth,
  kSupplierCreate,
  kSupplierList,
  kSupplierGet,
  kSupplierUpdate,
  kConnectionCreate,
  kConnectionList,
  kKeyCreate,
  kKeyList,
  kKeyRevoke,
};

// What is printed on stdout on success.
enum class OutputFormat {
  kJson,  // the response message as protobuf JSON (default)
  kId,    // only the id of the resource; one per line for lists
  kKey,   // `key create` only: only the bearer key
};

// The result of parsing: the command and, in the member named after it, the
// request to send. Members of other commands stay default.
struct AdminInvocation {
  AdminCommand command = AdminCommand::kHelp;
  std::string target;
  absl::Duration timeout = absl::Seconds(10);
  OutputFormat output = OutputFormat::kJson;

  grpc::health::v1::HealthCheckRequest health;
  octo::webhooks::v1::CreateSupplierRequest create_supplier;
  octo::webhooks::v1::GetSupplierRequest get_supplier;
  octo::webhooks::v1::UpdateSupplierRequest update_supplier;
  // `supplier update`: the contact fields given on the command line
  // ("website", "email", "telephone", "address"). UpdateSupplier replaces the
  // whole contact, so the runner merges these into the current contact first.
  std::set<std::string> update_contact_fields;
  octo::webhooks::v1::CreateConnectionRequest create_connection;
  octo::webhooks::v1::ListConnectionsRequest list_connections;
  octo::webhooks::v1::CreateApiKeyRequest create_api_key;
  octo::webhooks::v1::ListApiKeysRequest list_api_keys;
  octo::webhooks::v1::RevokeApiKeyRequest revoke_api_key;
};

// Parses `args` (args[0] is the program name). `default_target` is used when
// --target is absent (main passes $OCTO_SUBSCRIPTION_TARGET or the default).
// Returns InvalidArgumentError with a one-line message for a usage error:
// unknown command or flag, missing required flag or id, bad number.
absl::StatusOr<AdminInvocation> ParseAdminArgs(const std::vector<std::string>& args,
                                               const std::string& default_target);

// The --help text.
std::string AdminUsage();

}  // namespace octo::admin
