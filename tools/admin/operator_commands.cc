#include "tools/admin/operator_commands.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "services/common/status.h"
#include "tools/admin/command_flags.h"
#include "tools/admin/response_ids.h"
#include "tools/admin/webhook_requests.h"

namespace octo::admin {
namespace {

namespace v1 = octo::webhooks::v1;

struct Spec {
  absl::string_view resource, verb, id_name;
  std::vector<absl::string_view> flags, required;
};

const std::vector<Spec>& Specs() {
  static const auto* specs = new std::vector<Spec>{
      {"operator", "create", "", {"supplier", "name"}, {"supplier", "name"}},
      {"operator", "list", "", {"supplier"}, {"supplier"}},
      {"operator", "delete", "OPERATOR_ID", {}, {}},
      {"webhook", "list", "", {"connection"}, {"connection"}},
      {"webhook", "show", "WEBHOOK_ID", {"connection"}, {"connection"}},
      {"webhook",
       "create",
       "",
       {"connection", "url", "event", "retry-on-error", "use-contact-language", "header", "capabilities", "ordered"},
       {"connection", "url", "event"}},
      {"webhook",
       "update",
       "WEBHOOK_ID",
       {"connection", "url", "event", "retry-on-error", "use-contact-language", "header", "ordered", "active"},
       {"connection"}},
      {"webhook", "delete", "WEBHOOK_ID", {"connection"}, {"connection"}},
      {"webhook", "enable", "WEBHOOK_ID", {"connection"}, {"connection"}},
      {"webhook", "test", "WEBHOOK_ID", {"connection"}, {"connection"}},
      {"webhook", "replay", "WEBHOOK_ID", {"connection", "since", "limit"}, {"connection", "since"}},
      {"delivery", "list", "", {"connection", "webhook", "status", "event"}, {"connection", "webhook"}},
      {"delivery", "show", "DELIVERY_ID", {"connection", "webhook"}, {"connection", "webhook"}},
      {"delivery", "redeliver", "DELIVERY_ID", {"connection", "webhook"}, {"connection", "webhook"}},
      {"delivery", "replay", "", {"connection", "webhook", "since", "limit"}, {"connection", "webhook", "since"}},
  };
  return *specs;
}

std::string Singular(absl::string_view word) {
  if (word == "operators") return "operator";
  if (word == "webhooks") return "webhook";
  if (word == "deliveries") return "delivery";
  return std::string(word);
}

absl::Status Usage(absl::string_view message) { return CommandUsage(message); }

const Spec* FindSpec(const OperatorInvocation& inv) {
  for (const Spec& s : Specs()) {
    if (s.resource == inv.resource && s.verb == inv.verb) return &s;
  }
  return nullptr;
}

// Flags that may stand alone: `--ordered` is `--ordered=true`. Written with
// a separate value, that value must be a boolean word (`--ordered false`),
// so a bare flag before another argument never swallows it.
bool IsBareBooleanFlag(const std::vector<std::string>& args, std::size_t i) {
  if (args[i] != "--ordered") return false;
  if (i + 1 >= args.size()) return true;
  const std::string next = absl::AsciiStrToLower(args[i + 1]);
  return next != "true" && next != "false" && next != "yes" && next != "no" && next != "1" && next != "0";
}

}  // namespace

bool IsOperatorCommand(const std::vector<std::string>& args) {
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i].rfind("-", 0) == 0) {
      if (IsBareBooleanFlag(args, i)) continue;
      if (args[i].find('=') == std::string::npos && args[i] != "--help" && args[i] != "-h" && i + 1 < args.size()) ++i;
      continue;
    }
    const std::string word = Singular(args[i]);
    return word == "operator" || word == "webhook" || word == "delivery";
  }
  return false;
}

absl::StatusOr<OperatorInvocation> ParseOperatorArgs(const std::vector<std::string>& args,
                                                     const std::string& default_target) {
  OperatorInvocation inv;
  inv.target = default_target;
  std::vector<std::string> words;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      words.push_back(a);
      continue;
    }
    if (IsBareBooleanFlag(args, i)) {
      inv.flags.emplace_back("ordered", "true");
      continue;
    }
    auto flag = SplitCommandFlag(args, i);
    if (!flag.ok()) return flag.status();
    const auto& [name, value] = *flag;
    if (name == "target") {
      inv.target = value;
    } else if (name == "output") {
      if (value != "json" && value != "id" && value != "password") return Usage("--output must be json, id or password");
      inv.output = value;
    } else {
      inv.flags.emplace_back(name, value);
    }
  }
  if (words.size() < 2) return Usage("say what to do, e.g. `webhook list --connection=ID`");
  inv.resource = Singular(words[0]);
  inv.verb = words[1];
  const Spec* spec = FindSpec(inv);
  if (spec == nullptr) return Usage(absl::StrCat("unknown command '", words[0], " ", words[1], "'"));
  if (spec->id_name.empty() ? words.size() != 2 : words.size() != 3) {
    return Usage(spec->id_name.empty() ? absl::StrCat("'", inv.resource, " ", inv.verb, "' takes no argument")
                                       : absl::StrCat("'", inv.resource, " ", inv.verb, "' needs ", spec->id_name));
  }
  if (words.size() == 3) inv.id = words[2];
  for (const auto& [n, v] : inv.flags) {
    if (std::find(spec->flags.begin(), spec->flags.end(), n) == spec->flags.end()) {
      return Usage(absl::StrCat("unknown flag --", n, " for '", inv.resource, " ", inv.verb, "'"));
    }
    if (n != "header" && std::count_if(inv.flags.begin(), inv.flags.end(), [&](const auto& f) { return f.first == n; }) > 1) {
      return Usage(absl::StrCat("--", n, " given more than once"));
    }
  }
  for (absl::string_view r : spec->required) {
    if (!HasFlag(inv, r)) return Usage(absl::StrCat("missing --", r));
  }
  return inv;
}

namespace {

class Runner {
 public:
  Runner(const OperatorInvocation& inv, v1::OperatorService::StubInterface& ops,
         v1::SubscriptionService::StubInterface& subs, std::ostream& out, std::ostream& err)
      : inv_(inv), ops_(ops), subs_(subs), out_(out), err_(err) {}

  int Run();

 private:
  template <typename Response, typename F>
  int Call(F f, absl::string_view printed_id = "") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    Response response;
    const grpc::Status s = f(&context, &response);
    if (!s.ok()) {
      const absl::Status status = FromGrpcStatus(s);
      err_ << "octo-admin: " << absl::StatusCodeToString(status.code()) << ": " << status.message() << "\n";
      return 1;
    }
    Print(response, printed_id);
    return 0;
  }

  void Print(const google::protobuf::Message& m, absl::string_view id) {
    if (inv_.output == "id") {
      if (!id.empty()) {
        out_ << id << "\n";
      } else {
        for (const std::string& each : IdsOf(m)) out_ << each << "\n";
      }
      return;
    }
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(m, &json, options);
    out_ << json;
  }

  int Operator();
  int Webhook();
  int Delivery();
  int Replay(const std::string& webhook_id);

  const OperatorInvocation& inv_;
  v1::OperatorService::StubInterface& ops_;
  v1::SubscriptionService::StubInterface& subs_;
  std::ostream& out_;
  std::ostream& err_;
};

int Runner::Operator() {
  if (inv_.verb == "create") {
    v1::CreateOperatorRequest req;
    req.set_supplier_id(Flag(inv_, "supplier"));
    req.set_name(Flag(inv_, "name"));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::CreateOperatorResponse r;
    if (grpc::Status s = ops_.CreateOperator(&context, req, &r); !s.ok()) {
      err_ << "octo-admin: " << absl::StatusCodeToString(FromGrpcStatus(s).code()) << ": " << s.error_message() << "\n";
      return 1;
    }
    if (inv_.output == "password") {
      out_ << r.password() << "\n";
    } else {
      Print(r, r.operator_().id());
    }
    return 0;
  }
  if (inv_.verb == "list") {
    v1::ListOperatorsRequest req;
    req.set_supplier_id(Flag(inv_, "supplier"));
    return Call<v1::ListOperatorsResponse>([&](grpc::ClientContext* c, v1::ListOperatorsResponse* r) {
      return ops_.ListOperators(c, req, r);
    });
  }
  v1::DeleteOperatorRequest req;
  req.set_operator_id(inv_.id);
  return Call<v1::Operator>([&](grpc::ClientContext* c, v1::Operator* r) { return ops_.DeleteOperator(c, req, r); },
                            inv_.id);
}

int Runner::Replay(const std::string& webhook_id) {
  v1::ReplayDeliveriesRequest req;
  req.set_connection_id(Flag(inv_, "connection"));
  req.set_webhook_id(webhook_id);
  if (!google::protobuf::util::TimeUtil::FromString(Flag(inv_, "since"), req.mutable_since())) {
    err_ << "octo-admin: --since must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z\n";
    return 2;
  }
  if (HasFlag(inv_, "limit")) {
    int limit = 0;
    if (!absl::SimpleAtoi(Flag(inv_, "limit"), &limit) || limit < 1) {
      err_ << "octo-admin: --limit must be a positive integer\n";
      return 2;
    }
    req.set_max_count(limit);
  }
  return Call<v1::ReplayDeliveriesResponse>([&](grpc::ClientContext* c, v1::ReplayDeliveriesResponse* r) {
    return subs_.ReplayDeliveries(c, req, r);
  });
}

int Runner::Webhook() {
  const std::string connection = Flag(inv_, "connection");
  if (inv_.verb == "list") {
    v1::ListWebhooksRequest req;
    req.set_connection_id(connection);
    req.set_page_size(1000);
    return Call<v1::ListWebhooksResponse>(
        [&](grpc::ClientContext* c, v1::ListWebhooksResponse* r) { return subs_.ListWebhooks(c, req, r); });
  }
  if (inv_.verb == "create") {
    absl::StatusOr<v1::CreateWebhookRequest> req = CreateWebhookRequestFrom(inv_);
    if (!req.ok()) {
      err_ << "octo-admin: " << req.status().message() << "\n";
      return 2;
    }
    return Call<v1::CreateWebhookResponse>(
        [&](grpc::ClientContext* c, v1::CreateWebhookResponse* r) { return subs_.CreateWebhook(c, *req, r); });
  }
  if (inv_.verb == "update") {
    absl::StatusOr<v1::UpdateWebhookRequest> req = UpdateWebhookRequestFrom(inv_);
    if (!req.ok()) {
      err_ << "octo-admin: " << req.status().message() << "\n";
      return 2;
    }
    return Call<v1::Webhook>([&](grpc::ClientContext* c, v1::Webhook* r) { return subs_.UpdateWebhook(c, *req, r); },
                             inv_.id);
  }
  if (inv_.verb == "replay") return Replay(inv_.id);
  if (inv_.verb == "test") {
    v1::SendTestEventRequest req;
    req.set_connection_id(connection);
    req.set_webhook_id(inv_.id);
    return Call<v1::SendTestEventResponse>(
        [&](grpc::ClientContext* c, v1::SendTestEventResponse* r) { return subs_.SendTestEvent(c, req, r); });
  }
  if (inv_.verb == "enable") {
    v1::EnableWebhookRequest req;
    req.set_connection_id(connection);
    req.set_webhook_id(inv_.id);
    return Call<v1::Webhook>([&](grpc::ClientContext* c, v1::Webhook* r) { return subs_.EnableWebhook(c, req, r); },
                             inv_.id);
  }
  if (inv_.verb == "delete") {
    v1::DeleteWebhookRequest req;
    req.set_connection_id(connection);
    req.set_webhook_id(inv_.id);
    return Call<v1::Webhook>([&](grpc::ClientContext* c, v1::Webhook* r) { return subs_.DeleteWebhook(c, req, r); },
                             inv_.id);
  }
  v1::GetWebhookRequest req;
  req.set_connection_id(connection);
  req.set_webhook_id(inv_.id);
  return Call<v1::Webhook>([&](grpc::ClientContext* c, v1::Webhook* r) { return subs_.GetWebhook(c, req, r); },
                           inv_.id);
}

int Runner::Delivery() {
  const std::string connection = Flag(inv_, "connection");
  const std::string webhook = Flag(inv_, "webhook");
  if (inv_.verb == "replay") return Replay(webhook);
  if (inv_.verb == "list") {
    v1::ListDeliveriesRequest req;
    req.set_connection_id(connection);
    req.set_webhook_id(webhook);
    req.set_page_size(100);
    req.set_event(Flag(inv_, "event"));
    if (HasFlag(inv_, "status")) {
      v1::DeliveryState state;
      if (!v1::DeliveryState_Parse("DELIVERY_STATE_" + absl::AsciiStrToUpper(Flag(inv_, "status")), &state)) {
        err_ << "octo-admin: --status must be pending, succeeded, failed or cancelled\n";
        return 2;
      }
      req.set_state(state);
    }
    return Call<v1::ListDeliveriesResponse>(
        [&](grpc::ClientContext* c, v1::ListDeliveriesResponse* r) { return subs_.ListDeliveries(c, req, r); });
  }
  if (inv_.verb == "redeliver") {
    v1::RedeliverDeliveryRequest req;
    req.set_connection_id(connection);
    req.set_webhook_id(webhook);
    req.set_delivery_id(inv_.id);
    return Call<v1::Delivery>(
        [&](grpc::ClientContext* c, v1::Delivery* r) { return subs_.RedeliverDelivery(c, req, r); }, inv_.id);
  }
  v1::GetDeliveryRequest req;
  req.set_connection_id(connection);
  req.set_webhook_id(webhook);
  req.set_delivery_id(inv_.id);
  return Call<v1::Delivery>([&](grpc::ClientContext* c, v1::Delivery* r) { return subs_.GetDelivery(c, req, r); },
                            inv_.id);
}

int Runner::Run() {
  if (inv_.resource == "operator") return Operator();
  if (inv_.resource == "webhook") return Webhook();
  return Delivery();
}

}  // namespace

int RunOperatorCommand(const OperatorInvocation& inv, v1::OperatorService::StubInterface& operators,
                       v1::SubscriptionService::StubInterface& subscriptions, std::ostream& out, std::ostream& err) {
  return Runner(inv, operators, subscriptions, out, err).Run();
}

std::string OperatorUsage() {
  return R"(
Operators (dashboard logins of a supplier's staff):
  operator create --supplier=ID --name=NAME [--output=password]   prints the password once
  operator list --supplier=ID
  operator delete OPERATOR_ID

Webhooks and deliveries (ids from `connection list` and `webhook list`):
  webhook list --connection=ID
  webhook show WEBHOOK_ID --connection=ID
  webhook create --connection=ID --url=URL --event=EVENT [--retry-on-error=false]
                 [--use-contact-language=false] [--header='Name: value' ...] [--capabilities=a,b]
                 [--ordered[=true|false]]   ordered: each resource's deliveries one at a time, in order
  webhook update WEBHOOK_ID --connection=ID [--url=URL] [--event=EVENT] [--retry-on-error=true|false]
                 [--use-contact-language=true|false] [--header='Name: value' ...] (replaces all headers)
                 [--ordered[=true|false]] (applies to deliveries queued from now on) [--active=true|false]
                 (only the fields given change)
  webhook delete|enable|test WEBHOOK_ID --connection=ID
  webhook replay WEBHOOK_ID --connection=ID --since=RFC3339 [--limit=N]
  delivery list --connection=ID --webhook=ID [--status=failed] [--event=EVENT]
  delivery show|redeliver DELIVERY_ID --connection=ID --webhook=ID
  delivery replay --connection=ID --webhook=ID --since=RFC3339 [--limit=N]
)";
}

}  // namespace octo::admin
