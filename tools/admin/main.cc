// octo-admin: operator CLI over the subscription service's AdminService.
// Wiring only: parse argv, open the channel, run the command.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <iostream>
#include <string>
#include <vector>

#include "services/common/net.h"
#include "tools/admin/admin_args.h"
#include "tools/admin/admin_runner.h"
#include "tools/admin/operator_commands.h"

int main(int argc, char** argv) {
  using namespace octo::admin;
  const std::vector<std::string> args(argv, argv + argc);
  if (IsOperatorCommand(args)) {
    const absl::StatusOr<OperatorInvocation> op =
        ParseOperatorArgs(args, octo::EnvOr("OCTO_SUBSCRIPTION_TARGET", "127.0.0.1:50051"));
    if (!op.ok()) {
      std::cerr << "octo-admin: " << op.status().message() << "\n";
      return kExitUsage;
    }
    const std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(op->target, grpc::InsecureChannelCredentials());
    const auto operators = octo::webhooks::v1::OperatorService::NewStub(channel);
    const auto subscriptions = octo::webhooks::v1::SubscriptionService::NewStub(channel);
    return RunOperatorCommand(*op, *operators, *subscriptions, std::cout, std::cerr);
  }
  const absl::StatusOr<AdminInvocation> inv =
      ParseAdminArgs(args, octo::EnvOr("OCTO_SUBSCRIPTION_TARGET", "127.0.0.1:50051"));
  if (!inv.ok()) {
    std::cerr << "octo-admin: " << inv.status().message() << "\n";
    return kExitUsage;
  }
  if (inv->command == AdminCommand::kHelp) {
    std::cout << AdminUsage() << OperatorUsage();
    return kExitOk;
  }
  if (inv->command == AdminCommand::kVersion) {
    std::cout << "octo-admin " << OCTO_WEBHOOKS_VERSION << "\n";
    return kExitOk;
  }
  // The subscription service listens on loopback only (design decision), so
  // the channel is plaintext.
  const std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(inv->target, grpc::InsecureChannelCredentials());
  const auto admin = octo::webhooks::v1::AdminService::NewStub(channel);
  const auto health = grpc::health::v1::Health::NewStub(channel);
  return RunAdminCommand(*inv, *admin, *health, std::cout, std::cerr);
}
