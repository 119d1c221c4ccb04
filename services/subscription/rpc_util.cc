#include "services/subscription/rpc_util.h"

#include <chrono>
#include <exception>

#include <google/protobuf/timestamp.pb.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "services/common/log.h"
#include "services/common/rpc_handler.h"
#include "services/common/status.h"
#include "services/common/validation.h"

namespace octo::subscription {
namespace {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    seconds -= 1;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem * 1000));
}

}  // namespace

grpc::Status HandleRpc(std::string_view method,
                       absl::FunctionRef<absl::Status(RpcLogFields&)> body) {
  const auto start = std::chrono::steady_clock::now();
  RpcLogFields fields;
  const absl::Status status = RunHandlerBody(method, [&] { return body(fields); });
  const std::string duration = MillisecondsSince(start);
  const std::string code = absl::StatusCodeToString(status.code());
  const std::string error(status.message());
  const log::Level level = IsServerFault(status) ? log::Level::kError : log::Level::kInfo;
  if (status.ok()) {
    log::Write(level, "rpc",
               {{"method", method},
                {"code", code},
                {"duration_ms", duration},
                {"connection_id", fields.connection_id}});
  } else {
    log::Write(level, "rpc",
               {{"method", method},
                {"code", code},
                {"duration_ms", duration},
                {"connection_id", fields.connection_id},
                {"error", error}});
  }
  return ToGrpcStatus(status);
}

void ToProto(const WebhookRecord& r, pb::Webhook* out) {
  out->set_id(r.id);
  out->set_connection_id(r.connection_id);
  out->set_event(r.event);
  out->set_url(MaskUrlCredentials(r.url));
  out->set_retry_on_error(r.retry_on_error);
  out->set_use_contact_language(r.use_contact_language);
  auto& headers = *out->mutable_headers();
  for (const auto& [name, value] : r.headers) headers[name] = std::string(kMaskedValue);
  for (const auto& c : r.capabilities) out->add_capabilities(c);
  out->set_status(r.status == WebhookStatus::kDisabled ? pb::WEBHOOK_STATUS_DISABLED
                                                       : pb::WEBHOOK_STATUS_ENABLED);
  SetTimestamp(r.create_time, out->mutable_create_time());
  SetTimestamp(r.update_time, out->mutable_update_time());
  out->set_disabled_reason(r.disabled_reason);
  if (r.disable_time) SetTimestamp(*r.disable_time, out->mutable_disable_time());
  if (r.rate_limit_per_second) out->set_rate_limit_per_second(*r.rate_limit_per_second);
  if (r.max_concurrency) out->set_max_concurrency(*r.max_concurrency);
  if (r.failing_since) SetTimestamp(*r.failing_since, out->mutable_failing_since());
  out->set_dialect(r.dialect);
  out->set_ordered(r.ordered);
  if (r.event_types.empty()) {
    out->add_event_types(r.event);
  } else {
    for (const std::string& type : r.event_types) out->add_event_types(type);
  }
  // An expired grace period is history: the previous secret no longer signs.
  if (r.previous_secret_expire_time && *r.previous_secret_expire_time > absl::Now()) {
    SetTimestamp(*r.previous_secret_expire_time, out->mutable_previous_secret_expire_time());
  }
}

void ToProto(const SupplierRecord& r, pb::Supplier* out) {
  out->set_id(r.id);
  out->set_name(r.name);
  out->set_endpoint(r.endpoint);
  auto* contact = out->mutable_contact();
  contact->set_website(r.contact.website);
  contact->set_email(r.contact.email);
  contact->set_telephone(r.contact.telephone);
  contact->set_address(r.contact.address);
  SetTimestamp(r.create_time, out->mutable_create_time());
  SetTimestamp(r.update_time, out->mutable_update_time());
}

void ToProto(const ConnectionRecord& r, pb::Connection* out) {
  out->set_id(r.id);
  out->set_supplier_id(r.supplier_id);
  out->set_name(r.name);
  out->set_max_webhooks(r.max_webhooks);
  SetTimestamp(r.create_time, out->mutable_create_time());
}

void ToProto(const ApiKeyRecord& r, pb::ApiKey* out) {
  out->set_id(r.id);
  out->set_connection_id(r.connection_id);
  out->set_name(r.name);
  out->set_prefix(r.prefix);
  SetTimestamp(r.create_time, out->mutable_create_time());
  if (r.revoke_time) SetTimestamp(*r.revoke_time, out->mutable_revoke_time());
}

ContactRecord FromProto(const pb::SupplierContact& c) {
  return ContactRecord{c.website(), c.email(), c.telephone(), c.address()};
}

}  // namespace octo::subscription
