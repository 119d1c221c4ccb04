#include "services/delivery/payload/render.h"

#include <boost/json/object.hpp>

#include "services/common/validation.h"
#include "services/delivery/payload/capabilities.h"
#include "services/delivery/payload/json_text.h"

namespace octo::payload {
namespace {

boost::json::value StringOrNull(const std::string& s) {
  if (s.empty()) return nullptr;
  return boost::json::value(s);
}

}  // namespace

boost::json::object RenderWebhookObject(const WebhookSummary& webhook) {
  boost::json::object headers;
  headers.reserve(webhook.headers.size());
  for (const auto& [name, value] : webhook.headers) headers.emplace(name, kMaskedValue);
  boost::json::array capabilities;
  capabilities.reserve(webhook.capabilities.size());
  for (const std::string& capability : webhook.capabilities) capabilities.emplace_back(capability);

  boost::json::object out;
  out.reserve(7);
  out.emplace("id", webhook.id);
  out.emplace("event", webhook.event);
  out.emplace("url", MaskUrlCredentials(webhook.url));
  out.emplace("retryOnError", webhook.retry_on_error);
  out.emplace("useContactLanguage", webhook.use_contact_language);
  out.emplace("headers", std::move(headers));
  out.emplace("capabilities", std::move(capabilities));
  return out;
}

boost::json::object RenderSupplierObject(const SupplierProfile& supplier) {
  boost::json::object contact;
  contact.reserve(4);
  contact.emplace("website", StringOrNull(supplier.contact.website));
  contact.emplace("email", StringOrNull(supplier.contact.email));
  contact.emplace("telephone", StringOrNull(supplier.contact.telephone));
  contact.emplace("address", StringOrNull(supplier.contact.address));
  boost::json::object out;
  out.reserve(4);
  out.emplace("id", supplier.id);
  out.emplace("name", supplier.name);
  out.emplace("endpoint", supplier.endpoint);
  out.emplace("contact", std::move(contact));
  return out;
}

namespace {

void AppendDiff(const DeliveryPayloadInput& input, std::string& out) {
  out += ",\"diff\":";
  const boost::json::array& diff = input.diff_ref != nullptr ? *input.diff_ref : input.diff;
  if (diff.empty()) {
    out += "[]";
  } else {
    AppendCompact(ProjectDiff(input.kind, diff, input.webhook.capabilities), out);
  }
}

}  // namespace

std::string RenderDeliveryBody(const DeliveryPayloadInput& input) {
  // Written as text directly: the (large) resource is projected while it is
  // serialized, never copied.
  std::string out;
  out.reserve(4096);
  out += "{\"webhook\":";
  AppendCompact(RenderWebhookObject(input.webhook), out);
  out += ',';
  AppendJsonString(ResourceKindName(input.kind), out);
  out += ':';
  AppendProjectedResource(input.kind, input.resource_ref != nullptr ? *input.resource_ref : input.resource,
                          input.webhook.capabilities, out);
  if (input.kind == ResourceKind::kAvailability) {
    // Ventrata's AvailabilityUpdate: webhook, availability, productId,
    // optionId, supplier, in that order, and nothing else (no diff).
    out += ",\"productId\":";
    AppendJsonString(input.product_id, out);
    out += ",\"optionId\":";
    AppendJsonString(input.option_id, out);
  } else {
    AppendDiff(input, out);
  }
  out += ",\"supplier\":";
  AppendCompact(RenderSupplierObject(input.supplier), out);
  out += '}';
  return out;
}

}  // namespace octo::payload
