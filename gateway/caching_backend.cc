#include "gateway/caching_backend.h"

#include <string>
#include <utility>

namespace octo::gateway {

namespace v1 = octo::webhooks::v1;

void CachingBackend::Authenticate(const v1::AuthenticateRequest& request, Deadline deadline,
                                  Callback<v1::AuthenticateResponse> done) {
  const AuthCache::Clock::time_point started = AuthCache::Clock::now();
  AuthCache::Result cached = auth_->Find(request.api_key(), started);
  if (cached.outcome == AuthCache::Outcome::kKnown) {
    if (metrics_ != nullptr) metrics_->AuthLookup("hit");
    v1::AuthenticateResponse response;
    response.set_connection_id(std::move(cached.connection_id));
    return done(std::move(response));
  }
  if (cached.outcome == AuthCache::Outcome::kUnknown) {
    if (metrics_ != nullptr) metrics_->AuthLookup("negative_hit");
    return done(absl::UnauthenticatedError("unknown API key"));
  }
  if (metrics_ != nullptr) metrics_->AuthLookup("miss");
  auto lookup = std::make_shared<Lookup>();
  lookup->started = started;
  {
    std::lock_guard lock(lookups_mu_);
    auto it = lookups_.find(request.api_key());
    if (it != lookups_.end() && started - it->second->started < auth_->ttl()) {
      it->second->waiters.push_back(std::move(done));
      return;
    }
    lookup->waiters.push_back(std::move(done));
    lookups_[request.api_key()] = lookup;  // replaces one too old to join
  }
  inner_->Authenticate(request, deadline,
                       [this, key = request.api_key(),
                        lookup](absl::StatusOr<v1::AuthenticateResponse> r) {
                         if (r.ok()) {
                           auth_->StoreKnown(key, r->connection_id(), lookup->started);
                         } else if (absl::IsUnauthenticated(r.status()) ||
                                    absl::IsInvalidArgument(r.status()) ||
                                    absl::IsNotFound(r.status())) {
                           auth_->StoreUnknown(key, lookup->started);
                         }
                         Finish(key, lookup, r);
                       });
}

void CachingBackend::Finish(const std::string& key, const std::shared_ptr<Lookup>& lookup,
                            const absl::StatusOr<v1::AuthenticateResponse>& result) {
  std::vector<Callback<v1::AuthenticateResponse>> waiters;
  {
    std::lock_guard lock(lookups_mu_);
    auto it = lookups_.find(key);
    if (it != lookups_.end() && it->second == lookup) lookups_.erase(it);
    waiters = std::move(lookup->waiters);
  }
  for (auto& waiter : waiters) waiter(result);
}

template <typename Response>
SubscriptionBackend::Callback<Response> CachingBackend::InvalidatingFirst(
    const std::string& connection_id, Callback<Response> done) {
  return [this, connection_id, done = std::move(done)](absl::StatusOr<Response> r) mutable {
    lists_->Invalidate(connection_id);
    done(std::move(r));
  };
}

void CachingBackend::CreateWebhook(const v1::CreateWebhookRequest& request, Deadline deadline,
                                   Callback<v1::CreateWebhookResponse> done) {
  inner_->CreateWebhook(request, deadline,
                        InvalidatingFirst(request.connection_id(), std::move(done)));
}

void CachingBackend::UpdateWebhook(const v1::UpdateWebhookRequest& request, Deadline deadline,
                                   Callback<v1::Webhook> done) {
  inner_->UpdateWebhook(request, deadline,
                        InvalidatingFirst(request.connection_id(), std::move(done)));
}

void CachingBackend::DeleteWebhook(const v1::DeleteWebhookRequest& request, Deadline deadline,
                                   Callback<v1::Webhook> done) {
  inner_->DeleteWebhook(request, deadline,
                        InvalidatingFirst(request.connection_id(), std::move(done)));
}

void CachingBackend::RotateWebhookSecret(const v1::RotateWebhookSecretRequest& request,
                                         Deadline deadline,
                                         Callback<v1::RotateWebhookSecretResponse> done) {
  inner_->RotateWebhookSecret(request, deadline,
                              InvalidatingFirst(request.connection_id(), std::move(done)));
}

void CachingBackend::EnableWebhook(const v1::EnableWebhookRequest& request, Deadline deadline,
                                   Callback<v1::Webhook> done) {
  inner_->EnableWebhook(request, deadline,
                        InvalidatingFirst(request.connection_id(), std::move(done)));
}

}  // namespace octo::gateway
