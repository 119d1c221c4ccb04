#pragma once
// Applies one op of a delivery diff (json_diff.h) to a document, RFC 6902
// style: add inserts (at an array index: shifting the rest), remove erases,
// replace swaps; "was" must equal what is there. For the fuzz targets that
// check diffs by applying them.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "services/delivery/payload/json_pointer.h"

namespace octo::fuzz {

namespace json = boost::json;

// An array index token ("0", "12"; no leading zeros) of at most `limit`.
inline std::optional<std::size_t> ArrayIndex(const std::string& token, std::size_t limit) {
  if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0')) return std::nullopt;
  std::size_t n = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (n > limit) return std::nullopt;
  return n;
}

// Applies `op` to `doc`; false when it does not apply (a broken diff).
inline bool ApplyDiffOp(json::value& doc, const json::object& op) {
  const json::string* kind = op.contains("op") ? op.at("op").if_string() : nullptr;
  const json::string* path = op.contains("path") ? op.at("path").if_string() : nullptr;
  if (kind == nullptr || path == nullptr) return false;
  const std::optional<std::vector<std::string>> tokens = octo::payload::ParsePointer(*path);
  if (!tokens.has_value()) return false;
  const bool add = *kind == "add", remove = *kind == "remove", replace = *kind == "replace";
  if (!add && !remove && !replace) return false;
  if (op.contains("was") != (remove || replace) || op.contains("value") != (add || replace)) {
    return false;
  }
  if (tokens->empty()) {
    if (!replace || op.at("was") != doc) return false;
    doc = op.at("value");
    return true;
  }
  json::value* parent = &doc;
  for (std::size_t i = 0; i + 1 < tokens->size(); ++i) {
    const std::string& t = (*tokens)[i];
    if (json::object* o = parent->if_object()) {
      parent = o->if_contains(t);
    } else if (json::array* a = parent->if_array()) {
      const std::optional<std::size_t> n = ArrayIndex(t, a->size());
      parent = n.has_value() && *n < a->size() ? &(*a)[*n] : nullptr;
    } else {
      parent = nullptr;
    }
    if (parent == nullptr) return false;
  }
  const std::string& last = tokens->back();
  if (json::object* o = parent->if_object()) {
    json::value* target = o->if_contains(last);
    if (add) {
      if (target != nullptr) return false;
      o->emplace(last, op.at("value"));
      return true;
    }
    if (target == nullptr || *target != op.at("was")) return false;
    if (remove) {
      o->erase(last);
    } else {
      *target = op.at("value");
    }
    return true;
  }
  if (json::array* a = parent->if_array()) {
    const std::optional<std::size_t> n = ArrayIndex(last, a->size());
    if (!n.has_value()) return false;
    if (add) {
      a->insert(a->begin() + static_cast<std::ptrdiff_t>(*n), op.at("value"));
      return true;
    }
    if (*n >= a->size() || (*a)[*n] != op.at("was")) return false;
    if (remove) {
      a->erase(a->begin() + static_cast<std::ptrdiff_t>(*n));
    } else {
      (*a)[*n] = op.at("value");
    }
    return true;
  }
  return false;
}

}  // namespace octo::fuzz
