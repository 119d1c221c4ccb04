#pragma once
// Capability projection: a webhook receives only the fields of the
// capabilities it was created with.
//
// The table (capability -> JSON paths, per resource kind) is
// capability_fields.json in this directory, embedded into the library at
// build time. scripts/gen_capabilities.py derives it from OCTO's TypeScript
// types (npm @octocloud/types: one interface per capability, the authority
// for octo/*) and Ventrata's OCTO OpenAPI document (x-capability-data, for
// the vendor capabilities and octo/* ones the types do not describe);
// scripts/check_capabilities.sh, a maintainer's command, checks it. Paths are dot-separated property names,
// `[]` standing for "every element of this array": "unitItems[].pricing".
//
// A field is kept when it belongs to no capability, or when the webhook has
// at least one of the capabilities it is listed under (after aliases).
//
// Aliases (kCapabilityAliases): Ventrata's document files the older content
// fields (meetingPoint, duration, option title, ...) under
// `ventrata/content`, OCTO's own tooling under `octo/content`; a webhook
// with `octo/content` therefore also keeps the `ventrata/content` fields.
// (Not the other way round: `ventrata/content` does not grant the newer
// octo/content fields.)
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "services/delivery/payload/resource_kind.h"

namespace octo::payload {

// {capability a webhook has, capability it also grants}.
inline constexpr std::pair<std::string_view, std::string_view> kCapabilityAliases[] = {
    {"octo/content", "ventrata/content"},
};

// The webhook's capabilities plus those its aliases grant (deduplicated,
// order kept).
std::vector<std::string> EffectiveCapabilities(const std::vector<std::string>& webhook_capabilities);

// The embedded table, as parsed: kind -> capability -> sorted paths.
// For inspection and tests; projection uses a prepared form of it.
const std::vector<std::pair<std::string, std::vector<std::string>>>& CapabilityFields(ResourceKind kind);
// The raw embedded capability_fields.json.
std::string_view CapabilityFieldsJson();

// A copy of `full` without the fields of capabilities the webhook lacks.
// Object key order is kept. Values that do not have the shape the table
// expects (a scalar where an object is described, ...) are copied as they are.
boost::json::value ProjectResource(ResourceKind kind, const boost::json::value& full,
                                   const std::vector<std::string>& webhook_capabilities);
// Same, by name ("booking" | "order" | "availability" | "product"); an
// unknown kind has no table and is returned unchanged.
boost::json::value ProjectResource(std::string_view resource_kind, const boost::json::value& full,
                                   const std::vector<std::string>& webhook_capabilities);

// Appends SerializeCompact(ProjectResource(kind, full, caps)) to `out`
// without building the projected copy (what RenderDeliveryBody uses).
void AppendProjectedResource(ResourceKind kind, const boost::json::value& full,
                             const std::vector<std::string>& webhook_capabilities, std::string& out);

// The diff as the webhook may see it: ops whose path is (under) a removed
// field are dropped; the `value`/`was` of the remaining ops are projected
// like the resource at their path (an op replacing `/unitItems/0` loses the
// item's `pricing` just as the resource does). Ops that are not objects or
// whose path is not a JSON pointer are kept unchanged.
boost::json::array ProjectDiff(ResourceKind kind, const boost::json::array& diff,
                               const std::vector<std::string>& webhook_capabilities);
boost::json::array ProjectDiff(std::string_view resource_kind, const boost::json::array& diff,
                               const std::vector<std::string>& webhook_capabilities);

}  // namespace octo::payload
