#include "services/delivery/payload/resource_key.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "services/common/strings.h"
#include "services/delivery/payload/json_pointer.h"

namespace octo::payload {
namespace {

absl::StatusOr<std::string> StringMember(const boost::json::value& resource, std::string_view kind,
                                         std::string_view member) {
  const boost::json::object* object = resource.if_object();
  if (object == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(AbslView(kind), ": the resource is not a JSON object"));
  }
  const boost::json::value* field = object->if_contains(member);
  if (field == nullptr || !field->is_string() || field->get_string().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(kind), ": the resource has no ", AbslView(member), " (a non-empty string)"));
  }
  return std::string(field->get_string());
}

}  // namespace

absl::StatusOr<std::string> ResourceKey(ResourceKind kind, const boost::json::value& resource,
                                        std::string_view product_id, std::string_view option_id) {
  switch (kind) {
    case ResourceKind::kBooking:
      return StringMember(resource, "booking", "uuid");
    case ResourceKind::kOrder:
      return StringMember(resource, "order", "id");
    case ResourceKind::kProduct:
      return StringMember(resource, "product", "id");
    case ResourceKind::kAvailability: {
      if (product_id.empty()) return absl::InvalidArgumentError("availability: productId is required");
      if (option_id.empty()) return absl::InvalidArgumentError("availability: optionId is required");
      absl::StatusOr<std::string> id = StringMember(resource, "availability", "id");
      if (!id.ok()) return id.status();
      return absl::StrCat(EscapePointerToken(product_id), "/", EscapePointerToken(option_id), "/",
                          EscapePointerToken(*id));
    }
  }
  return absl::InvalidArgumentError("unknown resource kind");
}

absl::StatusOr<std::string> ResourceKey(std::string_view resource_kind, const boost::json::value& resource,
                                        std::string_view product_id, std::string_view option_id) {
  const auto kind = ParseResourceKind(resource_kind);
  if (!kind) {
    return absl::InvalidArgumentError(absl::StrCat("unknown resource kind \"", AbslView(resource_kind), "\""));
  }
  return ResourceKey(*kind, resource, product_id, option_id);
}

}  // namespace octo::payload
