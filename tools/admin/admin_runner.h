#pragma once
// Executes a parsed octo-admin invocation against the subscription service.
#include <ostream>

#include "grpc/health/v1/health.grpc.pb.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tools/admin/admin_args.h"

namespace octo::admin {

// Process exit statuses of octo-admin.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRpcFailed = 1;
inline constexpr int kExitUsage = 2;

// Makes the call(s) `inv` names, each with `inv.timeout` as deadline, and
// prints the result on `out` in `inv.output` format. On failure prints one
// line "octo-admin: <GRPC_CODE>: <message>" on `err` and returns
// kExitRpcFailed. Not for kHelp/kVersion (main handles those).
int RunAdminCommand(const AdminInvocation& inv,
                    octo::webhooks::v1::AdminService::StubInterface& admin,
                    grpc::health::v1::Health::StubInterface& health, std::ostream& out,
                    std::ostream& err);

}  // namespace octo::admin
