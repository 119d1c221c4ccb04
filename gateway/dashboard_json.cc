#include "gateway/dashboard_json.h"

#include <algorithm>
#include <set>
#include <string>

#include <boost/json/array.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gateway/json_body.h"
#include "gateway/request_parsing.h"
#include "gateway/string_views.h"
#include "gateway/webhook_json.h"
#include "services/delivery/payload/capabilities.h"

namespace octo::gateway {
namespace json = boost::json;
namespace v1 = octo::webhooks::v1;

json::object SessionToJson(const v1::OperatorSession& s) {
  return json::object{
      {"operator", json::object{{"id", s.operator_().id()}, {"name", s.operator_().name()}}},
      {"supplier", json::object{{"id", s.operator_().supplier_id()}, {"name", s.operator_().supplier_name()}}},
      {"csrfToken", s.csrf_token()},
      {"expiresAt", FormatRfc3339(s.expire_time())},
  };
}

json::object ConnectionsToJson(const v1::ListSupplierConnectionsResponse& response) {
  json::array out;
  for (const v1::SupplierConnection& c : response.connections()) {
    out.push_back(json::object{{"id", c.connection().id()},
                               {"name", c.connection().name()},
                               {"webhookCount", c.webhook_count()},
                               {"maxWebhooks", c.effective_max_webhooks()},
                               {"createdAt", FormatRfc3339(c.connection().create_time())}});
  }
  return json::object{{"connections", std::move(out)}};
}

json::object SupplierWebhookToJson(const v1::SupplierWebhook& w) {
  json::object out = WebhookToJson(w.webhook());
  out["connectionName"] = w.connection_name();
  const v1::WebhookHealth& h = w.health();
  json::array hours;
  for (const v1::HourlyAttempts& hour : h.hours()) {
    hours.push_back(json::object{
        {"start", FormatRfc3339(hour.hour_start())}, {"succeeded", hour.succeeded()}, {"failed", hour.failed()}});
  }
  const int total = h.attempts_succeeded_24h() + h.attempts_failed_24h();
  json::object health{{"succeeded24h", h.attempts_succeeded_24h()},
                      {"failed24h", h.attempts_failed_24h()},
                      {"successRate", total == 0 ? json::value(nullptr)
                                                 : json::value(static_cast<double>(h.attempts_succeeded_24h()) / total)},
                      {"pendingDeliveries", h.pending_deliveries()},
                      {"hours", std::move(hours)}};
  out["health"] = std::move(health);
  return out;
}

json::object KnownCapabilitiesJson() {
  std::set<std::string> names;
  for (payload::ResourceKind kind : {payload::ResourceKind::kBooking, payload::ResourceKind::kOrder,
                                     payload::ResourceKind::kAvailability, payload::ResourceKind::kProduct}) {
    for (const auto& [capability, paths] : payload::CapabilityFields(kind)) names.insert(capability);
  }
  for (const auto& [has, grants] : payload::kCapabilityAliases) names.emplace(has);
  json::array out;
  for (const std::string& n : names) out.emplace_back(n);
  return json::object{{"capabilities", std::move(out)}};
}

namespace {

absl::StatusOr<json::object> ObjectBody(std::string_view body) {
  absl::StatusOr<json::value> doc = ParseJsonBody(body);
  if (!doc.ok()) return doc.status();
  if (!doc->is_object()) return absl::InvalidArgumentError("The request body must be a JSON object");
  return std::move(doc->as_object());
}

}  // namespace

absl::StatusOr<v1::LoginRequest> ParseLoginBody(std::string_view body) {
  absl::StatusOr<json::object> o = ObjectBody(body);
  if (!o.ok()) return o.status();
  v1::LoginRequest out;
  for (const auto& m : *o) {
    if (!m.value().is_string()) return absl::InvalidArgumentError(absl::StrCat(std::string(m.key()), ": must be a string"));
    if (m.key() == "name") {
      out.set_name(std::string(m.value().get_string()));
    } else if (m.key() == "password") {
      out.set_password(std::string(m.value().get_string()));
    } else {
      return absl::InvalidArgumentError("Unknown field; allowed: name, password");
    }
  }
  if (out.name().empty()) return absl::InvalidArgumentError("name: is required");
  if (out.password().empty()) return absl::InvalidArgumentError("password: is required");
  return out;
}

absl::StatusOr<v1::ListSupplierWebhooksRequest> ParseWebhookFilter(std::string_view target) {
  v1::ListSupplierWebhooksRequest out;
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::set<std::string> seen;
  for (absl::string_view pair : absl::StrSplit(AbslView(target.substr(q + 1)), '&', absl::SkipEmpty())) {
    const std::size_t eq = pair.find('=');
    const std::string name(pair.substr(0, eq));
    const std::string value(eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1));
    if (!seen.insert(name).second) return absl::InvalidArgumentError(absl::StrCat(name, ": given twice"));
    // Printable ASCII only: other bytes would reach the service in a
    // protobuf string, which must be UTF-8, and fail there as an internal error.
    const bool printable = std::all_of(value.begin(), value.end(), [](char c) { return c > ' ' && c < 0x7f; });
    if (!printable || value.find_first_of("%+") != std::string::npos || value.size() > 100) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": not a valid value"));
    }
    if (name == "connectionId") {
      out.set_connection_id(value);
    } else if (name == "event") {
      out.set_event(value);
    } else if (name == "status") {
      if (value == "enabled") {
        out.set_status(v1::WEBHOOK_STATUS_ENABLED);
      } else if (value == "disabled") {
        out.set_status(v1::WEBHOOK_STATUS_DISABLED);
      } else if (!value.empty()) {
        return absl::InvalidArgumentError("status: must be enabled or disabled");
      }
    } else {
      return absl::InvalidArgumentError("Unknown query parameter; allowed: connectionId, event, status");
    }
  }
  return out;
}

absl::StatusOr<v1::CreateWebhookRequest> ParseDashboardCreateBody(std::string_view body) {
  absl::StatusOr<json::object> o = ObjectBody(body);
  if (!o.ok()) return o.status();
  std::string connection_id;
  std::vector<std::string> capabilities;
  if (const json::value* c = o->if_contains("connectionId")) {
    if (!c->is_string()) return absl::InvalidArgumentError("connectionId: must be a string");
    connection_id = std::string(c->get_string());
    o->erase("connectionId");
  }
  if (connection_id.empty()) return absl::InvalidArgumentError("connectionId: select a connection");
  if (const json::value* c = o->if_contains("capabilities")) {
    if (!c->is_array()) return absl::InvalidArgumentError("capabilities: must be an array of strings");
    for (const json::value& v : c->get_array()) {
      if (!v.is_string()) return absl::InvalidArgumentError("capabilities: must be an array of strings");
      capabilities.emplace_back(v.get_string());
    }
    o->erase("capabilities");
  }
  absl::StatusOr<v1::CreateWebhookRequest> out = ParseCreateWebhookBody(JsonText(*o));
  if (!out.ok()) return out.status();
  out->set_connection_id(connection_id);
  for (std::string& c : capabilities) out->add_capabilities(std::move(c));
  return out;
}

}  // namespace octo::gateway
