#pragma once
// The body of a delivery, byte for byte:
//   {"webhook":{"id","event","url","retryOnError","useContactLanguage","headers","capabilities"},
//    "<booking|order|availability|product>":{...},
//    "productId":"...","optionId":"...",   (availability only: Ventrata's AvailabilityUpdate)
//    "diff":[...],                          (every kind but availability)
//    "supplier":{"id","name","endpoint","contact":{"website","email","telephone","address"}}}
// Compact (SerializeCompact, json_text.h), the resource's keys in the order
// published.
#include <map>
#include <string>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "services/delivery/payload/resource_kind.h"

namespace octo::payload {

struct WebhookSummary {
  std::string id;
  std::string event;
  std::string url;  // as stored: credentials are masked in the body
  bool retry_on_error = true;
  bool use_contact_language = true;
  std::map<std::string, std::string> headers;  // values are masked in the body
  std::vector<std::string> capabilities;       // also drive the projection
};

struct SupplierContact {  // an empty string renders as null
  std::string website;
  std::string email;
  std::string telephone;
  std::string address;
};

struct SupplierProfile {
  std::string id;
  std::string name;
  std::string endpoint;
  SupplierContact contact;
};

struct DeliveryPayloadInput {
  WebhookSummary webhook;
  ResourceKind kind = ResourceKind::kBooking;
  // The resource (or the chosen language variant) as published, with every
  // capability, and the full diff: RenderDeliveryBody projects both to the
  // webhook's capabilities (projecting twice changes nothing).
  boost::json::value resource;
  boost::json::array diff;
  // When set, rendered instead of `resource` / `diff`, which are then
  // ignored: the dispatcher renders many deliveries of one event from the
  // same parsed values without copying them (they must outlive the call).
  const boost::json::value* resource_ref = nullptr;
  const boost::json::array* diff_ref = nullptr;
  std::string product_id;  // availability only
  std::string option_id;   // availability only
  SupplierProfile supplier;
};

// The "webhook" object of the body (also what the body's consumers see as
// the webhook): url credentials masked, header values masked.
boost::json::object RenderWebhookObject(const WebhookSummary& webhook);
boost::json::object RenderSupplierObject(const SupplierProfile& supplier);

std::string RenderDeliveryBody(const DeliveryPayloadInput& input);

}  // namespace octo::payload
