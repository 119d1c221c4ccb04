#include "gateway/notifications_json.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gateway/octo_error.h"
#include "gateway/string_views.h"
#include "gateway/webhook_json.h"

namespace octo::gateway {

namespace json = boost::json;
namespace v1 = octo::webhooks::v1;

namespace {

constexpr std::string_view kDialect = "notification";
constexpr std::size_t kMaxEchoedBytes = 100;
constexpr std::size_t kMaxTypes = 10;  // before de-duplication

struct SubscriptionFields {
  const json::string* url = nullptr;
  std::vector<std::string> events;  // internal names, in order, distinct
  bool has_types = false;           // notificationTypes or notificationType given
  const json::object* headers = nullptr;
  std::optional<bool> active;
  std::optional<bool> retry_on_error;
};

absl::Status TypeError(std::string_view field, std::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(AbslView(field), ": must be ", AbslView(expected)));
}

absl::Status AddType(std::string_view field, const json::value& value, SubscriptionFields& fields) {
  const json::string* s = value.if_string();
  if (s == nullptr) return TypeError(field, field == "notificationType" ? "a string" : "an array of strings");
  std::optional<std::string> event = EventForNotificationType(std::string_view(*s));
  if (!event) {
    return absl::InvalidArgumentError(absl::StrCat(
        AbslView(field), ": '", PrintableAscii(std::string_view(*s), kMaxEchoedBytes),
        "' is not one of BOOKING_UPDATE, AVAILABILITY_UPDATE, PRODUCT_UPDATE"));
  }
  if (std::find(fields.events.begin(), fields.events.end(), *event) == fields.events.end()) {
    fields.events.push_back(*std::move(event));
  }
  return absl::OkStatus();
}

absl::Status ParseMember(std::string_view key, const json::value& value, SubscriptionFields& fields) {
  if (key == "url") {
    fields.url = value.if_string();
    if (fields.url == nullptr) return TypeError(key, "a string");
  } else if (key == "notificationTypes" || key == "notification_types") {
    const json::array* types = value.if_array();
    if (types == nullptr) return TypeError(key, "an array of strings");
    if (types->size() > kMaxTypes) return TypeError(key, "an array of at most 10 types");
    fields.has_types = true;
    for (const json::value& type : *types) {
      if (absl::Status s = AddType(key, type, fields); !s.ok()) return s;
    }
  } else if (key == "notificationType") {
    fields.has_types = true;
    if (absl::Status s = AddType(key, value, fields); !s.ok()) return s;
  } else if (key == "headers") {
    fields.headers = value.if_object();
    if (fields.headers == nullptr) return TypeError(key, "an object of strings");
    for (const auto& header : *fields.headers) {
      if (!header.value().is_string()) return TypeError(key, "an object of strings");
    }
  } else if (key == "active" || key == "retryOnError") {
    if (!value.is_bool()) return TypeError(key, "a boolean");
    (key == "active" ? fields.active : fields.retry_on_error) = value.get_bool();
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "Unknown field '", TruncateUtf8(key, kMaxEchoedBytes),
        "'; allowed: url, notificationTypes, notificationType, headers, active, retryOnError"));
  }
  return absl::OkStatus();
}

// `doc` owns what the returned pointers refer to.
absl::StatusOr<SubscriptionFields> ParseFields(std::string_view body, json::value& doc) {
  boost::system::error_code ec;
  doc = json::parse(body, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("The request body is not valid JSON: ", ec.message()));
  }
  const json::object* object = doc.if_object();
  if (object == nullptr) return absl::InvalidArgumentError("The request body must be a JSON object");
  SubscriptionFields fields;
  for (const auto& member : *object) {
    if (absl::Status s = ParseMember(member.key(), member.value(), fields); !s.ok()) return s;
  }
  if (fields.has_types && fields.events.empty()) {
    return absl::InvalidArgumentError(
        "notificationTypes: at least one of BOOKING_UPDATE, AVAILABILITY_UPDATE, PRODUCT_UPDATE is "
        "required");
  }
  return fields;
}

template <typename Map>
void CopyHeaders(const json::object& headers, Map& out) {
  for (const auto& header : headers) out[std::string(header.key())] = std::string(header.value().get_string());
}

}  // namespace

std::optional<std::string> EventForNotificationType(std::string_view type) {
  const std::string lower = absl::AsciiStrToLower(AbslView(type));
  if (lower == "booking_update" || lower == "availability_update" || lower == "product_update") {
    return lower;
  }
  return std::nullopt;
}

std::string NotificationTypeForEvent(std::string_view event) {
  return absl::AsciiStrToUpper(AbslView(event));
}

absl::StatusOr<v1::CreateWebhookRequest> ParseCreateSubscriptionBody(std::string_view body) {
  json::value doc;
  absl::StatusOr<SubscriptionFields> fields = ParseFields(body, doc);
  if (!fields.ok()) return fields.status();
  if (fields->url == nullptr) return absl::InvalidArgumentError("url: is required");
  if (!fields->has_types) {
    return absl::InvalidArgumentError(
        "notificationTypes: is required (one or more of BOOKING_UPDATE, AVAILABILITY_UPDATE, "
        "PRODUCT_UPDATE)");
  }
  v1::CreateWebhookRequest request;
  request.set_dialect(std::string(kDialect));
  request.set_url(std::string(*fields->url));
  for (const std::string& event : fields->events) request.add_event_types(event);
  if (fields->headers != nullptr) CopyHeaders(*fields->headers, *request.mutable_headers());
  if (fields->active) request.set_active(*fields->active);
  if (fields->retry_on_error) request.set_retry_on_error(*fields->retry_on_error);
  return request;
}

absl::StatusOr<v1::UpdateWebhookRequest> ParseUpdateSubscriptionBody(std::string_view body) {
  json::value doc;
  absl::StatusOr<SubscriptionFields> fields = ParseFields(body, doc);
  if (!fields.ok()) return fields.status();
  v1::UpdateWebhookRequest request;
  request.set_dialect(std::string(kDialect));
  if (fields->url != nullptr) request.set_url(std::string(*fields->url));
  if (fields->has_types) {
    for (const std::string& event : fields->events) request.mutable_event_types()->add_values(event);
  }
  if (fields->headers != nullptr) CopyHeaders(*fields->headers, *request.mutable_headers()->mutable_values());
  if (fields->active) request.set_active(*fields->active);
  if (fields->retry_on_error) request.set_retry_on_error(*fields->retry_on_error);
  return request;
}

json::object SubscriptionToJson(const v1::Webhook& webhook, std::string_view secret) {
  // The webhook rendering has every field we share; the subscription shape
  // keeps those and names the types its own way.
  json::object shared = WebhookToJson(webhook, secret);
  json::object out;
  out["id"] = webhook.id();
  out["url"] = webhook.url();
  json::array types;
  for (const std::string& event : webhook.event_types()) types.emplace_back(NotificationTypeForEvent(event));
  if (types.empty()) types.emplace_back(NotificationTypeForEvent(webhook.event()));
  out["notificationType"] = types.front();
  out["notificationTypes"] = std::move(types);
  out["headers"] = shared["headers"];
  out["active"] = webhook.status() == v1::WEBHOOK_STATUS_ENABLED;
  out["retryOnError"] = webhook.retry_on_error();
  for (std::string_view key : {"status", "createdAt", "updatedAt", "disabledReason", "disabledAt",
                               "failingSince", "previousSecretExpiresAt", "secret"}) {
    if (const json::value* v = shared.if_contains(key)) out[key] = *v;
  }
  return out;
}

}  // namespace octo::gateway
