#include "tests/gateway/fake_subscription_backend.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/validation.h"

namespace octo::gateway::testing {

namespace v1 = octo::webhooks::v1;
namespace health = grpc::health::v1;

namespace {

void MaskHeaderValues(v1::Webhook& webhook) {
  for (auto& [name, value] : *webhook.mutable_headers()) value = std::string(kMaskedValue);
}

}  // namespace

void FakeSubscriptionBackend::AddKey(const std::string& api_key, const std::string& connection_id) {
  std::lock_guard lock(mu_);
  keys_[api_key] = connection_id;
}

void FakeSubscriptionBackend::FailNext(const std::string& method, absl::Status status) {
  std::lock_guard lock(mu_);
  failures_[method] = std::move(status);
}

void FakeSubscriptionBackend::SetHealth(const std::string& service,
                                        health::HealthCheckResponse::ServingStatus status) {
  std::lock_guard lock(mu_);
  health_[service] = status;
}

void FakeSubscriptionBackend::SetPageSize(int page_size) {
  std::lock_guard lock(mu_);
  page_size_ = page_size;
}

std::optional<v1::CreateWebhookRequest> FakeSubscriptionBackend::last_create() const {
  std::lock_guard lock(mu_);
  return last_create_;
}

std::optional<v1::UpdateWebhookRequest> FakeSubscriptionBackend::last_update() const {
  std::lock_guard lock(mu_);
  return last_update_;
}

int FakeSubscriptionBackend::calls(const std::string& method) const {
  std::lock_guard lock(mu_);
  const auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

SubscriptionBackend::Deadline FakeSubscriptionBackend::last_deadline() const {
  std::lock_guard lock(mu_);
  return last_deadline_;
}

std::optional<absl::Status> FakeSubscriptionBackend::Begin(const std::string& method,
                                                           Deadline deadline) {
  ++calls_[method];
  last_deadline_ = deadline;
  const auto it = failures_.find(method);
  if (it == failures_.end()) return std::nullopt;
  absl::Status status = it->second;
  failures_.erase(it);
  return status;
}

v1::Webhook* FakeSubscriptionBackend::Find(const std::string& connection_id,
                                           const std::string& id) {
  for (v1::Webhook& webhook : webhooks_) {
    if (webhook.id() == id && webhook.connection_id() == connection_id) return &webhook;
  }
  return nullptr;
}

void FakeSubscriptionBackend::Authenticate(const v1::AuthenticateRequest& request,
                                           Deadline deadline,
                                           Callback<v1::AuthenticateResponse> done) {
  absl::StatusOr<v1::AuthenticateResponse> result;
  {
    std::lock_guard lock(mu_);
    if (auto failure = Begin("Authenticate", deadline)) {
      result = *failure;
    } else if (const auto it = keys_.find(request.api_key()); it == keys_.end()) {
      result = absl::UnauthenticatedError("unknown API key");
    } else {
      v1::AuthenticateResponse response;
      response.set_api_key_id(absl::StrCat("key-", it->first.size()));
      response.set_connection_id(it->second);
      response.set_supplier_id("supplier-1");
      result = response;
    }
  }
  done(std::move(result));
}

void FakeSubscriptionBackend::CreateWebhook(const v1::CreateWebhookRequest& request,
                                            Deadline deadline,
                                            Callback<v1::CreateWebhookResponse> done) {
  absl::StatusOr<v1::CreateWebhookResponse> result;
  {
    std::lock_guard lock(mu_);
    last_create_ = request;
    if (auto failure = Begin("CreateWebhook", deadline)) {
      result = *failure;
    } else if (absl::Status valid = ValidateWebhookEvent(request.event()); !valid.ok()) {
      result = valid;
    } else {
      v1::Webhook webhook;
      webhook.set_id(absl::StrFormat("00000000-0000-4000-8000-%012d", next_id_++));
      webhook.set_connection_id(request.connection_id());
      webhook.set_event(request.event());
      webhook.set_url(MaskUrlCredentials(request.url()));
      webhook.set_retry_on_error(request.has_retry_on_error() ? request.retry_on_error() : true);
      webhook.set_use_contact_language(
          request.has_use_contact_language() ? request.use_contact_language() : true);
      *webhook.mutable_headers() = request.headers();
      MaskHeaderValues(webhook);
      *webhook.mutable_capabilities() = request.capabilities();
      webhook.set_status(v1::WEBHOOK_STATUS_ENABLED);
      webhook.mutable_create_time()->set_seconds(1795000000);
      webhook.mutable_update_time()->set_seconds(1795000000);
      webhooks_.push_back(webhook);
      v1::CreateWebhookResponse response;
      *response.mutable_webhook() = webhook;
      response.set_secret("whsec_dGVzdA==");
      result = response;
    }
  }
  done(std::move(result));
}

void FakeSubscriptionBackend::GetWebhook(const v1::GetWebhookRequest& request, Deadline deadline,
                                         Callback<v1::Webhook> done) {
  absl::StatusOr<v1::Webhook> result;
  {
    std::lock_guard lock(mu_);
    if (auto failure = Begin("GetWebhook", deadline)) {
      result = *failure;
    } else if (v1::Webhook* webhook = Find(request.connection_id(), request.webhook_id())) {
      result = *webhook;
    } else {
      result = absl::NotFoundError("webhook not found");
    }
  }
  done(std::move(result));
}

void FakeSubscriptionBackend::ListWebhooks(const v1::ListWebhooksRequest& request,
                                           Deadline deadline,
                                           Callback<v1::ListWebhooksResponse> done) {
  absl::StatusOr<v1::ListWebhooksResponse> result;
  {
    std::lock_guard lock(mu_);
    if (auto failure = Begin("ListWebhooks", deadline)) {
      result = *failure;
    } else {
      std::size_t start = 0;
      if (!request.page_token().empty() && !absl::SimpleAtoi(request.page_token(), &start)) {
        result = absl::InvalidArgumentError("page_token: invalid");
      } else {
        v1::ListWebhooksResponse response;
        std::size_t index = 0;
        for (const v1::Webhook& webhook : webhooks_) {
          if (webhook.connection_id() != request.connection_id()) continue;
          if (index++ < start) continue;
          if (response.webhooks_size() == page_size_) {
            response.set_next_page_token(absl::StrCat(index - 1));
            break;
          }
          *response.add_webhooks() = webhook;
        }
        result = response;
      }
    }
  }
  done(std::move(result));
}

void FakeSubscriptionBackend::UpdateWebhook(const v1::UpdateWebhookRequest& request,
                                            Deadline deadline, Callback<v1::Webhook> done) {
  absl::StatusOr<v1::Webhook> result;
  {
    std::lock_guard lock(mu_);
    last_update_ = request;
    if (auto failure = Begin("UpdateWebhook", deadline)) {
      result = *failure;
    } else if (v1::Webhook* webhook = Find(request.connection_id(), request.webhook_id())) {
      if (request.has_event()) webhook->set_event(request.event());
      if (request.has_url()) webhook->set_url(MaskUrlCredentials(request.url()));
      if (request.has_retry_on_error()) webhook->set_retry_on_error(request.retry_on_error());
      if (request.has_use_contact_language())
        webhook->set_use_contact_language(request.use_contact_language());
      if (request.has_headers()) {
        *webhook->mutable_headers() = request.headers().values();
        MaskHeaderValues(*webhook);
      }
      webhook->mutable_update_time()->set_seconds(1795000100);
      result = *webhook;
    } else {
      result = absl::NotFoundError("webhook not found");
    }
  }
  done(std::move(result));
}

void FakeSubscriptionBackend::RotateWebhookSecret(const v1::RotateWebhookSecretRequest& request,
                                                  Deadline deadline,
                                                  Callback<v1::RotateWebhookSecretResponse> done) {
  absl::StatusOr<v1::RotateWebhookSecretResponse> result;
  {
    std::lock_guard lock(mu_);
    if (auto failure = Begin("RotateWebhookSecret", deadline)) {
      result = *failure;
    } else if (v1::Webhook* webhook = Find(request.connection_id(), request.webhook_id())) {
      v1::RotateWebhookSecretResponse response;
      *response.mutable_webhook() = *webhook;
      response.set_secret("whsec_rotated");
      result = std::move(response);
    } else {
      result = absl::NotFoundError("webhook not found");
    }
  }
  done(std::move(result));
}

void FakeSubscriptionBackend::EnableWebhook(const v1::EnableWebhookRequest& request,
                                            Deadline deadline, Callback<v1::Webhook> done) {
  absl::StatusOr<v1::Webhook> result;
  {
    std::lock_guard lock(mu_);
    if (auto failure = Begin("EnableWebhook", deadline)) {
      result = *failure;
    } else if (v1::Webhook* webhook = Find(request.connection_id(), request.webhook_id())) {
      webhook->set_status(v1::WEBHOOK_STATUS_ENABLED);
      webhook->clear_disabled_reason();
      result = *webhook;
    } else {
      result = absl::NotFoundError("webhook not found");
    }
  }
  done(std::move(result));
}

void FakeSubscriptionBackend::DeleteWebhook(const v1::DeleteWebhookRequest& request,
                                            Deadline deadline, Callback<v1::Webhook> done) {
  absl::StatusOr<v1::Webhook> result;
  {
    std::lock_guard lock(mu_);
    if (auto failure = Begin("DeleteWebhook", deadline)) {
      result = *failure;
    } else if (v1::Webhook* webhook = Find(request.connection_id(), request.webhook_id())) {
      result = *webhook;
      webhooks_.erase(webhooks_.begin() + (webhook - webhooks_.data()));
    } else {
      result = absl::NotFoundError("webhook not found");
    }
  }
  done(std::move(result));
}

void FakeSubscriptionBackend::CheckHealth(const health::HealthCheckRequest& request,
                                          Deadline deadline,
                                          Callback<health::HealthCheckResponse> done) {
  absl::StatusOr<health::HealthCheckResponse> result;
  {
    std::lock_guard lock(mu_);
    if (auto failure = Begin("CheckHealth", deadline)) {
      result = *failure;
    } else if (const auto it = health_.find(request.service()); it == health_.end()) {
      result = absl::NotFoundError("unknown service");
    } else {
      health::HealthCheckResponse response;
      response.set_status(it->second);
      result = response;
    }
  }
  done(std::move(result));
}

}  // namespace octo::gateway::testing
