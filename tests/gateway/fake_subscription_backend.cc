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

void FakeSubscriptionBackend::Disable(const std::string& id, const std::string& reason) {
  std::lock_guard lock(mu_);
  for (v1::Webhook& webhook : webhooks_) {
    if (webhook.id() != id) continue;
    webhook.set_status(v1::WEBHOOK_STATUS_DISABLED);
    webhook.set_disabled_reason(reason);
  }
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

template <typename Response, typename Answer>
void FakeSubscriptionBackend::Serve(const std::string& method, Deadline deadline,
                                    const Callback<Response>& done, Answer answer) {
  absl::StatusOr<Response> result;
  {
    std::lock_guard lock(mu_);
    if (std::optional<absl::Status> failure = Begin(method, deadline)) {
      result = *std::move(failure);
    } else {
      result = answer();
    }
  }
  done(std::move(result));
}

template <typename Request, typename Change>
auto FakeSubscriptionBackend::OnWebhook(const Request& request, Change change)
    -> absl::StatusOr<decltype(change(std::declval<v1::Webhook&>()))> {
  for (v1::Webhook& webhook : webhooks_) {
    if (webhook.id() == request.webhook_id() && webhook.connection_id() == request.connection_id())
      return change(webhook);
  }
  return absl::NotFoundError("webhook not found");
}

void FakeSubscriptionBackend::Authenticate(const v1::AuthenticateRequest& request,
                                           Deadline deadline,
                                           Callback<v1::AuthenticateResponse> done) {
  Serve(
      "Authenticate", deadline, done, [&]() -> absl::StatusOr<v1::AuthenticateResponse> {
        const auto it = keys_.find(request.api_key());
        if (it == keys_.end()) return absl::UnauthenticatedError("unknown API key");
        v1::AuthenticateResponse response;
        response.set_api_key_id(absl::StrCat("key-", it->first.size()));
        response.set_connection_id(it->second);
        response.set_supplier_id("supplier-1");
        return response;
      });
}

void FakeSubscriptionBackend::CreateWebhook(const v1::CreateWebhookRequest& request,
                                            Deadline deadline,
                                            Callback<v1::CreateWebhookResponse> done) {
  {
    std::lock_guard lock(mu_);
    last_create_ = request;
  }
  Serve("CreateWebhook", deadline, done, [&]() -> absl::StatusOr<v1::CreateWebhookResponse> {
    // A notification subscription names its types; the first is its event.
    const std::string& event = request.event().empty() && request.event_types_size() > 0
                                   ? request.event_types(0)
                                   : request.event();
    if (absl::Status valid = ValidateWebhookEvent(event); !valid.ok()) return valid;
    v1::Webhook webhook;
    webhook.set_id(absl::StrFormat("00000000-0000-4000-8000-%012d", next_id_++));
    webhook.set_connection_id(request.connection_id());
    webhook.set_event(event);
    *webhook.mutable_event_types() = request.event_types();
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
    return response;
  });
}

void FakeSubscriptionBackend::GetWebhook(const v1::GetWebhookRequest& request, Deadline deadline,
                                         Callback<v1::Webhook> done) {
  Serve("GetWebhook", deadline, done,
        [&] { return OnWebhook(request, [](v1::Webhook& webhook) { return webhook; }); });
}

void FakeSubscriptionBackend::ListWebhooks(const v1::ListWebhooksRequest& request,
                                           Deadline deadline,
                                           Callback<v1::ListWebhooksResponse> done) {
  Serve("ListWebhooks", deadline, done, [&]() -> absl::StatusOr<v1::ListWebhooksResponse> {
    std::size_t start = 0;
    if (!request.page_token().empty() && !absl::SimpleAtoi(request.page_token(), &start))
      return absl::InvalidArgumentError("page_token: invalid");
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
    return response;
  });
}

void FakeSubscriptionBackend::UpdateWebhook(const v1::UpdateWebhookRequest& request,
                                            Deadline deadline, Callback<v1::Webhook> done) {
  {
    std::lock_guard lock(mu_);
    last_update_ = request;
  }
  Serve("UpdateWebhook", deadline, done, [&] {
    return OnWebhook(request, [&](v1::Webhook& webhook) {
      if (request.has_event()) webhook.set_event(request.event());
      if (request.has_url()) webhook.set_url(MaskUrlCredentials(request.url()));
      if (request.has_retry_on_error()) webhook.set_retry_on_error(request.retry_on_error());
      if (request.has_use_contact_language())
        webhook.set_use_contact_language(request.use_contact_language());
      if (request.has_headers()) {
        *webhook.mutable_headers() = request.headers().values();
        MaskHeaderValues(webhook);
      }
      webhook.mutable_update_time()->set_seconds(1795000100);
      return webhook;
    });
  });
}

void FakeSubscriptionBackend::RotateWebhookSecret(const v1::RotateWebhookSecretRequest& request,
                                                  Deadline deadline,
                                                  Callback<v1::RotateWebhookSecretResponse> done) {
  Serve("RotateWebhookSecret", deadline, done, [&] {
    return OnWebhook(request, [](v1::Webhook& webhook) {
      // The previous secret stays valid for the default grace period, 24 h.
      webhook.mutable_previous_secret_expire_time()->set_seconds(1795086400);
      v1::RotateWebhookSecretResponse response;
      *response.mutable_webhook() = webhook;
      response.set_secret("whsec_rotated");
      return response;
    });
  });
}

void FakeSubscriptionBackend::EnableWebhook(const v1::EnableWebhookRequest& request,
                                            Deadline deadline, Callback<v1::Webhook> done) {
  Serve("EnableWebhook", deadline, done, [&] {
    return OnWebhook(request, [](v1::Webhook& webhook) {
      webhook.set_status(v1::WEBHOOK_STATUS_ENABLED);
      webhook.clear_disabled_reason();
      return webhook;
    });
  });
}

void FakeSubscriptionBackend::DeleteWebhook(const v1::DeleteWebhookRequest& request,
                                            Deadline deadline, Callback<v1::Webhook> done) {
  Serve("DeleteWebhook", deadline, done, [&] {
    return OnWebhook(request, [this](v1::Webhook& webhook) {
      v1::Webhook deleted = std::move(webhook);
      webhooks_.erase(webhooks_.begin() + (&webhook - webhooks_.data()));
      return deleted;
    });
  });
}

void FakeSubscriptionBackend::CheckHealth(const health::HealthCheckRequest& request,
                                          Deadline deadline,
                                          Callback<health::HealthCheckResponse> done) {
  Serve("CheckHealth", deadline, done, [&]() -> absl::StatusOr<health::HealthCheckResponse> {
    const auto it = health_.find(request.service());
    if (it == health_.end()) return absl::NotFoundError("unknown service");
    health::HealthCheckResponse response;
    response.set_status(it->second);
    return response;
  });
}

}  // namespace octo::gateway::testing
