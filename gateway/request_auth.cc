#include "gateway/request_auth.h"

#include <iterator>
#include <utility>

#include <boost/beast/http/field.hpp>

#include "gateway/request_parsing.h"
#include "gateway/responses.h"

namespace octo::gateway {

namespace http = boost::beast::http;
namespace v1 = octo::webhooks::v1;

namespace {

AuthOutcome Refused(OctoError error) {
  AuthOutcome outcome;
  outcome.unauthorized = std::move(error);
  return outcome;
}

}  // namespace

void AuthenticateRequest(SubscriptionBackend* backend, SubscriptionBackend::Deadline deadline,
                         const HttpRequest& request, KeyRateCheck check,
                         std::function<void(AuthOutcome)> done) {
  const auto [first, end] = request.equal_range(http::field::authorization);
  if (first == end) return done(Refused(Unauthorized(std::string(kMissingKeyMessage))));
  if (std::next(first) != end)
    return done(Refused(Unauthorized("Send exactly one Authorization header")));
  absl::StatusOr<std::string> key = ParseBearerKey(first->value());
  if (!key.ok()) return done(Refused(Unauthorized(std::string(key.status().message()))));

  v1::AuthenticateRequest auth;
  auth.set_api_key(*key);
  backend->Authenticate(
      auth, deadline,
      [key = *std::move(key), check, version = request.version(),
       done = std::move(done)](absl::StatusOr<v1::AuthenticateResponse> r) {
        if (!r.ok()) {
          // A key the service finds malformed or unknown is as unauthenticated
          // as a wrong one; the id of the route has nothing to do with it.
          const absl::StatusCode code = r.status().code();
          if (code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kNotFound)
            return done(Refused(ErrorFromStatus(absl::UnauthenticatedError(""), "")));
          AuthOutcome outcome;
          outcome.backend_status = r.status();
          return done(std::move(outcome));
        }
        AuthOutcome outcome;
        if (check.key_limiter != nullptr) {
          if (const int wait = check.key_limiter->Acquire(key, RateLimiter::Clock::now());
              wait > 0) {
            if (check.guard_metrics != nullptr) check.guard_metrics->Rejected("key_rate");
            outcome.too_many =
                TooManyRequestsResponse("Too many requests with this API key", wait, version);
            return done(std::move(outcome));
          }
        }
        outcome.connection_id = r->connection_id();
        done(std::move(outcome));
      });
}

}  // namespace octo::gateway
