#pragma once
// The identity of a resource, for its snapshots (the previous state a diff
// is computed against). Snapshots are keyed by (supplier, kind, key).
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "absl/status/statusor.h"
#include "services/delivery/payload/resource_kind.h"

namespace octo::payload {

// booking -> its "uuid"; order -> "id"; product -> "id"; availability ->
// "<productId>/<optionId>/<id>" from the two parameters (an availability
// body carries them beside the resource) and the availability's "id", each
// part escaped as a JSON pointer token (~ -> ~0, / -> ~1) so the key is
// unambiguous. INVALID_ARGUMENT when a part is missing, empty or not a string
// (and for an unknown kind name).
absl::StatusOr<std::string> ResourceKey(ResourceKind kind, const boost::json::value& resource,
                                        std::string_view product_id = {}, std::string_view option_id = {});
absl::StatusOr<std::string> ResourceKey(std::string_view resource_kind, const boost::json::value& resource,
                                        std::string_view product_id = {}, std::string_view option_id = {});

}  // namespace octo::payload
