#include "services/subscription/operator_service.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "services/common/crypto.h"
#include "services/subscription/rpc_util.h"

namespace octo::subscription {
namespace {

namespace pb = ::octo::webhooks::v1;

constexpr std::size_t kMaxSecretBytes = 200;

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0));
  out->set_nanos(static_cast<int32_t>(((micros % 1000000) + 1000000) % 1000000) * 1000);
}

void ToProto(const OperatorRecord& r, pb::Operator* out) {
  out->set_id(r.id);
  out->set_supplier_id(r.supplier_id);
  out->set_supplier_name(r.supplier_name);
  out->set_name(r.name);
  SetTime(r.create_time, out->mutable_create_time());
}

void ToProto(const SessionRecord& s, pb::OperatorSession* out) {
  ToProto(s.op, out->mutable_operator_());
  out->set_csrf_token(s.csrf_token);
  SetTime(s.expire_time, out->mutable_expire_time());
}

// Session tokens and passwords: "ops_" / "opp_" + 43 base64url characters.
bool LooksLikeSecret(std::string_view s, std::string_view prefix) {
  if (s.size() <= prefix.size() || s.size() > kMaxSecretBytes || s.substr(0, prefix.size()) != prefix) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

std::string NewSecret(std::string_view prefix) {
  return std::string(prefix) + crypto::Base64UrlEncode(crypto::RandomBytes(32));
}

}  // namespace

bool IsValidOperatorName(std::string_view name) {
  if (name.size() < 3 || name.size() > 100) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || std::string_view("._@+-").find(c) != std::string_view::npos;
  });
}

grpc::Status OperatorServiceImpl::CreateOperator(Ctx*, const pb::CreateOperatorRequest* request,
                                                 pb::CreateOperatorResponse* response) {
  return HandleRpc("OperatorService/CreateOperator", [&](RpcLogFields&) -> absl::Status {
    if (!IsValidOperatorName(request->name())) {
      return absl::InvalidArgumentError("name: 3 to 100 letters, digits or . _ @ + -");
    }
    const std::string password = NewSecret("opp_");
    absl::StatusOr<OperatorRecord> op =
        store_->CreateOperator(request->supplier_id(), request->name(), crypto::Sha256(password));
    if (!op.ok()) return op.status();
    ToProto(*op, response->mutable_operator_());
    response->set_password(password);
    return absl::OkStatus();
  });
}

grpc::Status OperatorServiceImpl::ListOperators(Ctx*, const pb::ListOperatorsRequest* request,
                                                pb::ListOperatorsResponse* response) {
  return HandleRpc("OperatorService/ListOperators", [&](RpcLogFields&) -> absl::Status {
    absl::StatusOr<std::vector<OperatorRecord>> ops = store_->ListOperators(request->supplier_id());
    if (!ops.ok()) return ops.status();
    for (const OperatorRecord& op : *ops) ToProto(op, response->add_operators());
    return absl::OkStatus();
  });
}

grpc::Status OperatorServiceImpl::DeleteOperator(Ctx*, const pb::DeleteOperatorRequest* request,
                                                 pb::Operator* response) {
  return HandleRpc("OperatorService/DeleteOperator", [&](RpcLogFields&) -> absl::Status {
    absl::StatusOr<OperatorRecord> op = store_->DeleteOperator(request->operator_id());
    if (!op.ok()) return op.status();
    ToProto(*op, response);
    return absl::OkStatus();
  });
}

grpc::Status OperatorServiceImpl::Login(Ctx*, const pb::LoginRequest* request, pb::OperatorSession* response) {
  return HandleRpc("OperatorService/Login", [&](RpcLogFields&) -> absl::Status {
    const auto wrong = [] { return absl::UnauthenticatedError("wrong name or password"); };
    if (!IsValidOperatorName(request->name()) || !LooksLikeSecret(request->password(), "opp_")) return wrong();
    absl::StatusOr<OperatorRecord> op = store_->CheckLogin(request->name(), crypto::Sha256(request->password()));
    if (!op.ok()) return op.status();
    const std::string token = NewSecret("ops_");
    SessionRecord session{*op, crypto::Base64UrlEncode(crypto::RandomBytes(32)), absl::Now() + session_lifetime_};
    if (absl::Status s = store_->CreateSession(op->id, crypto::Sha256(token), session.csrf_token, session.expire_time);
        !s.ok()) {
      return s;
    }
    ToProto(session, response);
    response->set_token(token);
    return absl::OkStatus();
  });
}

grpc::Status OperatorServiceImpl::AuthenticateSession(Ctx*, const pb::SessionRequest* request,
                                                      pb::OperatorSession* response) {
  return HandleRpc("OperatorService/AuthenticateSession", [&](RpcLogFields&) -> absl::Status {
    if (!LooksLikeSecret(request->token(), "ops_")) return absl::UnauthenticatedError("no session");
    absl::StatusOr<SessionRecord> session = store_->GetSession(crypto::Sha256(request->token()));
    if (!session.ok()) return session.status();
    ToProto(*session, response);
    return absl::OkStatus();
  });
}

grpc::Status OperatorServiceImpl::Logout(Ctx*, const pb::SessionRequest* request, pb::LogoutResponse*) {
  return HandleRpc("OperatorService/Logout", [&](RpcLogFields&) -> absl::Status {
    if (!LooksLikeSecret(request->token(), "ops_")) return absl::OkStatus();
    return store_->DeleteSession(crypto::Sha256(request->token()));
  });
}

grpc::Status OperatorServiceImpl::ListSupplierConnections(Ctx*, const pb::ListSupplierConnectionsRequest* request,
                                                          pb::ListSupplierConnectionsResponse* response) {
  return HandleRpc("OperatorService/ListSupplierConnections", [&](RpcLogFields&) -> absl::Status {
    absl::StatusOr<std::vector<ConnectionSummary>> connections = store_->ListConnections(request->supplier_id());
    if (!connections.ok()) return connections.status();
    for (const ConnectionSummary& c : *connections) {
      pb::SupplierConnection* out = response->add_connections();
      out->mutable_connection()->set_id(c.id);
      out->mutable_connection()->set_supplier_id(request->supplier_id());
      out->mutable_connection()->set_name(c.name);
      out->mutable_connection()->set_max_webhooks(c.max_webhooks);
      SetTime(c.create_time, out->mutable_connection()->mutable_create_time());
      out->set_webhook_count(c.webhook_count);
      out->set_effective_max_webhooks(c.max_webhooks);
    }
    return absl::OkStatus();
  });
}

void OperatorServiceImpl::FillWebhook(const WebhookRecord& webhook, const WebhookRef& ref,
                                      const HealthCounts& health, pb::SupplierWebhook* out) {
  ToProto(webhook, out->mutable_webhook());
  out->set_connection_name(ref.connection_name);
  pb::WebhookHealth* h = out->mutable_health();
  const absl::Time hour_end = absl::Now();
  for (int ago = 23; ago >= 0; --ago) {
    pb::HourlyAttempts* hour = h->add_hours();
    SetTime(hour_end - absl::Hours(ago + 1), hour->mutable_hour_start());
    hour->set_succeeded(health.succeeded[ago]);
    hour->set_failed(health.failed[ago]);
    h->set_attempts_succeeded_24h(h->attempts_succeeded_24h() + health.succeeded[ago]);
    h->set_attempts_failed_24h(h->attempts_failed_24h() + health.failed[ago]);
  }
  h->set_pending_deliveries(health.pending);
}

grpc::Status OperatorServiceImpl::ListSupplierWebhooks(Ctx*, const pb::ListSupplierWebhooksRequest* request,
                                                       pb::ListSupplierWebhooksResponse* response) {
  return HandleRpc("OperatorService/ListSupplierWebhooks", [&](RpcLogFields&) -> absl::Status {
    WebhookFilter filter{request->connection_id(), request->event(), ""};
    if (request->status() == pb::WEBHOOK_STATUS_ENABLED) filter.status = "enabled";
    if (request->status() == pb::WEBHOOK_STATUS_DISABLED) filter.status = "disabled";
    absl::StatusOr<std::vector<WebhookRef>> refs = store_->ListWebhooks(request->supplier_id(), filter);
    if (!refs.ok()) return refs.status();
    std::vector<std::string> ids;
    for (const WebhookRef& ref : *refs) ids.push_back(ref.webhook_id);
    absl::StatusOr<std::map<std::string, HealthCounts>> health = store_->Health(ids);
    if (!health.ok()) return health.status();
    // The page's webhooks in one read, not one per webhook.
    absl::StatusOr<std::vector<WebhookRecord>> webhooks = repository_->GetWebhooksById(request->supplier_id(), ids);
    if (!webhooks.ok()) return webhooks.status();
    std::map<std::string, const WebhookRecord*> by_id;
    for (const WebhookRecord& w : *webhooks) by_id[w.id] = &w;
    for (const WebhookRef& ref : *refs) {
      const auto it = by_id.find(ref.webhook_id);
      if (it == by_id.end()) continue;  // deleted meanwhile
      FillWebhook(*it->second, ref, (*health)[ref.webhook_id], response->add_webhooks());
    }
    return absl::OkStatus();
  });
}

grpc::Status OperatorServiceImpl::GetSupplierWebhook(Ctx*, const pb::GetSupplierWebhookRequest* request,
                                                     pb::SupplierWebhook* response) {
  return HandleRpc("OperatorService/GetSupplierWebhook", [&](RpcLogFields& log) -> absl::Status {
    absl::StatusOr<WebhookRef> ref = store_->ResolveWebhook(request->supplier_id(), request->webhook_id());
    if (!ref.ok()) return ref.status();
    log.connection_id = ref->connection_id;
    absl::StatusOr<std::map<std::string, HealthCounts>> health = store_->Health({ref->webhook_id});
    if (!health.ok()) return health.status();
    absl::StatusOr<WebhookRecord> webhook = repository_->GetWebhook(ref->connection_id, ref->webhook_id);
    if (!webhook.ok()) return webhook.status();
    FillWebhook(*webhook, *ref, (*health)[ref->webhook_id], response);
    return absl::OkStatus();
  });
}

}  // namespace octo::subscription
