#include "services/subscription/subscription_service.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "services/common/crypto.h"
#include "services/common/validation.h"
#include "services/subscription/rpc_util.h"
#include "services/subscription/validation.h"

namespace octo::subscription {
namespace {

namespace pb = ::octo::webhooks::v1;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

std::map<std::string, std::string> ToMap(const google::protobuf::Map<std::string, std::string>& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

}  // namespace

grpc::Status SubscriptionServiceImpl::CreateWebhook(grpc::ServerContext*,
                                                    const pb::CreateWebhookRequest* request,
                                                    pb::CreateWebhookResponse* response) {
  return HandleRpc("SubscriptionService/CreateWebhook", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    NewWebhook webhook;
    webhook.connection_id = request->connection_id();
    webhook.event = request->event();
    webhook.url = request->url();
    webhook.retry_on_error = request->has_retry_on_error() ? request->retry_on_error() : true;
    webhook.use_contact_language =
        request->has_use_contact_language() ? request->use_contact_language() : true;
    webhook.headers = ToMap(request->headers());
    webhook.capabilities.assign(request->capabilities().begin(), request->capabilities().end());
    if (absl::Status s = ValidateWebhookEvent(webhook.event); !s.ok()) return s;
    if (absl::Status s = ValidateWebhookUrl(webhook.url); !s.ok()) return s;
    if (absl::Status s = ValidateWebhookDestination(webhook.url, destination_policy_); !s.ok()) return s;
    if (absl::Status s = ValidateWebhookHeaders(webhook.headers); !s.ok()) return s;
    if (absl::Status s = ValidateCapabilities(webhook.capabilities); !s.ok()) return s;
    webhook.secret = crypto::NewSigningSecret();

    absl::StatusOr<WebhookRecord> created = repository_->CreateWebhook(webhook);
    if (!created.ok()) return created.status();
    ToProto(*created, response->mutable_webhook());
    response->set_secret(created->secret);
    return absl::OkStatus();
  });
}

grpc::Status SubscriptionServiceImpl::GetWebhook(grpc::ServerContext*,
                                                 const pb::GetWebhookRequest* request,
                                                 pb::Webhook* response) {
  return HandleRpc("SubscriptionService/GetWebhook", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    absl::StatusOr<WebhookRecord> webhook =
        repository_->GetWebhook(request->connection_id(), request->webhook_id());
    if (!webhook.ok()) return webhook.status();
    ToProto(*webhook, response);
    return absl::OkStatus();
  });
}

grpc::Status SubscriptionServiceImpl::ListWebhooks(grpc::ServerContext*,
                                                   const pb::ListWebhooksRequest* request,
                                                   pb::ListWebhooksResponse* response) {
  return HandleRpc("SubscriptionService/ListWebhooks", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    if (request->page_size() < 0) {
      return absl::InvalidArgumentError(
          "pageSize: must not be negative (0 means 100, at most 1000)");
    }
    // 0 means the default; larger than the maximum is served as the maximum.
    const int page_size =
        request->page_size() == 0 ? kDefaultPageSize : std::min(request->page_size(), kMaxPageSize);
    absl::StatusOr<WebhookPage> page =
        repository_->ListWebhooks(request->connection_id(), page_size, request->page_token());
    if (!page.ok()) return page.status();
    for (const WebhookRecord& w : page->webhooks) ToProto(w, response->add_webhooks());
    response->set_next_page_token(page->next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status SubscriptionServiceImpl::UpdateWebhook(grpc::ServerContext*,
                                                    const pb::UpdateWebhookRequest* request,
                                                    pb::Webhook* response) {
  return HandleRpc("SubscriptionService/UpdateWebhook", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    WebhookPatch patch;
    if (request->has_event()) {
      if (absl::Status s = ValidateWebhookEvent(request->event()); !s.ok()) return s;
      patch.event = request->event();
    }
    if (request->has_url()) {
      if (absl::Status s = ValidateWebhookUrl(request->url()); !s.ok()) return s;
      if (absl::Status s = ValidateWebhookDestination(request->url(), destination_policy_); !s.ok()) return s;
      patch.url = request->url();
    }
    if (request->has_retry_on_error()) patch.retry_on_error = request->retry_on_error();
    if (request->has_use_contact_language())
      patch.use_contact_language = request->use_contact_language();
    if (request->has_headers()) {
      patch.headers = ToMap(request->headers().values());
      if (absl::Status s = ValidateWebhookHeaders(*patch.headers); !s.ok()) return s;
    }
    absl::StatusOr<WebhookRecord> webhook =
        repository_->UpdateWebhook(request->connection_id(), request->webhook_id(), patch);
    if (!webhook.ok()) return webhook.status();
    ToProto(*webhook, response);
    return absl::OkStatus();
  });
}

grpc::Status SubscriptionServiceImpl::DeleteWebhook(grpc::ServerContext*,
                                                    const pb::DeleteWebhookRequest* request,
                                                    pb::Webhook* response) {
  return HandleRpc("SubscriptionService/DeleteWebhook", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    absl::StatusOr<WebhookRecord> webhook =
        repository_->DeleteWebhook(request->connection_id(), request->webhook_id());
    if (!webhook.ok()) return webhook.status();
    ToProto(*webhook, response);
    return absl::OkStatus();
  });
}

}  // namespace octo::subscription
