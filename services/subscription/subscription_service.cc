#include "services/subscription/subscription_service.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/common/crypto.h"
#include "services/common/grpc_auth.h"
#include "services/common/status.h"
#include "services/common/validation.h"
#include "services/subscription/rpc_util.h"
#include "services/subscription/validation.h"
#include "services/subscription/webhook_dialect.h"

namespace octo::subscription {
namespace {

namespace pb = ::octo::webhooks::v1;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// The dialect fields of a create request into `webhook`: the dialect, a
// notification subscription's event types (its event is the first), active.
absl::Status ApplyCreateDialect(const pb::CreateWebhookRequest& request, NewWebhook& webhook) {
  if (absl::Status s = ValidateDialectFilter(request.dialect()); !s.ok()) return s;
  webhook.active = !request.has_active() || request.active();
  if (request.dialect() != kNotificationDialect) {
    if (request.event_types_size() > 0) {
      return absl::InvalidArgumentError("eventTypes: only notification subscriptions have them");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> types = ValidateEventTypes(
      std::vector<std::string>(request.event_types().begin(), request.event_types().end()));
  if (!types.ok()) return types.status();
  if (!request.event().empty() && request.event() != types->front()) {
    return absl::InvalidArgumentError("event: must be empty or the first of the event types");
  }
  webhook.dialect = std::string(kNotificationDialect);
  webhook.event = types->front();
  webhook.event_types = *std::move(types);
  return absl::OkStatus();
}

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
    webhook.ordered = request->has_ordered() && request->ordered();
    if (absl::Status s = ApplyCreateDialect(*request, webhook); !s.ok()) return s;
    if (absl::Status s = ValidateWebhookEvent(webhook.event); !s.ok()) return s;
    if (absl::Status s = ValidateWebhookUrl(webhook.url); !s.ok()) return s;
    if (absl::Status s = ValidateWebhookDestination(webhook.url, destination_policy_); !s.ok()) return s;
    if (absl::Status s = ValidateWebhookHeaders(webhook.headers); !s.ok()) return s;
    if (absl::Status s = ValidateCapabilities(webhook.capabilities); !s.ok()) return s;
    if (request->has_rate_limit_per_second()) {
      if (absl::Status s = ValidateRateLimit(request->rate_limit_per_second()); !s.ok()) return s;
      if (request->rate_limit_per_second() > 0) {
        webhook.rate_limit_per_second = request->rate_limit_per_second();
      }
    }
    if (request->has_max_concurrency()) {
      if (absl::Status s = ValidateMaxConcurrency(request->max_concurrency()); !s.ok()) return s;
      if (request->max_concurrency() > 0) webhook.max_concurrency = request->max_concurrency();
    }
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
    if (absl::Status s = CheckDialect(*webhook, request->dialect()); !s.ok()) return s;
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
    if (absl::Status s = ValidateDialectFilter(request->dialect()); !s.ok()) return s;
    absl::StatusOr<WebhookPage> page = repository_->ListWebhooks(
        request->connection_id(), page_size, request->page_token(), request->dialect());
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
    if (absl::Status s = ValidateDialectFilter(request->dialect()); !s.ok()) return s;
    // The dialect is fixed at creation: what may change depends on it.
    std::string dialect = request->dialect();
    if (!dialect.empty() || request->has_event() || request->has_event_types()) {
      absl::StatusOr<WebhookRecord> current =
          repository_->GetWebhook(request->connection_id(), request->webhook_id());
      if (!current.ok()) return current.status();
      if (absl::Status s = CheckDialect(*current, dialect); !s.ok()) return s;
      dialect = current->dialect;
    }
    if (request->has_event_types()) {
      if (dialect != kNotificationDialect) {
        return absl::InvalidArgumentError("eventTypes: only notification subscriptions have them");
      }
      absl::StatusOr<std::vector<std::string>> types = ValidateEventTypes(std::vector<std::string>(
          request->event_types().values().begin(), request->event_types().values().end()));
      if (!types.ok()) return types.status();
      patch.event_types = *std::move(types);
    }
    if (request->has_event() && dialect == kNotificationDialect) {
      return absl::InvalidArgumentError("event: notification subscriptions change eventTypes");
    }
    if (request->has_active()) patch.active = request->active();
    if (request->has_ordered()) patch.ordered = request->ordered();
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
    if (request->has_rate_limit_per_second()) {
      if (absl::Status s = ValidateRateLimit(request->rate_limit_per_second()); !s.ok()) return s;
      patch.rate_limit_per_second = request->rate_limit_per_second();
    }
    if (request->has_max_concurrency()) {
      if (absl::Status s = ValidateMaxConcurrency(request->max_concurrency()); !s.ok()) return s;
      patch.max_concurrency = request->max_concurrency();
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
    if (!request->dialect().empty()) {
      absl::StatusOr<WebhookRecord> current =
          repository_->GetWebhook(request->connection_id(), request->webhook_id());
      if (!current.ok()) return current.status();
      if (absl::Status s = CheckDialect(*current, request->dialect()); !s.ok()) return s;
    }
    absl::StatusOr<WebhookRecord> webhook =
        repository_->DeleteWebhook(request->connection_id(), request->webhook_id());
    if (!webhook.ok()) return webhook.status();
    ToProto(*webhook, response);
    return absl::OkStatus();
  });
}

grpc::Status SubscriptionServiceImpl::RotateWebhookSecret(
    grpc::ServerContext*, const pb::RotateWebhookSecretRequest* request,
    pb::RotateWebhookSecretResponse* response) {
  return HandleRpc("SubscriptionService/RotateWebhookSecret", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    int grace_seconds = kDefaultGracePeriodSeconds;
    if (request->has_grace_period_seconds()) {
      grace_seconds = request->grace_period_seconds();
      if (grace_seconds < 0 || grace_seconds > kMaxGracePeriodSeconds) {
        return absl::InvalidArgumentError(absl::StrCat(
            "gracePeriodSeconds: must be between 0 and ", kMaxGracePeriodSeconds, " (7 days)"));
      }
    }
    const std::string secret = crypto::NewSigningSecret();
    absl::StatusOr<WebhookRecord> webhook = repository_->RotateWebhookSecret(
        request->connection_id(), request->webhook_id(), secret, absl::Seconds(grace_seconds));
    if (!webhook.ok()) return webhook.status();
    ToProto(*webhook, response->mutable_webhook());
    response->set_secret(secret);
    return absl::OkStatus();
  });
}

grpc::Status SubscriptionServiceImpl::EnableWebhook(grpc::ServerContext*,
                                                    const pb::EnableWebhookRequest* request,
                                                    pb::Webhook* response) {
  return HandleRpc("SubscriptionService/EnableWebhook", [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request->connection_id()); !s.ok()) return s;
    log.connection_id = request->connection_id();
    absl::StatusOr<WebhookRecord> webhook =
        repository_->EnableWebhook(request->connection_id(), request->webhook_id());
    if (!webhook.ok()) return webhook.status();
    ToProto(*webhook, response);
    return absl::OkStatus();
  });
}

template <typename Request, typename Response, typename Call>
grpc::Status SubscriptionServiceImpl::Forward(std::string_view method,
                                              grpc::ServerContext* context,
                                              const Request& request, Response* response,
                                              Call call) {
  return HandleRpc(method, [&](RpcLogFields& log) -> absl::Status {
    if (absl::Status s = ValidateUuid("connectionId", request.connection_id()); !s.ok()) return s;
    log.connection_id = request.connection_id();
    if (operations_ == nullptr) {
      return absl::UnavailableError("the delivery service is not configured");
    }
    grpc::ClientContext client;
    auto deadline = std::chrono::system_clock::now() + operations_timeout_;
    if (context != nullptr) deadline = std::min(deadline, context->deadline());
    client.set_deadline(deadline);
    const grpc::Status status = call(&client, request, response);
    if (status.ok()) return absl::OkStatus();
    response->Clear();
    switch (status.error_code()) {
      // Unreachable, too slow, or not (yet) serving these RPCs: retry later.
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::DEADLINE_EXCEEDED:
      case grpc::StatusCode::UNIMPLEMENTED:
        return absl::UnavailableError(
            absl::StrCat("the delivery service is unavailable: ", status.error_message()));
      default:
        // A refusal of our own caller token is ours to fix, not the caller's.
        return grpc_auth::FromInternalCall(status, "octo-delivery");
    }
  });
}

grpc::Status SubscriptionServiceImpl::ListDeliveries(grpc::ServerContext* context,
                                                     const pb::ListDeliveriesRequest* request,
                                                     pb::ListDeliveriesResponse* response) {
  return Forward("SubscriptionService/ListDeliveries", context, *request, response,
                 [&](grpc::ClientContext* c, const auto& req, auto* resp) {
                   return operations_->ListDeliveries(c, req, resp);
                 });
}

grpc::Status SubscriptionServiceImpl::GetDelivery(grpc::ServerContext* context,
                                                  const pb::GetDeliveryRequest* request,
                                                  pb::Delivery* response) {
  return Forward("SubscriptionService/GetDelivery", context, *request, response,
                 [&](grpc::ClientContext* c, const auto& req, auto* resp) {
                   return operations_->GetDelivery(c, req, resp);
                 });
}

grpc::Status SubscriptionServiceImpl::RedeliverDelivery(grpc::ServerContext* context,
                                                        const pb::RedeliverDeliveryRequest* request,
                                                        pb::Delivery* response) {
  return Forward("SubscriptionService/RedeliverDelivery", context, *request, response,
                 [&](grpc::ClientContext* c, const auto& req, auto* resp) {
                   return operations_->RedeliverDelivery(c, req, resp);
                 });
}

grpc::Status SubscriptionServiceImpl::ReplayDeliveries(grpc::ServerContext* context,
                                                       const pb::ReplayDeliveriesRequest* request,
                                                       pb::ReplayDeliveriesResponse* response) {
  return Forward("SubscriptionService/ReplayDeliveries", context, *request, response,
                 [&](grpc::ClientContext* c, const auto& req, auto* resp) {
                   return operations_->ReplayDeliveries(c, req, resp);
                 });
}

grpc::Status SubscriptionServiceImpl::SendTestEvent(grpc::ServerContext* context,
                                                    const pb::SendTestEventRequest* request,
                                                    pb::SendTestEventResponse* response) {
  return Forward("SubscriptionService/SendTestEvent", context, *request, response,
                 [&](grpc::ClientContext* c, const auto& req, auto* resp) {
                   return operations_->SendTestEvent(c, req, resp);
                 });
}

}  // namespace octo::subscription
