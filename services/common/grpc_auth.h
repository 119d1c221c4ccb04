#pragma once
// Internal authentication of the gRPC services (docs/decisions.md, "Internal
// gRPC callers carry a per-caller token"; docs/operations.md, "Internal
// credentials").
//
// Every internal caller (the gateway, octo-admin, a publisher, octo-subscription
// calling octo-delivery) sends its own token as `authorization: Bearer <token>`.
// A server knows the callers' tokens from a directory holding one file per
// caller, named after its identity. Before a call reaches a handler, the
// server finds the caller by its token (constant-time comparisons) and checks
// that its identity may call the service or method:
//   no token, or a token of no known caller  -> UNAUTHENTICATED
//   a known caller outside its services      -> PERMISSION_DENIED
// The gRPC health service stays open: the kubelet's gRPC probe sends no token.
//
// Server:
//   absl::StatusOr<CallerTokens> callers = CallerTokens::LoadDir(dir);
//   builder.AddListeningPort(listen, grpc_auth::ServerCredentials(*callers), &port);
// Client:
//   absl::StatusOr<std::string> token = grpc_auth::ReadTokenFile(path);
//   interceptors.push_back(grpc_auth::TokenInterceptor(*token));
//   CreateCustomChannelWithInterceptors(target, InsecureChannelCredentials(), args, ...);
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace octo::metrics {
class GrpcAuthMetrics;
}  // namespace octo::metrics

namespace octo::grpc_auth {

// The identities of the callers the product knows; a caller file in the
// callers directory is named after one of them.
inline constexpr std::string_view kGateway = "gateway";
inline constexpr std::string_view kAdmin = "admin";
inline constexpr std::string_view kPublisher = "publisher";
inline constexpr std::string_view kSubscription = "subscription";

// Every identity above, in a stable order.
const std::vector<std::string_view>& KnownCallers();

// Tokens shorter than this are refused: a token is a random secret, not a
// password (scripts/run.sh and the tests make 64 hex digits).
inline constexpr std::size_t kMinTokenLength = 32;

// What `caller` may call: whole services ("octo.webhooks.v1.AdminService")
// and single methods ("octo.webhooks.v1.OperatorService/Login"). Empty for
// an unknown caller.
std::vector<std::string_view> GrantsOf(std::string_view caller);

// Whether `caller` may call `full_method` ("/pkg.Service/Method"): its
// service or that very method is granted.
bool MayCall(std::string_view caller, std::string_view full_method);

// Services every caller, authenticated or not, may call.
bool IsOpenService(std::string_view service);

// The tokens of the callers a server accepts.
class CallerTokens {
 public:
  // One file per caller in `dir`, named after its identity (KnownCallers()),
  // holding its token, or several, one a line, all accepted (a rotation:
  // the old and the new token). Names starting with a
  // dot are skipped (Kubernetes' Secret volumes keep their bookkeeping
  // there). INVALID_ARGUMENT for an empty `dir`, a file of an unknown name,
  // a token too short or with blanks, two callers with one token, or no
  // caller at all, a file that is not a regular one (symlinks followed, as
  // in a Secret volume) or that every user may read or write (mode & 0007);
  // NOT_FOUND / PERMISSION_DENIED when unreadable. Messages name files,
  // never tokens.
  static absl::StatusOr<CallerTokens> LoadDir(const std::string& dir);
  // The same checks on (identity, token) pairs (tests, LoadDir); an
  // identity may appear more than once.
  static absl::StatusOr<CallerTokens> FromPairs(
      std::vector<std::pair<std::string, std::string>> callers);

  // The identity whose token equals `token`; every known token is compared
  // in constant time, so the answer's timing says nothing about the tokens.
  std::optional<std::string> Find(std::string_view token) const;

  // Identities, for the start-up log line (never the tokens).
  std::vector<std::string> Identities() const;

 private:
  struct Entry {
    std::string identity;
    std::string token_digest;  // SHA-256 of the token: fixed length
  };
  std::vector<Entry> entries_;
};

// The verdict on one call: OK, UNAUTHENTICATED or PERMISSION_DENIED.
// `full_method` is the ":path" ("/octo.webhooks.v1.AdminService/CreateApiKey"),
// `authorization` the header's value (empty when absent). `caller` receives
// the identity when the token is known.
absl::Status Authorize(const CallerTokens& tokens, std::string_view full_method,
                       std::string_view authorization, std::string* caller = nullptr);

// Every refusal of Authorize() (and so of a server's credentials) starts
// with this: a caller tells "the server refused my caller token" from a
// partner's bad API key that an upstream answers with the same code.
inline constexpr char kRefusalPrefix[] = "internal caller refused: ";

// True for UNAUTHENTICATED / PERMISSION_DENIED carrying kRefusalPrefix.
bool IsCallerRefusal(const absl::Status& status);
bool IsCallerRefusal(const grpc::Status& status);

// A finished internal call's status, for a process that calls `upstream`
// ("octo-subscription") on behalf of someone else: a refusal of this
// process's own token becomes INTERNAL (a misconfiguration of ours, never the
// partner's "401 bad key"; callers must not cache it) and logs an error, at
// most once a second per upstream and code; anything else is FromGrpcStatus().
absl::Status FromInternalCall(const grpc::Status& status, std::string_view upstream);

// Insecure (plaintext) server credentials that run Authorize() on every
// call before it reaches a handler. A rejected call never reaches the
// service, is counted in `metrics` (octo_grpc_calls_refused_total; may be
// null) and logged with the caller's identity ("unknown" without a known
// token) and the method, never its token; at most one log line a second per
// status code and identity, the next one saying how many were left out.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(CallerTokens tokens,
                                                           metrics::GrpcAuthMetrics* metrics = nullptr);

// Reads a caller's own token file, the same format as a caller file of
// LoadDir; with several lines the last one is sent (during a rotation it
// becomes the new token only once every server accepts it: docs/operations.md,
// "Rotation"). `what` names the flag in
// messages ("--delivery_token_file").
absl::StatusOr<std::string> ReadTokenFile(const std::string& what, const std::string& path);

// A client interceptor adding `authorization: Bearer <token>` to every call.
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> TokenInterceptor(
    std::string token);

}  // namespace octo::grpc_auth
