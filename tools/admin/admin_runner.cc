#include "tools/admin/admin_runner.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "services/common/status.h"

namespace octo::admin {
namespace {

namespace v1 = ::octo::webhooks::v1;
using grpc::health::v1::HealthCheckResponse;

// Calls one unary RPC with the invocation's deadline.
template <typename Stub, typename Request, typename Response>
grpc::Status Call(const AdminInvocation& inv, Stub& stub,
                  grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(inv.timeout));
  return (stub.*method)(&context, request, response);
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    // Cannot happen for our messages (no Any fields); never print half a message.
    return "{}\n";
  }
  return json;
}

int Fail(const AdminInvocation& inv, const grpc::Status& status, std::ostream& err) {
  const absl::Status s = FromGrpcStatus(status);
  err << "octo-admin: " << absl::StatusCodeToString(s.code()) << ": " << s.message();
  if (s.code() == absl::StatusCode::kUnavailable ||
      s.code() == absl::StatusCode::kDeadlineExceeded) {
    err << " (is octo-subscription running at " << inv.target << "?)";
  }
  err << "\n";
  return kExitRpcFailed;
}

// Prints a single-resource response: JSON, or only `id`.
int Print(const AdminInvocation& inv, const google::protobuf::Message& message,
          const std::string& id, std::ostream& out) {
  if (inv.output == OutputFormat::kId) {
    out << id << "\n";
  } else {
    out << ToJson(message);
  }
  return kExitOk;
}

// Prints a list response: JSON, or the ids one per line.
template <typename Items>
int PrintList(const AdminInvocation& inv, const google::protobuf::Message& message,
              const Items& items, std::ostream& out) {
  if (inv.output == OutputFormat::kId) {
    for (const auto& item : items) out << item.id() << "\n";
  } else {
    out << ToJson(message);
  }
  return kExitOk;
}

}  // namespace

int RunAdminCommand(const AdminInvocation& inv, v1::AdminService::StubInterface& admin,
                    grpc::health::v1::Health::StubInterface& health, std::ostream& out,
                    std::ostream& err) {
  using Admin = v1::AdminService::StubInterface;
  grpc::Status status;
  switch (inv.command) {
    case AdminCommand::kHelp:
    case AdminCommand::kVersion:
      err << "octo-admin: internal error: help/version are handled by main\n";
      return kExitUsage;

    case AdminCommand::kHealth: {
      HealthCheckResponse response;
      status =
          Call(inv, health, &grpc::health::v1::Health::StubInterface::Check, inv.health, &response);
      if (!status.ok()) return Fail(inv, status, err);
      out << ToJson(response);
      if (response.status() != HealthCheckResponse::SERVING) {
        err << "octo-admin: health: " << HealthCheckResponse::ServingStatus_Name(response.status())
            << "\n";
        return kExitRpcFailed;
      }
      return kExitOk;
    }

    case AdminCommand::kSupplierCreate: {
      v1::Supplier response;
      status = Call(inv, admin, &Admin::CreateSupplier, inv.create_supplier, &response);
      if (!status.ok()) return Fail(inv, status, err);
      return Print(inv, response, response.id(), out);
    }
    case AdminCommand::kSupplierList: {
      v1::ListSuppliersResponse response;
      status = Call(inv, admin, &Admin::ListSuppliers, v1::ListSuppliersRequest(), &response);
      if (!status.ok()) return Fail(inv, status, err);
      return PrintList(inv, response, response.suppliers(), out);
    }
    case AdminCommand::kSupplierGet: {
      v1::Supplier response;
      status = Call(inv, admin, &Admin::GetSupplier, inv.get_supplier, &response);
      if (!status.ok()) return Fail(inv, status, err);
      return Print(inv, response, response.id(), out);
    }
    case AdminCommand::kSupplierUpdate: {
      v1::UpdateSupplierRequest request = inv.update_supplier;
      if (!inv.update_contact_fields.empty()) {
        // UpdateSupplier replaces the whole contact: start from the current one
        // so that fields not given on the command line keep their value.
        v1::GetSupplierRequest get;
        get.set_supplier_id(request.supplier_id());
        v1::Supplier current;
        status = Call(inv, admin, &Admin::GetSupplier, get, &current);
        if (!status.ok()) return Fail(inv, status, err);
        v1::SupplierContact merged = current.contact();
        const v1::SupplierContact& given = inv.update_supplier.contact();
        if (inv.update_contact_fields.count("website")) merged.set_website(given.website());
        if (inv.update_contact_fields.count("email")) merged.set_email(given.email());
        if (inv.update_contact_fields.count("telephone")) merged.set_telephone(given.telephone());
        if (inv.update_contact_fields.count("address")) merged.set_address(given.address());
        *request.mutable_contact() = merged;
      }
      v1::Supplier response;
      status = Call(inv, admin, &Admin::UpdateSupplier, request, &response);
      if (!status.ok()) return Fail(inv, status, err);
      return Print(inv, response, response.id(), out);
    }

    case AdminCommand::kConnectionCreate: {
      v1::Connection response;
      status = Call(inv, admin, &Admin::CreateConnection, inv.create_connection, &response);
      if (!status.ok()) return Fail(inv, status, err);
      return Print(inv, response, response.id(), out);
    }
    case AdminCommand::kConnectionList: {
      v1::ListConnectionsResponse response;
      status = Call(inv, admin, &Admin::ListConnections, inv.list_connections, &response);
      if (!status.ok()) return Fail(inv, status, err);
      return PrintList(inv, response, response.connections(), out);
    }

    case AdminCommand::kKeyCreate: {
      v1::CreateApiKeyResponse response;
      status = Call(inv, admin, &Admin::CreateApiKey, inv.create_api_key, &response);
      if (!status.ok()) return Fail(inv, status, err);
      if (inv.output == OutputFormat::kKey) {
        out << response.key() << "\n";
        return kExitOk;
      }
      return Print(inv, response, response.api_key().id(), out);
    }
    case AdminCommand::kKeyList: {
      v1::ListApiKeysResponse response;
      status = Call(inv, admin, &Admin::ListApiKeys, inv.list_api_keys, &response);
      if (!status.ok()) return Fail(inv, status, err);
      return PrintList(inv, response, response.api_keys(), out);
    }
    case AdminCommand::kKeyRevoke: {
      v1::ApiKey response;
      status = Call(inv, admin, &Admin::RevokeApiKey, inv.revoke_api_key, &response);
      if (!status.ok()) return Fail(inv, status, err);
      return Print(inv, response, response.id(), out);
    }
  }
  err << "octo-admin: internal error: unhandled command\n";
  return kExitUsage;
}

}  // namespace octo::admin
