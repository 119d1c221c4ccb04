// Fuzz target: capability projection (services/delivery/payload/capabilities.h).
//
// Input: byte 0 picks the resource kind, bytes 1-2 the webhook's
// capabilities (a bit per capability the kind's table names, plus the
// alias), the rest is a JSON resource; when the rest holds a NUL byte, the
// two JSON texts around it are a previous and a current state.
//
// Checked: the projection only removes object members (what is left is the
// resource's own, in its order, arrays keep their length); it is idempotent;
// with every capability it removes nothing; AppendProjectedResource writes
// exactly the projection's compact text; and the projected diff of two
// states, applied to the projected previous state, gives the projected
// current state (a webhook's diff agrees with the resources it receives).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/serialize.hpp>

#include "services/delivery/payload/capabilities.h"
#include "services/delivery/payload/json_diff.h"
#include "services/delivery/payload/json_parse.h"
#include "services/delivery/payload/json_text.h"
#include "tests/fuzz/json_compare.h"
#include "tests/fuzz/json_patch.h"

namespace {

namespace json = boost::json;
using octo::payload::ResourceKind;

[[noreturn]] void Fail(const char* what, const json::value& full, const json::value& projected,
                       const std::vector<std::string>& caps) {
  std::string names;
  for (const std::string& c : caps) names += c + " ";
  fprintf(stderr, "invariant broken: %s\ncapabilities: %s\nfull: %s\nprojected: %s\n", what,
          names.c_str(), json::serialize(full).c_str(), json::serialize(projected).c_str());
  abort();
}

// True when `part` is `whole` with zero or more object members removed
// (at any depth), the remaining members in their order.
bool IsPruned(const json::value& part, const json::value& whole) {
  if (part.kind() != whole.kind()) return false;
  if (const json::object* p = part.if_object()) {
    const json::object& w = whole.get_object();
    auto it = w.begin();
    for (const auto& member : *p) {
      while (it != w.end() && it->key() != member.key()) ++it;
      if (it == w.end() || !IsPruned(member.value(), it->value())) return false;
      ++it;
    }
    return true;
  }
  if (const json::array* p = part.if_array()) {
    const json::array& w = whole.get_array();
    if (p->size() != w.size()) return false;
    for (std::size_t i = 0; i < p->size(); ++i) {
      if (!IsPruned((*p)[i], w[i])) return false;
    }
    return true;
  }
  return part == whole;
}

// Every capability the kind's table names, then the aliases' sources.
std::vector<std::string> KnownCapabilities(ResourceKind kind) {
  std::vector<std::string> out;
  for (const auto& [capability, paths] : octo::payload::CapabilityFields(kind)) {
    out.push_back(capability);
  }
  for (const auto& [has, grants] : octo::payload::kCapabilityAliases) out.emplace_back(has);
  return out;
}

void CheckProjection(ResourceKind kind, const json::value& full,
                     const std::vector<std::string>& caps, const std::vector<std::string>& all) {
  const json::value projected = octo::payload::ProjectResource(kind, full, caps);
  if (!IsPruned(projected, full)) Fail("the projection does more than remove members", full, projected, caps);
  if (octo::payload::ProjectResource(kind, projected, caps) != projected) {
    Fail("the projection is not idempotent", full, projected, caps);
  }
  std::string appended;
  octo::payload::AppendProjectedResource(kind, full, caps, appended);
  if (appended != octo::payload::SerializeCompact(projected)) {
    Fail("AppendProjectedResource differs from ProjectResource", full, projected, caps);
  }
  const json::value everything = octo::payload::ProjectResource(kind, full, all);
  if (everything != full) Fail("every capability still removes something", full, everything, all);
}

void CheckDiff(ResourceKind kind, const json::value& before, const json::value& after,
               const std::vector<std::string>& caps) {
  const json::array diff = octo::payload::ComputeDiff(before, after);
  const json::array projected_diff = octo::payload::ProjectDiff(kind, diff, caps);
  json::value state = octo::payload::ProjectResource(kind, before, caps);
  const json::value want = octo::payload::ProjectResource(kind, after, caps);
  for (const json::value& op : projected_diff) {
    if (!op.is_object() || !octo::fuzz::ApplyDiffOp(state, op.get_object())) {
      Fail("a projected op does not apply to the projected state", before, json::value(projected_diff), caps);
    }
  }
  if (state != want) Fail("the projected diff does not lead to the projected state", after, state, caps);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static constexpr ResourceKind kKinds[] = {ResourceKind::kBooking, ResourceKind::kOrder,
                                            ResourceKind::kAvailability, ResourceKind::kProduct};
  const ResourceKind kind = kKinds[data[0] % 4];
  static const std::vector<std::string> kKnown[] = {
      KnownCapabilities(kKinds[0]), KnownCapabilities(kKinds[1]), KnownCapabilities(kKinds[2]),
      KnownCapabilities(kKinds[3])};
  const std::vector<std::string>& all = kKnown[data[0] % 4];
  const unsigned mask = data[1] | (data[2] << 8);
  std::vector<std::string> caps;
  for (std::size_t i = 0; i < all.size() && i < 16; ++i) {
    if (mask & (1u << i)) caps.push_back(all[i]);
  }

  const std::string_view rest(reinterpret_cast<const char*>(data + 3), size - 3);
  const std::size_t nul = rest.find('\0');
  boost::system::error_code ec;
  const json::value first = octo::payload::ParseJsonText(rest.substr(0, nul), ec);
  if (ec) return 0;
  if (octo::fuzz::HasNaN(first)) Fail("ParseJsonText gave a NaN", first, first, caps);
  CheckProjection(kind, first, caps, all);
  if (nul != std::string_view::npos) {
    const json::value second = octo::payload::ParseJsonText(rest.substr(nul + 1), ec);
    if (ec) return 0;
    if (octo::fuzz::HasNaN(second)) Fail("ParseJsonText gave a NaN", second, second, caps);
    CheckProjection(kind, second, caps, all);
    CheckDiff(kind, first, second, caps);
  }
  return 0;
}
