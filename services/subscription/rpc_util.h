#pragma once
// Shared by the gRPC handlers: one place that turns a handler's absl::Status
// into a grpc::Status, catches anything that escapes, and writes the one log
// line per request; plus the record -> proto conversions, which mask URL
// credentials and header values.
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "octo/webhooks/v1/webhooks.pb.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

// Filled in by a handler for the request log line. Never put secrets here.
struct RpcLogFields {
  std::string connection_id;
};

// Runs `body` and returns its status for the wire. An exception escaping
// `body` becomes INTERNAL. Logs {"method", "code", "duration_ms",
// "connection_id", "error"} at info (error level for INTERNAL/UNKNOWN).
grpc::Status HandleRpc(std::string_view method,
                       absl::FunctionRef<absl::Status(RpcLogFields&)> body);

namespace pb = ::octo::webhooks::v1;

// Masks the URL's credentials and every header value; never sets a secret.
void ToProto(const WebhookRecord& record, pb::Webhook* out);
void ToProto(const SupplierRecord& record, pb::Supplier* out);
void ToProto(const ConnectionRecord& record, pb::Connection* out);
void ToProto(const ApiKeyRecord& record, pb::ApiKey* out);

ContactRecord FromProto(const pb::SupplierContact& contact);

}  // namespace octo::subscription
