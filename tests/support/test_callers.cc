#include "tests/support/test_callers.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "services/common/crypto.h"
#include "services/common/grpc_auth.h"

namespace octo::testing {

TestCallers::TestCallers() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                        "/octo-test-callers.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  for (std::string_view identity : grpc_auth::KnownCallers()) {
    std::ofstream out(TokenFile(identity));
    out << crypto::HexEncode(crypto::RandomBytes(32)) << "\n";
    if (!out) throw std::runtime_error("cannot write " + TokenFile(identity));
    out.close();
    chmod(TokenFile(identity).c_str(), 0600);
  }
}

TestCallers::~TestCallers() {
  for (std::string_view identity : grpc_auth::KnownCallers()) unlink(TokenFile(identity).c_str());
  rmdir(dir_.c_str());
}

std::string TestCallers::Token(std::string_view identity) const {
  absl::StatusOr<std::string> token = grpc_auth::ReadTokenFile("test token", TokenFile(identity));
  if (!token.ok()) throw std::runtime_error(std::string(token.status().message()));
  return *token;
}

std::vector<std::string> TestCallers::SubscriptionFlags() const {
  return {"--grpc_callers_dir=" + dir_,
          "--delivery_token_file=" + TokenFile(grpc_auth::kSubscription)};
}

std::vector<std::string> TestCallers::DeliveryFlags() const { return {"--grpc_callers_dir=" + dir_}; }

std::shared_ptr<grpc::Channel> TestCallers::Channel(const std::string& target,
                                                    std::string_view identity,
                                                    const grpc::ChannelArguments& args) const {
  return ChannelWithToken(target, Token(identity), args);
}

std::shared_ptr<grpc::Channel> ChannelWithToken(const std::string& target, const std::string& token,
                                                const grpc::ChannelArguments& args) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!token.empty()) interceptors.push_back(grpc_auth::TokenInterceptor(token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      target, grpc::InsecureChannelCredentials(), args, std::move(interceptors));
}

}  // namespace octo::testing
