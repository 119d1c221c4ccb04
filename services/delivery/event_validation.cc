#include "services/delivery/event_validation.h"

#include <algorithm>
#include <map>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "services/common/strings.h"
#include "services/common/validation.h"
#include "services/delivery/payload/json_parse.h"
#include "services/delivery/payload/json_pointer.h"
#include "services/delivery/payload/json_text.h"
#include "services/delivery/payload/resource_key.h"

namespace octo::delivery {
namespace {

namespace pb = ::octo::webhooks::v1;

// google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z.
constexpr std::int64_t kMinTimestampSeconds = -62135596800LL;
constexpr std::int64_t kMaxTimestampSeconds = 253402300799LL;

// Builds "<prefix><field>: <message>" errors.
class Errors {
 public:
  explicit Errors(std::string_view prefix) : prefix_(prefix) {}

  template <typename... Parts>
  absl::Status Invalid(std::string_view field, const Parts&... parts) const {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(prefix_), AbslView(field), ": ", parts...));
  }

 private:
  std::string_view prefix_;
};

bool HasControlCharacters(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// A short, printable rendering of untrusted text for an error message.
std::string Quote(std::string_view s) {
  constexpr std::size_t kMax = 40;
  std::string shown = absl::CHexEscape(AbslView(s.substr(0, kMax)));
  return absl::StrCat("\"", shown, s.size() > kMax ? "...\"" : "\"");
}

// A bounded text field without control characters; `required` rejects "".
absl::Status CheckText(const Errors& errors, std::string_view field, std::string_view value,
                       std::size_t max_bytes, bool required) {
  if (value.empty()) {
    return required ? errors.Invalid(field, "required") : absl::OkStatus();
  }
  if (value.size() > max_bytes) {
    return errors.Invalid(field, "at most ", max_bytes, " bytes, got ", value.size());
  }
  if (HasControlCharacters(value)) {
    return errors.Invalid(field, "must not contain control characters");
  }
  return absl::OkStatus();
}

// Parses `text` (at most kMaxResourceJsonBytes) into `out`.
absl::Status ParseJson(const Errors& errors, std::string_view field, std::string_view text,
                       const boost::json::storage_ptr& storage, boost::json::value& out) {
  if (text.size() > kMaxResourceJsonBytes) {
    return errors.Invalid(field, "at most ", kMaxResourceJsonBytes, " bytes, got ", text.size());
  }
  std::error_code ec;
  out = payload::ParseJsonText(text, ec, storage);
  if (ec) return errors.Invalid(field, "not valid JSON (", ec.message(), ")");
  return absl::OkStatus();
}

absl::Status CheckDiff(const Errors& errors, const boost::json::value& diff) {
  const boost::json::array* ops = diff.if_array();
  if (ops == nullptr) return errors.Invalid("diff_json", "must be a JSON array of diff ops");
  if (ops->size() > kMaxDiffOps) {
    return errors.Invalid("diff_json", "at most ", kMaxDiffOps, " ops, got ", ops->size());
  }
  for (std::size_t i = 0; i < ops->size(); ++i) {
    const std::string field = absl::StrCat("diff_json[", i, "]");
    const boost::json::object* op = (*ops)[i].if_object();
    if (op == nullptr) return errors.Invalid(field, "must be an object");
    const boost::json::value* name = op->if_contains("op");
    if (name == nullptr || !name->is_string() ||
        (name->get_string() != "add" && name->get_string() != "remove" &&
         name->get_string() != "replace")) {
      return errors.Invalid(field, "\"op\" must be \"add\", \"remove\" or \"replace\"");
    }
    const boost::json::value* path = op->if_contains("path");
    if (path == nullptr || !path->is_string() ||
        !payload::ParsePointer(
            std::string_view(path->get_string().data(), path->get_string().size()))) {
      return errors.Invalid(field, "\"path\" must be a JSON pointer string (\"/status\")");
    }
    if (name->get_string() != "remove" && op->if_contains("value") == nullptr) {
      return errors.Invalid(field, "\"", std::string(name->get_string()), "\" needs a \"value\"");
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsLanguageTag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxLanguageTagBytes) return false;
  std::size_t start = 0;
  bool first = true;
  while (true) {
    const std::size_t end = std::min(tag.find('-', start), tag.size());
    const std::string_view subtag = tag.substr(start, end - start);
    const std::size_t min = first ? 2 : 1;
    if (subtag.size() < min || subtag.size() > 8) return false;
    for (char c : subtag) {
      const auto u = static_cast<unsigned char>(c);
      if (first ? !absl::ascii_isalpha(u) : !absl::ascii_isalnum(u)) return false;
    }
    if (end == tag.size()) return true;
    start = end + 1;
    first = false;
  }
}

absl::StatusOr<ValidEvent> ValidateEvent(const pb::PublishEventRequest& event,
                                         std::string_view field_prefix,
                                         const boost::json::storage_ptr& storage) {
  const Errors errors(field_prefix);
  ValidEvent valid;

  if (absl::Status s = CheckText(errors, "idempotency_key", event.idempotency_key(),
                                 kMaxIdempotencyKeyBytes, /*required=*/true);
      !s.ok()) {
    return s;
  }
  if (event.supplier_id().empty()) return errors.Invalid("supplier_id", "required");
  if (!IsUuid(event.supplier_id())) return errors.Invalid("supplier_id", "must be a UUID");
  if (!event.connection_id().empty() && !IsUuid(event.connection_id())) {
    return errors.Invalid("connection_id", "must be a UUID or empty");
  }
  const std::optional<payload::ResourceKind> kind = payload::ResourceKindForEvent(event.event());
  if (!kind) {
    return errors.Invalid("event",
                          "must be one of booking_update, order_update, availability_update, "
                          "product_update; got ",
                          Quote(event.event()));
  }
  valid.kind = *kind;

  // availability_update: productId and optionId go beside "availability".
  const bool availability = *kind == payload::ResourceKind::kAvailability;
  for (const auto& [field, value] :
       {std::pair<std::string_view, const std::string&>{"product_id", event.product_id()},
        {"option_id", event.option_id()}}) {
    if (availability) {
      if (absl::Status s = CheckText(errors, field, value, kMaxProductIdBytes, /*required=*/true);
          !s.ok()) {
        return s;
      }
    } else if (!value.empty()) {
      return errors.Invalid(field, "only for availability_update");
    }
  }

  if (event.resource_json().empty()) return errors.Invalid("resource_json", "required");
  // Parsed into its own value and moved into the result at the end: a
  // boost::json assignment copies into the target's storage when the two
  // differ, a move construction keeps the source's.
  boost::json::value resource(storage);
  if (absl::Status s = ParseJson(errors, "resource_json", event.resource_json(), storage, resource);
      !s.ok()) {
    return s;
  }
  if (!resource.is_object()) return errors.Invalid("resource_json", "must be a JSON object");

  // Localized variants: sorted by tag (a protobuf map has no order) into one
  // object whose values are the publisher's texts byte for byte.
  const auto& localized = event.localized_resource_json();
  if (localized.size() > kMaxLocalizedVariants) {
    return errors.Invalid("localized_resource_json", "at most ", kMaxLocalizedVariants,
                          " variants, got ", localized.size());
  }
  std::map<std::string, const std::string*> variants;
  std::map<std::string, std::string> lowercase_tags;
  for (const auto& [tag, text] : localized) {
    if (!IsLanguageTag(tag)) {
      return errors.Invalid("localized_resource_json",
                            "keys must be BCP 47 language tags (\"de\", \"en-GB\"); got ",
                            Quote(tag));
    }
    const std::string field = absl::StrCat("localized_resource_json[", tag, "]");
    if (auto [it, inserted] = lowercase_tags.emplace(absl::AsciiStrToLower(tag), tag); !inserted) {
      return errors.Invalid(field, "the same language as \"", it->second, "\"");
    }
    boost::json::value parsed(storage);
    if (text.empty()) return errors.Invalid(field, "required");
    if (absl::Status s = ParseJson(errors, field, text, storage, parsed); !s.ok()) return s;
    if (!parsed.is_object()) return errors.Invalid(field, "must be a JSON object");
    variants.emplace(tag, &text);
  }
  valid.localized_json = "{";
  for (const auto& [tag, text] : variants) {
    if (valid.localized_json.size() > 1) valid.localized_json.push_back(',');
    payload::AppendJsonString(tag, valid.localized_json);
    valid.localized_json.push_back(':');
    valid.localized_json.append(*text);
  }
  valid.localized_json.push_back('}');

  if (event.has_diff_json()) {
    boost::json::value diff(storage);
    if (absl::Status s = ParseJson(errors, "diff_json", event.diff_json(), storage, diff); !s.ok())
      return s;
    if (absl::Status s = CheckDiff(errors, diff); !s.ok()) return s;
  }

  if (!event.has_occurred_at()) return errors.Invalid("occurred_at", "required");
  const auto& at = event.occurred_at();
  if (at.seconds() < kMinTimestampSeconds || at.seconds() > kMaxTimestampSeconds ||
      at.nanos() < 0 || at.nanos() > 999999999) {
    return errors.Invalid("occurred_at", "not a valid timestamp (0001-01-01..9999-12-31)");
  }
  valid.occurred_at_micros = at.seconds() * 1000000 + at.nanos() / 1000;

  if (!event.resource_key().empty()) {
    if (absl::Status s = CheckText(errors, "resource_key", event.resource_key(),
                                   kMaxResourceKeyBytes, /*required=*/true);
        !s.ok()) {
      return s;
    }
    valid.resource_key = event.resource_key();
  } else {
    absl::StatusOr<std::string> key =
        payload::ResourceKey(*kind, resource, event.product_id(), event.option_id());
    if (!key.ok()) {
      return errors.Invalid("resource_json", key.status().message(),
                            "; or set resource_key to identify the resource");
    }
    if (key->size() > kMaxResourceKeyBytes || HasControlCharacters(*key)) {
      return errors.Invalid("resource_json", "the resource's identity is longer than ",
                            kMaxResourceKeyBytes,
                            " bytes or holds control characters; set resource_key");
    }
    valid.resource_key = *std::move(key);
  }
  return ValidEvent{valid.kind, std::move(valid.resource_key), std::move(resource),
                    std::move(valid.localized_json), valid.occurred_at_micros};
}

}  // namespace octo::delivery
