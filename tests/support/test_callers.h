#pragma once
// The internal callers' credentials of a test stack (services/common/grpc_auth.h):
// a temporary directory with one random token file per caller identity, the
// flags that hand it to the services, and channels that call as one caller.
//
// Example:
//   octo::testing::TestCallers callers;
//   ProcessOptions{.binary = OCTO_SUBSCRIPTION_BIN,
//                  .args = {"--grpc_listen=127.0.0.1:0", ...}};
//   options.args += callers.SubscriptionFlags();       // or DeliveryFlags()
//   auto admin = AdminService::NewStub(callers.Channel(target, "admin"));
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

namespace octo::testing {

class TestCallers {
 public:
  // Writes the tokens of every known caller; throws std::runtime_error (a
  // test failure) when the directory cannot be made.
  TestCallers();
  ~TestCallers();  // removes the directory
  TestCallers(const TestCallers&) = delete;
  TestCallers& operator=(const TestCallers&) = delete;

  const std::string& dir() const { return dir_; }
  std::string TokenFile(std::string_view identity) const { return dir_ + "/" + std::string(identity); }
  std::string Token(std::string_view identity) const;

  // The flags octo-subscription / octo-delivery need to start.
  std::vector<std::string> SubscriptionFlags() const;
  std::vector<std::string> DeliveryFlags() const;

  // A plaintext channel whose calls carry `identity`'s token.
  std::shared_ptr<grpc::Channel> Channel(const std::string& target, std::string_view identity,
                                         const grpc::ChannelArguments& args = {}) const;

 private:
  std::string dir_;
};

// A channel carrying `token` (e.g. a wrong one) or, for "", none.
std::shared_ptr<grpc::Channel> ChannelWithToken(const std::string& target, const std::string& token,
                                                const grpc::ChannelArguments& args = {});

}  // namespace octo::testing
