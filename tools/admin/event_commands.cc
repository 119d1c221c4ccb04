#include "tools/admin/event_commands.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/common/status.h"
#include "tools/admin/admin_runner.h"
#include "tools/admin/command_flags.h"

namespace octo::admin {
namespace {

namespace v1 = octo::webhooks::v1;

absl::Status Usage(absl::string_view message) { return CommandUsage(message); }

const std::set<std::string>& KnownFlags() {
  static const auto* flags = new std::set<std::string>{
      "supplier", "connection", "event", "idempotency-key", "resource", "resource-file",
      "occurred-at", "diff", "resource-key", "product-id", "option-id"};
  return *flags;
}

// Sets the request field of one --name=value (name already known).
absl::Status SetField(EventInvocation& inv, const std::string& name, const std::string& value) {
  v1::PublishEventRequest& r = inv.request;
  if (name == "supplier") r.set_supplier_id(value);
  if (name == "connection") r.set_connection_id(value);
  if (name == "event") r.set_event(value);
  if (name == "idempotency-key") r.set_idempotency_key(value);
  if (name == "resource") r.set_resource_json(value);
  if (name == "resource-file") inv.resource_file = value;
  if (name == "diff") r.set_diff_json(value);
  if (name == "resource-key") r.set_resource_key(value);
  if (name == "product-id") r.set_product_id(value);
  if (name == "option-id") r.set_option_id(value);
  if (name == "occurred-at") {
    absl::Time t;
    std::string why;
    if (!absl::ParseTime(absl::RFC3339_full, value, &t, &why)) {
      return Usage(absl::StrCat("--occurred-at must be an RFC 3339 time, e.g. 2026-05-01T12:00:00Z (", why, ")"));
    }
    *r.mutable_occurred_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsEventCommand(const std::vector<std::string>& args) {
  // --help anywhere: the whole usage (main), whatever the command.
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return false;
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i].rfind("-", 0) == 0) {
      if (args[i].find('=') == std::string::npos && i + 1 < args.size()) ++i;
      continue;
    }
    return args[i] == "event" || args[i] == "events";
  }
  return false;
}

absl::StatusOr<EventInvocation> ParseEventArgs(const std::vector<std::string>& args,
                                               const std::string& default_target) {
  EventInvocation inv;
  inv.target = default_target;
  std::vector<std::string> words;
  std::set<std::string> seen;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      words.push_back(a);
      continue;
    }
    auto flag = SplitCommandFlag(args, i);
    if (!flag.ok()) return flag.status();
    const auto& [name, value] = *flag;
    if (name == "target") {
      inv.target = value;
      continue;
    }
    if (name == "output") {
      if (value != "json" && value != "id") return Usage("--output must be json or id");
      inv.output = value;
      continue;
    }
    if (!KnownFlags().contains(name)) return Usage(absl::StrCat("unknown flag --", name, " for 'event publish'"));
    if (!seen.insert(name).second) return Usage(absl::StrCat("--", name, " given more than once"));
    if (absl::Status s = SetField(inv, name, value); !s.ok()) return s;
  }
  if (words.size() != 2 || words[1] != "publish") return Usage("the event command is `event publish`");
  for (const char* required : {"supplier", "event", "idempotency-key"}) {
    if (!seen.contains(required)) return Usage(absl::StrCat("missing --", required));
  }
  if (seen.contains("resource") == seen.contains("resource-file")) {
    return Usage("give the resource as --resource=JSON or --resource-file=PATH (one of them)");
  }
  return inv;
}

int RunEventCommand(EventInvocation inv, v1::EventService::StubInterface& events, std::ostream& out,
                    std::ostream& err) {
  if (!inv.resource_file.empty()) {
    std::ifstream in(inv.resource_file, std::ios::binary);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad()) {
      err << "octo-admin: cannot read --resource-file " << inv.resource_file << "\n";
      return kExitUsage;
    }
    inv.request.set_resource_json(text.str());
  }
  if (!inv.request.has_occurred_at()) {
    *inv.request.mutable_occurred_at() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::PublishEventResponse response;
  const grpc::Status s = events.PublishEvent(&context, inv.request, &response);
  if (!s.ok()) {
    const absl::Status status = FromGrpcStatus(s);
    err << "octo-admin: " << absl::StatusCodeToString(status.code()) << ": " << status.message() << "\n";
    return kExitRpcFailed;
  }
  if (inv.output == "id") {
    out << response.event_id() << "\n";
    return kExitOk;
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(response, &json, options);
  out << json;
  return kExitOk;
}

std::string EventUsage() {
  return R"(
Publishing (EventService; needs the publisher's token: --token_file=<callers dir>/publisher):
  event publish --supplier=ID --event=EVENT --idempotency-key=KEY
                (--resource=JSON | --resource-file=PATH) [--connection=ID]
                [--occurred-at=RFC3339 (default now)] [--diff=JSON] [--resource-key=KEY]
                [--product-id=ID --option-id=ID] [--output=id]
)";
}

}  // namespace octo::admin
