#pragma once
// octo-admin's commands for a supplier's operators and their daily work:
//
//   operator create --supplier=ID --name=NAME     a dashboard login; prints the
//                                                 generated password once
//   operator list --supplier=ID | operator delete OPERATOR_ID
//   webhook list|show|create|delete|test|replay|enable --connection=ID ...
//   delivery list|show|redeliver --connection=ID --webhook=ID ...
//
// The same calls the dashboard makes (OperatorService, SubscriptionService).
// Output is the response as protobuf JSON; --output=id prints only ids,
// --output=password (operator create) only the password.
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "octo/webhooks/v1/operators.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"

namespace octo::admin {

// True when argv's first command word is operator, webhook or delivery.
bool IsOperatorCommand(const std::vector<std::string>& args);

// Parsed form: the resource, the verb, the positional id and the flags.
struct OperatorInvocation {
  std::string resource;
  std::string verb;
  std::string id;
  std::vector<std::pair<std::string, std::string>> flags;  // repeated flags kept in order
  std::string target;
  std::string output = "json";
};

// INVALID_ARGUMENT with a usage message for unknown verbs/flags or missing ones.
absl::StatusOr<OperatorInvocation> ParseOperatorArgs(const std::vector<std::string>& args,
                                                     const std::string& default_target);

// Runs it; exit status as RunAdminCommand (0 ok, 1 RPC failed, 2 usage).
int RunOperatorCommand(const OperatorInvocation& inv, octo::webhooks::v1::OperatorService::StubInterface& operators,
                       octo::webhooks::v1::SubscriptionService::StubInterface& subscriptions, std::ostream& out,
                       std::ostream& err);

std::string OperatorUsage();

}  // namespace octo::admin
