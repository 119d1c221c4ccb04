#include "services/delivery/payload/capabilities.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>

#include <boost/json/parse.hpp>

#include "services/delivery/payload/capability_fields_data.h"
#include "services/delivery/payload/json_pointer.h"
#include "services/delivery/payload/json_text.h"

namespace octo::payload {
namespace {

// Capabilities are numbered per table; a set of them is a bit mask.
using CapabilityMask = std::uint64_t;

// One path segment of the table: an object member, or (items) the elements
// of an array.
struct FieldNode {
  CapabilityMask capabilities = 0;  // 0: no capability of its own
  std::map<std::string, FieldNode, std::less<>> children;
  std::unique_ptr<FieldNode> items;
  // Where the generator stopped following a schema nested in itself
  // ("_recursion"): the node of that schema's previous entry, whose
  // children and items apply here too, however deep the nesting goes.
  const FieldNode* same_as = nullptr;
};

// The node whose children and items describe the value at `node`.
const FieldNode& Shape(const FieldNode& node) { return node.same_as != nullptr ? *node.same_as : node; }

struct KindTable {
  std::vector<std::pair<std::string, std::vector<std::string>>> fields;  // as in the JSON
  std::vector<std::string> capability_names;                             // bit i of a mask = capability_names[i]
  FieldNode root;

  CapabilityMask All() const {
    return capability_names.size() == 64 ? ~CapabilityMask{0} : (CapabilityMask{1} << capability_names.size()) - 1;
  }
  CapabilityMask MaskOf(const std::vector<std::string>& capabilities) const {
    CapabilityMask mask = 0;
    for (std::size_t i = 0; i < capability_names.size(); ++i) {
      if (std::find(capabilities.begin(), capabilities.end(), capability_names[i]) != capabilities.end()) {
        mask |= CapabilityMask{1} << i;
      }
    }
    return mask;
  }
};

constexpr std::array<ResourceKind, 4> kKinds = {ResourceKind::kBooking, ResourceKind::kOrder,
                                                ResourceKind::kAvailability, ResourceKind::kProduct};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "octo_payload: embedded capability_fields.json: %s\n", what.c_str());
  std::abort();
}

FieldNode* NodeAt(FieldNode& root, const std::string& path) {
  FieldNode* node = &root;
  if (path.empty()) return node;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('.', start);
    if (end == std::string::npos) end = path.size();
    std::string_view segment(path.data() + start, end - start);
    std::size_t brackets = segment.find("[]");
    const std::string_view name = segment.substr(0, brackets);
    if (name.empty()) Die("bad path " + path);
    node = &node->children[std::string(name)];
    while (brackets != std::string_view::npos && brackets < segment.size()) {
      if (segment.substr(brackets, 2) != "[]") Die("bad path " + path);
      if (!node->items) node->items = std::make_unique<FieldNode>();
      node = node->items.get();
      brackets += 2;
    }
    start = end + 1;
  }
  return node;
}

void AddPath(FieldNode& root, const std::string& path, CapabilityMask capability) {
  NodeAt(root, path)->capabilities |= capability;
}

// "_recursion": {kind: {stopped path: previous entry's path}}.
void AddRecursion(FieldNode& root, const boost::json::value* recursion) {
  if (recursion == nullptr) return;
  if (!recursion->is_object()) Die("_recursion of a kind not an object");
  for (const auto& [stopped, entry] : recursion->as_object()) {
    if (!entry.is_string()) Die("_recursion entry not a string");
    FieldNode* node = NodeAt(root, std::string(stopped));
    if (!node->children.empty() || node->items) Die("_recursion at a path with paths below it");
    node->same_as = NodeAt(root, std::string(entry.as_string()));
  }
}

const std::array<KindTable, 4>& Tables() {
  static const std::array<KindTable, 4>* const kTables = [] {
    auto* tables = new std::array<KindTable, 4>();
    boost::json::error_code ec;
    const boost::json::value doc = boost::json::parse(
        boost::json::string_view(internal::kCapabilityFieldsJson.data(), internal::kCapabilityFieldsJson.size()), ec);
    if (ec || !doc.is_object()) Die("not a JSON object");
    for (std::size_t i = 0; i < kKinds.size(); ++i) {
      KindTable& table = (*tables)[i];
      const auto* per_kind = doc.as_object().if_contains(std::string(ResourceKindName(kKinds[i])));
      if (per_kind == nullptr || !per_kind->is_object()) Die("missing " + std::string(ResourceKindName(kKinds[i])));
      for (const auto& [capability, paths] : per_kind->as_object()) {
        if (!paths.is_array()) Die("paths of " + std::string(capability) + " not an array");
        if (table.capability_names.size() == 64) Die("more than 64 capabilities");
        const CapabilityMask bit = CapabilityMask{1} << table.capability_names.size();
        table.capability_names.emplace_back(capability);
        std::vector<std::string> list;
        for (const auto& path : paths.as_array()) {
          if (!path.is_string()) Die("path not a string");
          list.emplace_back(path.as_string());
          AddPath(table.root, list.back(), bit);
        }
        table.fields.emplace_back(std::string(capability), std::move(list));
      }
      const auto* recursion = doc.as_object().if_contains("_recursion");
      if (recursion != nullptr && !recursion->is_object()) Die("_recursion not an object");
      AddRecursion(table.root,
                   recursion ? recursion->as_object().if_contains(std::string(ResourceKindName(kKinds[i]))) : nullptr);
    }
    return tables;
  }();
  return *kTables;
}

const KindTable& TableFor(ResourceKind kind) { return Tables()[static_cast<std::size_t>(kind)]; }

bool Has(const std::vector<std::string>& caps, std::string_view cap) {
  return std::find(caps.begin(), caps.end(), cap) != caps.end();
}

bool Allowed(const FieldNode& node, CapabilityMask caps) {
  return node.capabilities == 0 || (node.capabilities & caps) != 0;
}

// `node` describes `v` itself.
boost::json::value ProjectValue(const boost::json::value& v, const FieldNode& described, CapabilityMask caps) {
  const FieldNode& node = Shape(described);
  if (!node.children.empty() && v.is_object()) {
    const boost::json::object& in = v.get_object();
    boost::json::object out;
    out.reserve(in.size());
    for (const auto& member : in) {
      const std::string_view key = member.key();
      auto it = node.children.find(key);
      if (it == node.children.end()) {
        out.emplace(member.key(), member.value());
      } else if (Allowed(it->second, caps)) {
        out.emplace(member.key(), ProjectValue(member.value(), it->second, caps));
      }
    }
    return out;
  }
  if (node.items && v.is_array()) {
    const boost::json::array& in = v.get_array();
    boost::json::array out;
    out.reserve(in.size());
    for (const auto& element : in) out.push_back(ProjectValue(element, *node.items, caps));
    return out;
  }
  return v;
}

// AppendCompact(ProjectValue(v, node, caps)) without the copy.
void AppendProjected(const boost::json::value& v, const FieldNode& described, CapabilityMask caps,
                     std::string& out) {
  const FieldNode& node = Shape(described);
  if (!node.children.empty() && v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& member : v.get_object()) {
      const std::string_view key = member.key();
      auto it = node.children.find(key);
      if (it != node.children.end() && !Allowed(it->second, caps)) continue;
      if (!first) out += ',';
      first = false;
      AppendJsonString(key, out);
      out += ':';
      if (it == node.children.end()) {
        AppendCompact(member.value(), out);
      } else {
        AppendProjected(member.value(), it->second, caps, out);
      }
    }
    out += '}';
    return;
  }
  if (node.items && v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& element : v.get_array()) {
      if (!first) out += ',';
      first = false;
      AppendProjected(element, *node.items, caps, out);
    }
    out += ']';
    return;
  }
  AppendCompact(v, out);
}

bool IsArrayIndexToken(std::string_view token) {
  if (token == "-") return true;
  return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
}

enum class PathVerdict { kRemoved, kBeyondTable, kAtNode };

// Follows a JSON pointer through the table. kAtNode sets *node to the node
// describing the value at the pointer.
PathVerdict FollowPointer(const FieldNode& root, const std::vector<std::string>& tokens, CapabilityMask caps,
                          const FieldNode** node) {
  const FieldNode* current = &root;
  for (const std::string& token : tokens) {
    const FieldNode& shape = Shape(*current);
    auto it = shape.children.find(token);
    if (it != shape.children.end()) {
      if (!Allowed(it->second, caps)) return PathVerdict::kRemoved;
      current = &it->second;
    } else if (shape.items && IsArrayIndexToken(token)) {
      current = shape.items.get();
    } else {
      return PathVerdict::kBeyondTable;
    }
  }
  *node = current;
  return PathVerdict::kAtNode;
}

}  // namespace

std::vector<std::string> EffectiveCapabilities(const std::vector<std::string>& webhook_capabilities) {
  std::vector<std::string> out;
  auto add = [&out](std::string_view cap) {
    if (!Has(out, cap)) out.emplace_back(cap);
  };
  for (const std::string& cap : webhook_capabilities) {
    add(cap);
    for (const auto& [has, grants] : kCapabilityAliases) {
      if (cap == has) add(grants);
    }
  }
  return out;
}

const std::vector<std::pair<std::string, std::vector<std::string>>>& CapabilityFields(ResourceKind kind) {
  return TableFor(kind).fields;
}

std::string_view CapabilityFieldsJson() { return internal::kCapabilityFieldsJson; }

boost::json::value ProjectResource(ResourceKind kind, const boost::json::value& full,
                                   const std::vector<std::string>& webhook_capabilities) {
  const KindTable& table = TableFor(kind);
  const CapabilityMask caps = table.MaskOf(EffectiveCapabilities(webhook_capabilities));
  if (caps == table.All()) return full;
  return ProjectValue(full, table.root, caps);
}

boost::json::value ProjectResource(std::string_view resource_kind, const boost::json::value& full,
                                   const std::vector<std::string>& webhook_capabilities) {
  const auto kind = ParseResourceKind(resource_kind);
  if (!kind) return full;
  return ProjectResource(*kind, full, webhook_capabilities);
}

boost::json::array ProjectDiff(ResourceKind kind, const boost::json::array& diff,
                               const std::vector<std::string>& webhook_capabilities) {
  const KindTable& table = TableFor(kind);
  const CapabilityMask caps = table.MaskOf(EffectiveCapabilities(webhook_capabilities));
  if (caps == table.All()) return diff;
  boost::json::array out;
  out.reserve(diff.size());
  for (const boost::json::value& op : diff) {
    const boost::json::object* op_object = op.if_object();
    const boost::json::value* path = op_object != nullptr ? op_object->if_contains("path") : nullptr;
    const auto tokens =
        path != nullptr && path->is_string() ? ParsePointer(std::string_view(path->get_string())) : std::nullopt;
    if (!tokens) {
      out.push_back(op);
      continue;
    }
    // A publisher-supplied move/copy names a source too: hide it the same way.
    if (const boost::json::value* from = op_object->if_contains("from"); from != nullptr && from->is_string()) {
      const auto from_tokens = ParsePointer(std::string_view(from->get_string()));
      const FieldNode* ignored = nullptr;
      if (from_tokens && FollowPointer(table.root, *from_tokens, caps, &ignored) == PathVerdict::kRemoved) continue;
    }
    const FieldNode* node = nullptr;
    switch (FollowPointer(table.root, *tokens, caps, &node)) {
      case PathVerdict::kRemoved:
        break;
      case PathVerdict::kBeyondTable:
        out.push_back(op);
        break;
      case PathVerdict::kAtNode: {
        boost::json::object projected;
        projected.reserve(op_object->size());
        for (const auto& member : *op_object) {
          const std::string_view key = member.key();
          if (key == "value" || key == "was") {
            projected.emplace(member.key(), ProjectValue(member.value(), *node, caps));
          } else {
            projected.emplace(member.key(), member.value());
          }
        }
        out.push_back(std::move(projected));
        break;
      }
    }
  }
  return out;
}

void AppendProjectedResource(ResourceKind kind, const boost::json::value& full,
                             const std::vector<std::string>& webhook_capabilities, std::string& out) {
  const KindTable& table = TableFor(kind);
  const CapabilityMask caps = table.MaskOf(EffectiveCapabilities(webhook_capabilities));
  if (caps == table.All()) {
    AppendCompact(full, out);
  } else {
    AppendProjected(full, table.root, caps, out);
  }
}

boost::json::array ProjectDiff(std::string_view resource_kind, const boost::json::array& diff,
                               const std::vector<std::string>& webhook_capabilities) {
  const auto kind = ParseResourceKind(resource_kind);
  if (!kind) return diff;
  return ProjectDiff(*kind, diff, webhook_capabilities);
}

}  // namespace octo::payload
