// octo-admin: operator CLI over the subscription service's AdminService (and
// its OperatorService, SubscriptionService and EventService).
// Wiring only: parse argv, open the channel, run the command.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "services/common/grpc_auth.h"
#include "services/common/net.h"
#include "tools/admin/admin_args.h"
#include "tools/admin/admin_runner.h"
#include "tools/admin/event_commands.h"
#include "tools/admin/operator_commands.h"
#include "tools/admin/token_flag.h"

namespace {

// A plaintext channel whose calls carry the admin token; null (after a
// message on stderr) when the token file is missing or invalid.
std::shared_ptr<grpc::Channel> AdminChannel(const std::string& target, const std::string& token_file) {
  absl::StatusOr<std::string> token =
      octo::grpc_auth::ReadTokenFile("--token_file (or OCTO_ADMIN_TOKEN_FILE)", token_file);
  if (!token.ok()) {
    std::cerr << "octo-admin: " << token.status().message() << "\n";
    return nullptr;
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(octo::grpc_auth::TokenInterceptor(*std::move(token)));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      target, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(), std::move(interceptors));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace octo::admin;
  std::vector<std::string> args(argv, argv + argc);
  const std::string token_file =
      octo::admin::TakeTokenFileFlag(args, octo::EnvOr("OCTO_ADMIN_TOKEN_FILE", ""));
  if (IsEventCommand(args)) {
    absl::StatusOr<EventInvocation> ev =
        ParseEventArgs(args, octo::EnvOr("OCTO_SUBSCRIPTION_TARGET", "127.0.0.1:50051"));
    if (!ev.ok()) {
      std::cerr << "octo-admin: " << ev.status().message() << "\n";
      return kExitUsage;
    }
    const std::shared_ptr<grpc::Channel> channel = AdminChannel(ev->target, token_file);
    if (channel == nullptr) return kExitUsage;
    const auto events = octo::webhooks::v1::EventService::NewStub(channel);
    return RunEventCommand(*std::move(ev), *events, std::cout, std::cerr);
  }
  if (IsOperatorCommand(args)) {
    const absl::StatusOr<OperatorInvocation> op =
        ParseOperatorArgs(args, octo::EnvOr("OCTO_SUBSCRIPTION_TARGET", "127.0.0.1:50051"));
    if (!op.ok()) {
      std::cerr << "octo-admin: " << op.status().message() << "\n";
      return kExitUsage;
    }
    const std::shared_ptr<grpc::Channel> channel = AdminChannel(op->target, token_file);
    if (channel == nullptr) return kExitUsage;
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
    std::cout << AdminUsage() << OperatorUsage() << EventUsage();
    return kExitOk;
  }
  if (inv->command == AdminCommand::kVersion) {
    std::cout << "octo-admin " << OCTO_WEBHOOKS_VERSION << "\n";
    return kExitOk;
  }
  // Plaintext, like every internal channel; the token says who calls. The
  // health service is open (the kubelet's probe has no token), so `health`
  // runs without one.
  const std::shared_ptr<grpc::Channel> channel =
      inv->command == AdminCommand::kHealth && token_file.empty()
          ? grpc::CreateChannel(inv->target, grpc::InsecureChannelCredentials())
          : AdminChannel(inv->target, token_file);
  if (channel == nullptr) return kExitUsage;
  const auto admin = octo::webhooks::v1::AdminService::NewStub(channel);
  const auto health = grpc::health::v1::Health::NewStub(channel);
  return RunAdminCommand(*inv, *admin, *health, std::cout, std::cerr);
}
