#pragma once
// A SubscriptionBackend in front of another that answers Authenticate from
// an AuthCache when it can, and tells a ListCache about every change of a
// connection's webhooks before the change is answered (read-your-writes on
// this gateway; see list_cache.h). Every other call passes through.
//
// When a key's cache entry expires under load, every connection using it
// misses at once: lookups of the same key then share the one call in flight
// (if it began less than the cache's TTL ago, so an answer is never older
// than a cached one could be) instead of each asking the service.
//
// Example:
//   AuthCache auth({}); ListCache lists({});
//   CachingBackend backend(&grpc_backend, &auth, &lists, &guard_metrics);
//   ApiHandler handler(options_with(&lists), &backend);
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/auth_cache.h"
#include "gateway/list_cache.h"
#include "gateway/subscription_backend.h"
#include "services/common/metrics.h"

namespace octo::gateway {

class CachingBackend final : public SubscriptionBackend {
 public:
  // Everything must outlive the backend; `metrics` may be null.
  CachingBackend(SubscriptionBackend* inner, AuthCache* auth, ListCache* lists,
                 metrics::GatewayGuardMetrics* metrics)
      : inner_(inner), auth_(auth), lists_(lists), metrics_(metrics) {}

  // Unknown, malformed and revoked keys (UNAUTHENTICATED, INVALID_ARGUMENT,
  // NOT_FOUND) are remembered as unknown; other failures are not cached.
  void Authenticate(const octo::webhooks::v1::AuthenticateRequest& request, Deadline deadline,
                    Callback<octo::webhooks::v1::AuthenticateResponse> done) override;

  void CreateWebhook(const octo::webhooks::v1::CreateWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::CreateWebhookResponse> done) override;
  void UpdateWebhook(const octo::webhooks::v1::UpdateWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;
  void DeleteWebhook(const octo::webhooks::v1::DeleteWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;
  void RotateWebhookSecret(const octo::webhooks::v1::RotateWebhookSecretRequest& request,
                           Deadline deadline,
                           Callback<octo::webhooks::v1::RotateWebhookSecretResponse> done) override;
  void EnableWebhook(const octo::webhooks::v1::EnableWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;

  void GetWebhook(const octo::webhooks::v1::GetWebhookRequest& request, Deadline deadline,
                  Callback<octo::webhooks::v1::Webhook> done) override {
    inner_->GetWebhook(request, deadline, std::move(done));
  }
  void ListWebhooks(const octo::webhooks::v1::ListWebhooksRequest& request, Deadline deadline,
                    Callback<octo::webhooks::v1::ListWebhooksResponse> done) override {
    inner_->ListWebhooks(request, deadline, std::move(done));
  }
  void CheckHealth(const grpc::health::v1::HealthCheckRequest& request, Deadline deadline,
                   Callback<grpc::health::v1::HealthCheckResponse> done) override {
    inner_->CheckHealth(request, deadline, std::move(done));
  }
  void ListDeliveries(const octo::webhooks::v1::ListDeliveriesRequest& request, Deadline deadline,
                      Callback<octo::webhooks::v1::ListDeliveriesResponse> done) override {
    inner_->ListDeliveries(request, deadline, std::move(done));
  }
  void GetDelivery(const octo::webhooks::v1::GetDeliveryRequest& request, Deadline deadline,
                   Callback<octo::webhooks::v1::Delivery> done) override {
    inner_->GetDelivery(request, deadline, std::move(done));
  }
  void RedeliverDelivery(const octo::webhooks::v1::RedeliverDeliveryRequest& request,
                         Deadline deadline, Callback<octo::webhooks::v1::Delivery> done) override {
    inner_->RedeliverDelivery(request, deadline, std::move(done));
  }
  void ReplayDeliveries(const octo::webhooks::v1::ReplayDeliveriesRequest& request,
                        Deadline deadline,
                        Callback<octo::webhooks::v1::ReplayDeliveriesResponse> done) override {
    inner_->ReplayDeliveries(request, deadline, std::move(done));
  }
  void SendTestEvent(const octo::webhooks::v1::SendTestEventRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::SendTestEventResponse> done) override {
    inner_->SendTestEvent(request, deadline, std::move(done));
  }

 private:
  // Wraps `done` so the connection's cached list is dropped first, whatever
  // the outcome (a call that timed out may still have committed).
  template <typename Response>
  Callback<Response> InvalidatingFirst(const std::string& connection_id, Callback<Response> done);

  // An Authenticate call in flight and the callers waiting for it.
  struct Lookup {
    AuthCache::Clock::time_point started;
    std::vector<Callback<octo::webhooks::v1::AuthenticateResponse>> waiters;
  };
  void Finish(const std::string& key, const std::shared_ptr<Lookup>& lookup,
              const absl::StatusOr<octo::webhooks::v1::AuthenticateResponse>& result);

  SubscriptionBackend* const inner_;
  AuthCache* const auth_;
  std::mutex lookups_mu_;
  std::unordered_map<std::string, std::shared_ptr<Lookup>> lookups_;  // guarded by lookups_mu_
  ListCache* const lists_;
  metrics::GatewayGuardMetrics* const metrics_;
};

}  // namespace octo::gateway
