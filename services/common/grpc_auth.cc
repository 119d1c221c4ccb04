#include "services/common/grpc_auth.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpcpp/support/interceptor.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/crypto.h"
#include "services/common/log.h"
#include "services/common/log_throttle.h"
#include "services/common/metrics.h"

namespace octo::grpc_auth {
namespace {

constexpr std::string_view kBearer = "Bearer ";

// A grant: a whole service ("pkg.Service") or one of its methods
// ("pkg.Service/Method"), and the callers it admits.
struct Grant {
  std::string_view target;
  std::vector<std::string_view> callers;
};

// Who may call what. The gateway serves the REST API and the dashboard; a
// publisher only publishes; octo-admin provisions connections, API keys and
// operators (and may use reflection, e.g. grpcurl); octo-subscription stores
// events in octo-delivery and reads its delivery log. The gateway faces the
// internet, so of OperatorService it gets only what the dashboard calls
// (sign-in and the supplier's views), never operator administration
// (CreateOperator, ListOperators, DeleteOperator).
const std::vector<Grant>& AccessTable() {
  static const auto* table = new std::vector<Grant>{
      {"octo.webhooks.v1.SubscriptionService", {kGateway, kAdmin}},
      {"octo.webhooks.v1.AuthService", {kGateway}},
      {"octo.webhooks.v1.OperatorService", {kAdmin}},
      {"octo.webhooks.v1.OperatorService/Login", {kGateway}},
      {"octo.webhooks.v1.OperatorService/AuthenticateSession", {kGateway}},
      {"octo.webhooks.v1.OperatorService/Logout", {kGateway}},
      {"octo.webhooks.v1.OperatorService/ListSupplierConnections", {kGateway}},
      {"octo.webhooks.v1.OperatorService/ListSupplierWebhooks", {kGateway}},
      {"octo.webhooks.v1.OperatorService/GetSupplierWebhook", {kGateway}},
      {"octo.webhooks.v1.AdminService", {kAdmin}},
      {"octo.webhooks.v1.EventService", {kPublisher}},
      {"octo.webhooks.v1.DeliveryService", {kSubscription}},
      {"octo.webhooks.v1.DeliveryOperationsService", {kSubscription}},
      {"grpc.reflection.v1alpha.ServerReflection", {kAdmin}},
  };
  return *table;
}

absl::Status CheckToken(const std::string& what, std::string_view token) {
  if (token.size() < kMinTokenLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the token is shorter than ", kMinTokenLength, " characters"));
  }
  for (char c : token) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the token holds a blank or non-printable character"));
    }
  }
  return absl::OkStatus();
}

// The tokens of a token file, one a line (blank lines ignored), each
// checked; at least one.
// A token file must be a regular file (after symlinks: a Kubernetes Secret
// volume links `admin -> ..data/admin`) that other users can neither read
// nor write: a world-readable token is a leaked one.
absl::Status CheckTokenFile(const std::string& what, const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    const std::string message = absl::StrCat(what, ": cannot read ", path, ": ", std::strerror(err));
    return err == EACCES ? absl::PermissionDeniedError(message) : absl::NotFoundError(message);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", path, " is not a regular file (a token file is)"));
  }
  if ((st.st_mode & 0007) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s is open to every user (mode %04o): make it readable by its owner (and group) "
        "only, e.g. chmod 0600 (0440 in a Kubernetes Secret volume)",
        what, path, static_cast<unsigned>(st.st_mode & 07777)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ReadTokens(const std::string& what,
                                                    const std::string& path) {
  if (absl::Status s = CheckTokenFile(what, path); !s.ok()) return s;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string message = absl::StrCat(what, ": cannot read ", path, ": ", std::strerror(err));
    return err == EACCES ? absl::PermissionDeniedError(message) : absl::NotFoundError(message);
  }
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (absl::Status s = CheckToken(absl::StrCat(what, " (", path, ")"), line); !s.ok()) return s;
    tokens.push_back(std::move(line));
  }
  if (tokens.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", path, " is empty"));
  return tokens;
}

std::string_view ServiceOfMethod(std::string_view full_method) {
  // "/pkg.Service/Method" -> "pkg.Service"
  if (!full_method.starts_with("/")) return {};
  full_method.remove_prefix(1);
  const std::size_t slash = full_method.find('/');
  return slash == std::string_view::npos ? std::string_view() : full_method.substr(0, slash);
}

// What the metadata processor works with: the tokens, and where refusals are
// counted (may be null).
struct ProcessorState {
  CallerTokens tokens;
  metrics::GrpcAuthMetrics* metrics;
};

// A refusal's log line, at most one a second per status code and caller
// identity (a small set): a caller with a wrong token retries at its own
// pace, and each line would say the same.
void LogRefusal(std::string_view path, const std::string& caller, const absl::Status& verdict) {
  static log::Throttle throttle;
  const std::string code = absl::StatusCodeToString(verdict.code());
  const std::optional<std::uint64_t> suppressed = throttle.Admit(code + "/" + caller);
  if (!suppressed) return;
  log::Warn("grpc call refused", {{"method", path},
                                  {"caller", caller},
                                  {"code", code},
                                  {"suppressed", std::to_string(*suppressed)}});
}

std::string_view SliceView(const grpc_slice& slice) {
  return {reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)), GRPC_SLICE_LENGTH(slice)};
}

// grpc_auth_metadata_processor::process. Runs on a gRPC thread before the
// call reaches its handler; answers synchronously (no I/O).
void ProcessCallMetadata(void* state, grpc_auth_context* /*context*/, const grpc_metadata* md,
                         std::size_t num_md, grpc_process_auth_metadata_done_cb done,
                         void* user_data) {
  const auto* processor = static_cast<const ProcessorState*>(state);
  std::string_view path;
  std::string_view authorization;
  const grpc_metadata* authorization_md = nullptr;
  for (std::size_t i = 0; i < num_md; ++i) {
    const std::string_view key = SliceView(md[i].key);
    if (key == ":path") path = SliceView(md[i].value);
    if (key == "authorization") {
      authorization = SliceView(md[i].value);
      authorization_md = &md[i];
    }
  }
  std::string caller;
  const absl::Status verdict = Authorize(processor->tokens, path, authorization, &caller);
  if (verdict.ok()) {
    // Consumed: the handlers never see the token.
    done(user_data, authorization_md, authorization_md == nullptr ? 0 : 1, nullptr, 0,
         GRPC_STATUS_OK, nullptr);
    return;
  }
  // A known identity or "unknown": the label's values stay a small set.
  if (caller.empty()) caller = "unknown";
  if (processor->metrics != nullptr) {
    processor->metrics->Refused(absl::StatusCodeToString(verdict.code()), caller);
  }
  LogRefusal(path, caller, verdict);
  const std::string message(verdict.message());
  done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(verdict.code()),
       message.c_str());
}

void DestroyProcessorState(void* state) { delete static_cast<ProcessorState*>(state); }

// Plaintext HTTP/2 like grpc::InsecureServerCredentials(), with the
// metadata processor that the C++ insecure credentials cannot carry.
class AuthenticatingInsecureCredentials final : public grpc::ServerCredentials {
 public:
  AuthenticatingInsecureCredentials(CallerTokens tokens, metrics::GrpcAuthMetrics* metrics)
      : tokens_(std::move(tokens)), metrics_(metrics) {}

  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/) override {
    // Ours is fixed; a second processor would bypass the caller checks.
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    grpc_server_credentials* creds = grpc_insecure_server_credentials_create();
    grpc_server_credentials_set_auth_metadata_processor(
        creds, {ProcessCallMetadata, DestroyProcessorState, new ProcessorState{tokens_, metrics_}});
    const int port = grpc_server_add_http2_port(server, addr.c_str(), creds);
    grpc_server_credentials_release(creds);
    return port;
  }

  CallerTokens tokens_;
  metrics::GrpcAuthMetrics* metrics_;
};

class TokenInterceptorImpl final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptorImpl(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class TokenInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token)
      : header_(std::string(kBearer) + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new TokenInterceptorImpl(&header_);
  }

 private:
  const std::string header_;
};

}  // namespace

const std::vector<std::string_view>& KnownCallers() {
  static const auto* callers =
      new std::vector<std::string_view>{kGateway, kAdmin, kPublisher, kSubscription};
  return *callers;
}

std::vector<std::string_view> GrantsOf(std::string_view caller) {
  std::vector<std::string_view> grants;
  for (const Grant& grant : AccessTable()) {
    if (std::find(grant.callers.begin(), grant.callers.end(), caller) != grant.callers.end()) {
      grants.push_back(grant.target);
    }
  }
  return grants;
}

bool MayCall(std::string_view caller, std::string_view full_method) {
  const std::string_view service = ServiceOfMethod(full_method);
  if (service.empty()) return false;
  const std::string_view method = full_method.substr(1);  // "pkg.Service/Method"
  for (std::string_view grant : GrantsOf(caller)) {
    if (grant == service || grant == method) return true;
  }
  return false;
}

bool IsOpenService(std::string_view service) { return service == "grpc.health.v1.Health"; }

absl::StatusOr<CallerTokens> CallerTokens::FromPairs(
    std::vector<std::pair<std::string, std::string>> callers) {
  if (callers.empty()) return absl::InvalidArgumentError("no caller token given");
  CallerTokens tokens;
  for (auto& [identity, token] : callers) {
    const auto& known = KnownCallers();
    if (std::find(known.begin(), known.end(), identity) == known.end()) {
      std::string names;
      for (std::string_view k : known) names += (names.empty() ? "" : ", ") + std::string(k);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown caller \"", identity, "\"; known: ", names));
    }
    if (absl::Status s = CheckToken(absl::StrCat("caller ", identity), token); !s.ok()) return s;
    std::string digest = crypto::Sha256(token);
    // One identity may hold several tokens (a rotation in progress); two
    // identities never share one.
    for (const Entry& e : tokens.entries_) {
      if (e.token_digest == digest) {
        return absl::InvalidArgumentError(
            absl::StrCat("callers ", e.identity, " and ", identity, " share one token"));
      }
    }
    tokens.entries_.push_back({identity, std::move(digest)});
  }
  return tokens;
}

absl::StatusOr<CallerTokens> CallerTokens::LoadDir(const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        "--grpc_callers_dir (or OCTO_GRPC_CALLERS_DIR) is required: the directory of the "
        "internal callers' tokens (docs/operations.md, \"Internal credentials\")");
  }
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("--grpc_callers_dir: cannot open ", dir, ": ", std::strerror(errno)));
  }
  std::vector<std::string> names;
  while (const dirent* entry = readdir(handle)) {
    if (entry->d_name[0] != '.') names.emplace_back(entry->d_name);
  }
  closedir(handle);
  std::sort(names.begin(), names.end());
  std::vector<std::pair<std::string, std::string>> callers;
  for (const std::string& name : names) {
    absl::StatusOr<std::vector<std::string>> tokens =
        ReadTokens("--grpc_callers_dir", absl::StrCat(dir, "/", name));
    if (!tokens.ok()) return tokens.status();
    for (std::string& token : *tokens) callers.emplace_back(name, std::move(token));
  }
  absl::StatusOr<CallerTokens> tokens = FromPairs(std::move(callers));
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--grpc_callers_dir ", dir, ": ", tokens.status().message()));
  }
  return tokens;
}

std::optional<std::string> CallerTokens::Find(std::string_view token) const {
  // Digests have one length, so every comparison takes the same time, and
  // the loop never stops early.
  const std::string digest = crypto::Sha256(token);
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {
    if (crypto::ConstantTimeEquals(e.token_digest, digest)) found = &e;
  }
  if (found == nullptr) return std::nullopt;
  return found->identity;
}

std::vector<std::string> CallerTokens::Identities() const {
  std::vector<std::string> identities;
  for (const Entry& e : entries_) identities.push_back(e.identity);
  return identities;
}

absl::Status Authorize(const CallerTokens& tokens, std::string_view full_method,
                       std::string_view authorization, std::string* caller) {
  const std::string_view service = ServiceOfMethod(full_method);
  if (IsOpenService(service)) return absl::OkStatus();
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(kRefusalPrefix, "this service needs a caller token (authorization: Bearer)"));
  }
  if (!authorization.starts_with(kBearer)) {
    return absl::UnauthenticatedError(
        absl::StrCat(kRefusalPrefix, "the authorization metadata is not a Bearer token"));
  }
  const std::optional<std::string> identity = tokens.Find(authorization.substr(kBearer.size()));
  if (!identity) {
    return absl::UnauthenticatedError(absl::StrCat(kRefusalPrefix, "unknown caller token"));
  }
  if (caller != nullptr) *caller = *identity;
  if (!MayCall(*identity, full_method)) {
    return absl::PermissionDeniedError(absl::StrCat(
        kRefusalPrefix, "caller ", *identity, " may not call ",
        service.empty() ? std::string("this method") : std::string(full_method.substr(1))));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(CallerTokens tokens,
                                                           metrics::GrpcAuthMetrics* metrics) {
  return std::make_shared<AuthenticatingInsecureCredentials>(std::move(tokens), metrics);
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& what, const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is required: the file holding this process's caller token"));
  }
  absl::StatusOr<std::vector<std::string>> tokens = ReadTokens(what, path);
  if (!tokens.ok()) return tokens.status();
  return std::move(tokens->back());  // the newest, during a rotation
}

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> TokenInterceptor(
    std::string token) {
  return std::make_unique<TokenInterceptorFactory>(std::move(token));
}

}  // namespace octo::grpc_auth
