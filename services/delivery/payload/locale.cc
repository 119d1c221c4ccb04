#include "services/delivery/payload/locale.h"

#include <string_view>

namespace octo::payload {
namespace {

std::string Normalize(std::string_view tag) {
  std::string out;
  out.reserve(tag.size());
  for (char c : tag) {
    if (c == '_') {
      out += '-';
    } else if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  // Surrounding blanks are not part of a tag.
  const auto first = out.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const auto last = out.find_last_not_of(" \t");
  return out.substr(first, last - first + 1);
}

std::string_view PrimaryLanguage(std::string_view normalized) { return normalized.substr(0, normalized.find('-')); }

}  // namespace

std::vector<std::string> ContactLocales(const boost::json::value& resource) {
  std::vector<std::string> out;
  const boost::json::object* object = resource.if_object();
  const boost::json::value* contact = object != nullptr ? object->if_contains("contact") : nullptr;
  const boost::json::value* locales =
      contact != nullptr && contact->is_object() ? contact->get_object().if_contains("locales") : nullptr;
  if (locales == nullptr || !locales->is_array()) return out;
  for (const boost::json::value& tag : locales->get_array()) {
    if (tag.is_string() && !tag.get_string().empty()) out.emplace_back(tag.get_string());
  }
  return out;
}

std::optional<std::string> SelectLocale(const std::vector<std::string>& preferred,
                                        const std::vector<std::string>& available) {
  std::vector<std::string> normalized;
  normalized.reserve(available.size());
  for (const std::string& tag : available) normalized.push_back(Normalize(tag));

  for (const std::string& wanted_raw : preferred) {
    const std::string wanted = Normalize(wanted_raw);
    if (wanted.empty()) continue;
    for (std::size_t i = 0; i < available.size(); ++i) {
      if (normalized[i] == wanted) return available[i];
    }
    const std::string_view language = PrimaryLanguage(wanted);
    std::optional<std::size_t> same_language;
    for (std::size_t i = 0; i < available.size(); ++i) {
      if (normalized[i].empty() || PrimaryLanguage(normalized[i]) != language) continue;
      if (normalized[i] == language) return available[i];
      if (!same_language) same_language = i;
    }
    if (same_language) return available[*same_language];
  }
  return std::nullopt;
}

std::optional<std::string> SelectContactLocale(const boost::json::value& resource,
                                               const std::vector<std::string>& available) {
  return SelectLocale(ContactLocales(resource), available);
}

}  // namespace octo::payload
