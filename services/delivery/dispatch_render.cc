#include "services/delivery/dispatch_render.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/strings.h"
#include "services/delivery/payload/json_parse.h"
#include "services/delivery/payload/locale.h"
#include "services/delivery/payload/notification_body.h"
#include "services/delivery/payload/render.h"
#include "services/delivery/payload/signing.h"

#ifndef OCTO_WEBHOOKS_VERSION
#define OCTO_WEBHOOKS_VERSION "0.0.0"
#endif

namespace octo::delivery {
namespace {

absl::StatusOr<boost::json::value> ParseJson(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  boost::json::value v = payload::ParseJsonText(text, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("stored ", AbslView(what), " is not valid JSON"));
  return v;
}

std::string StringField(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(boost::json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->get_string());
}

// A header line libcurl sends as given ("Name;" is its syntax for an empty value).
std::string HeaderLine(std::string_view name, std::string_view value) {
  if (value.empty()) return absl::StrCat(AbslView(name), ";");
  return absl::StrCat(AbslView(name), ": ", AbslView(value));
}

// Defence in depth: the subscription service validates headers at creation;
// a stored header that could split the request is never sent.
bool SafeHeader(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f || c == ':' || c == ';') return false;
  }
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<ParsedEvent> ParseClaimedEvent(const ClaimedEvent& event) {
  ParsedEvent out;
  std::optional<payload::ResourceKind> kind = payload::ParseResourceKind(event.resource_kind);
  if (!kind.has_value()) return absl::InvalidArgumentError("stored event has an unknown resource kind");
  out.kind = *kind;
  absl::StatusOr<boost::json::value> resource = ParseJson(event.resource_json, "resource");
  if (!resource.ok()) return resource.status();
  out.resource = std::move(*resource);
  absl::StatusOr<boost::json::value> localized = ParseJson(event.localized_json, "localized resources");
  if (!localized.ok()) return localized.status();
  if (!localized->is_object()) return absl::InvalidArgumentError("stored localized resources are not an object");
  out.localized = std::move(localized->get_object());
  out.locale_tags.reserve(out.localized.size());
  for (const auto& kv : out.localized) out.locale_tags.emplace_back(kv.key());
  absl::StatusOr<boost::json::value> diff = ParseJson(event.diff_json, "diff");
  if (!diff.ok()) return diff.status();
  if (!diff->is_array()) return absl::InvalidArgumentError("stored diff is not an array");
  out.diff = std::move(diff->get_array());
  out.product_id = event.product_id;
  out.option_id = event.option_id;
  out.test = event.event == "webhook_test";
  out.occurred_at_us = event.occurred_at_us;
  out.notification_date_start = event.notification_date_start;
  out.notification_date_end = event.notification_date_end;
  return out;
}

std::string WebhookMessageId(std::string_view delivery_id) {
  std::string id = "msg_";
  id.reserve(4 + delivery_id.size());
  for (char c : delivery_id) {
    if (c != '-') id += absl::ascii_tolower(static_cast<unsigned char>(c));
  }
  return id;
}

std::string_view UserAgent() {
  static const std::string kUserAgent = absl::StrCat("octo-webhooks/", OCTO_WEBHOOKS_VERSION);
  return kUserAgent;
}

absl::StatusOr<OutgoingRequest> RenderRequest(const ClaimedDelivery& delivery, const ParsedEvent& event,
                                              int64_t timestamp) {
  payload::DeliveryPayloadInput input;
  payload::WebhookSummary& webhook = input.webhook;
  webhook.id = delivery.webhook_id;
  webhook.event = delivery.webhook_event;
  webhook.url = delivery.url;
  webhook.retry_on_error = delivery.retry_on_error;
  webhook.use_contact_language = delivery.use_contact_language;

  absl::StatusOr<boost::json::value> headers = ParseJson(delivery.headers_json, "webhook headers");
  if (!headers.ok()) return headers.status();
  if (!headers->is_object()) return absl::InvalidArgumentError("stored webhook headers are not an object");
  for (const auto& kv : headers->get_object()) {
    if (!kv.value().is_string()) return absl::InvalidArgumentError("stored webhook header is not a string");
    webhook.headers.emplace(std::string(kv.key()), std::string(kv.value().get_string()));
  }
  absl::StatusOr<boost::json::value> capabilities = ParseJson(delivery.capabilities_json, "webhook capabilities");
  if (!capabilities.ok()) return capabilities.status();
  if (!capabilities->is_array()) return absl::InvalidArgumentError("stored webhook capabilities are not an array");
  for (const boost::json::value& c : capabilities->get_array()) {
    if (!c.is_string()) return absl::InvalidArgumentError("stored webhook capability is not a string");
    webhook.capabilities.emplace_back(c.get_string());
  }

  absl::StatusOr<boost::json::value> contact = ParseJson(delivery.supplier_contact_json, "supplier contact");
  if (!contact.ok()) return contact.status();
  input.supplier.id = delivery.supplier_id;
  input.supplier.name = delivery.supplier_name;
  input.supplier.endpoint = delivery.supplier_endpoint;
  if (contact->is_object()) {
    const boost::json::object& c = contact->get_object();
    input.supplier.contact.website = StringField(c, "website");
    input.supplier.contact.email = StringField(c, "email");
    input.supplier.contact.telephone = StringField(c, "telephone");
    input.supplier.contact.address = StringField(c, "address");
  }

  // useContactLanguage: the guest's variant, when the publisher sent one.
  std::optional<std::string> language;
  const boost::json::value* resource = &event.resource;
  if (delivery.use_contact_language && !event.locale_tags.empty()) {
    language = payload::SelectContactLocale(event.resource, event.locale_tags);
    if (language.has_value()) {
      const boost::json::value* variant = event.localized.if_contains(*language);
      if (variant != nullptr) {
        resource = variant;
      } else {
        language.reset();
      }
    }
  }
  input.kind = event.kind;
  // By reference: the event is shared by its deliveries and outlives this.
  input.resource_ref = resource;
  input.diff_ref = &event.diff;
  input.product_id = event.product_id;
  input.option_id = event.option_id;

  OutgoingRequest request;
  const std::string message_id = WebhookMessageId(delivery.id);
  if (delivery.dialect == "notification") {
    // Thin: ids to fetch again, never the resource (no language variant).
    language.reset();
    request.body = payload::RenderNotificationBody(
        {message_id, event.kind, &event.resource, event.product_id, event.notification_date_start,
         event.notification_date_end, event.occurred_at_us, event.test});
  } else {
    request.body = payload::RenderDeliveryBody(input);
  }
  // During a secret rotation's grace period the old secret signs too, after
  // the new one: "v1,<new> v1,<old>" (Standard Webhooks).
  std::vector<std::string> secrets = {delivery.secret};
  if (!delivery.previous_secret.empty()) secrets.push_back(delivery.previous_secret);
  absl::StatusOr<std::string> signature = payload::SignatureHeader(message_id, timestamp, request.body, secrets);
  if (!signature.ok()) return absl::InvalidArgumentError("the webhook's signing secret does not decode");

  payload::UrlAuth auth = payload::BasicAuthFromUrl(delivery.url);
  request.url = std::move(auth.url);

  const auto custom_has = [&](std::string_view name) {
    for (const auto& [n, v] : webhook.headers) {
      if (absl::EqualsIgnoreCase(n, AbslView(name))) return true;
    }
    return false;
  };
  std::vector<std::string>& h = request.headers;
  h.reserve(8 + webhook.headers.size());
  h.push_back("Content-Type: application/json");
  if (!custom_has("User-Agent")) h.push_back(HeaderLine("User-Agent", UserAgent()));
  for (const auto& [name, value] : webhook.headers) {
    if (auth.authorization.has_value() && absl::EqualsIgnoreCase(name, "Authorization")) continue;
    if (language.has_value() && absl::EqualsIgnoreCase(name, "Content-Language")) continue;
    if (absl::EqualsIgnoreCase(name, "Content-Type")) continue;  // only ever application/json: sent above
    if (!SafeHeader(name, value)) continue;
    h.push_back(HeaderLine(name, value));
  }
  if (auth.authorization.has_value()) h.push_back(HeaderLine("Authorization", *auth.authorization));
  if (language.has_value() && SafeHeader("Content-Language", *language)) {
    h.push_back(HeaderLine("Content-Language", *language));
  }
  h.push_back(HeaderLine("webhook-id", message_id));
  h.push_back(absl::StrCat("webhook-timestamp: ", timestamp));
  h.push_back(HeaderLine("webhook-signature", *signature));
  // Ordered delivery: the delivery's number among its resource's (not
  // signed, like every header: the signature covers id, timestamp, body).
  if (delivery.sequence > 0) h.push_back(absl::StrCat("webhook-sequence: ", delivery.sequence));
  return request;
}

}  // namespace octo::delivery
