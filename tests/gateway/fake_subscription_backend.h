#pragma once
// An in-memory SubscriptionBackend for gateway tests: API keys map to
// connections, webhooks are scoped by connection (another connection's id is
// NOT_FOUND, as in the real service), lists are paged, and any call can be
// scripted to fail. Calls complete inline, on the caller's thread.
// Thread-safe.
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gateway/subscription_backend.h"

namespace octo::gateway::testing {

class FakeSubscriptionBackend : public SubscriptionBackend {
 public:
  // Registers `api_key` as a key of `connection_id`.
  void AddKey(const std::string& api_key, const std::string& connection_id);
  // Makes the next call of `method` ("Authenticate", "CreateWebhook", ...,
  // "CheckHealth") fail with `status`.
  void FailNext(const std::string& method, absl::Status status);
  // Health of a grpc.health.v1 service name; unset names are SERVICE_UNKNOWN.
  void SetHealth(const std::string& service,
                 grpc::health::v1::HealthCheckResponse::ServingStatus status);
  // Page size ListWebhooks uses regardless of the request (default 2).
  void SetPageSize(int page_size);
  // Disables webhook `id` of any connection, as octo-delivery would.
  void Disable(const std::string& id, const std::string& reason);

  // What the gateway sent last, per method.
  std::optional<octo::webhooks::v1::CreateWebhookRequest> last_create() const;
  std::optional<octo::webhooks::v1::UpdateWebhookRequest> last_update() const;
  int calls(const std::string& method) const;
  Deadline last_deadline() const;

  void Authenticate(const octo::webhooks::v1::AuthenticateRequest& request, Deadline deadline,
                    Callback<octo::webhooks::v1::AuthenticateResponse> done) override;
  void CreateWebhook(const octo::webhooks::v1::CreateWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::CreateWebhookResponse> done) override;
  void GetWebhook(const octo::webhooks::v1::GetWebhookRequest& request, Deadline deadline,
                  Callback<octo::webhooks::v1::Webhook> done) override;
  void ListWebhooks(const octo::webhooks::v1::ListWebhooksRequest& request, Deadline deadline,
                    Callback<octo::webhooks::v1::ListWebhooksResponse> done) override;
  void UpdateWebhook(const octo::webhooks::v1::UpdateWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;
  void DeleteWebhook(const octo::webhooks::v1::DeleteWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;
  void RotateWebhookSecret(const octo::webhooks::v1::RotateWebhookSecretRequest& request,
                           Deadline deadline,
                           Callback<octo::webhooks::v1::RotateWebhookSecretResponse> done) override;
  void EnableWebhook(const octo::webhooks::v1::EnableWebhookRequest& request, Deadline deadline,
                     Callback<octo::webhooks::v1::Webhook> done) override;
  void CheckHealth(const grpc::health::v1::HealthCheckRequest& request, Deadline deadline,
                   Callback<grpc::health::v1::HealthCheckResponse> done) override;

 private:
  // Counts the call, records the deadline; returns the scripted failure.
  std::optional<absl::Status> Begin(const std::string& method, Deadline deadline);
  // One call: the scripted failure if any, else `answer()` (under the lock);
  // then `done`, outside it.
  template <typename Response, typename Answer>
  void Serve(const std::string& method, Deadline deadline, const Callback<Response>& done,
             Answer answer);
  // `change(webhook)` on the request's webhook of its connection, else
  // NOT_FOUND (another connection's included, as in the real service).
  template <typename Request, typename Change>
  auto OnWebhook(const Request& request, Change change)
      -> absl::StatusOr<decltype(change(std::declval<octo::webhooks::v1::Webhook&>()))>;

  mutable std::mutex mu_;
  std::map<std::string, std::string> keys_;
  std::map<std::string, absl::Status> failures_;
  std::map<std::string, grpc::health::v1::HealthCheckResponse::ServingStatus> health_;
  std::map<std::string, int> calls_;
  std::vector<octo::webhooks::v1::Webhook> webhooks_;  // creation order
  std::optional<octo::webhooks::v1::CreateWebhookRequest> last_create_;
  std::optional<octo::webhooks::v1::UpdateWebhookRequest> last_update_;
  Deadline last_deadline_{};
  int page_size_ = 2;
  int next_id_ = 1;
};

}  // namespace octo::gateway::testing
