// Fuzz target: the delivery diff (services/delivery/payload/json_diff.h).
//
// Input: two JSON texts separated by a NUL byte (before, after).
//
// Checked: diff(a, a) is empty; diff(a, b) is empty exactly when a == b;
// every op is {"op","path"[,"was"][,"value"]} with a JSON pointer path, "was"
// only on replace/remove and equal to the value found there, "value" only on
// add/replace; applying the ops in order to `before` (RFC 6902 semantics:
// add inserts at an array index, remove erases) gives `after`; and the diff's
// compact text reads back as the same diff (doubles within two units in the
// last place: Boost 1.81's parser is not correctly rounded, json_compare.h).
// The texts are read as the product reads them (payload::ParseJsonText),
// which never gives NaN.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/serialize.hpp>

#include "services/delivery/payload/json_diff.h"
#include "services/delivery/payload/json_parse.h"
#include "services/delivery/payload/json_text.h"
#include "tests/fuzz/json_compare.h"
#include "tests/fuzz/json_patch.h"

namespace {

namespace json = boost::json;
using octo::payload::ComputeDiff;

[[noreturn]] void Fail(const char* what, const json::value& a, const json::value& b,
                       const json::array& diff) {
  fprintf(stderr, "invariant broken: %s\nbefore: %s\nafter: %s\ndiff: %s\n", what,
          json::serialize(a).c_str(), json::serialize(b).c_str(), json::serialize(diff).c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  if (nul == std::string_view::npos) return 0;
  boost::system::error_code ec_a, ec_b;
  const json::value a = octo::payload::ParseJsonText(input.substr(0, nul), ec_a);
  const json::value b = octo::payload::ParseJsonText(input.substr(nul + 1), ec_b);
  if (ec_a || ec_b) return 0;
  if (octo::fuzz::HasNaN(a) || octo::fuzz::HasNaN(b)) Fail("ParseJsonText gave a NaN", a, b, {});

  if (const json::array self = ComputeDiff(a, a); !self.empty()) Fail("diff(a, a) is not empty", a, a, self);
  const json::array diff = ComputeDiff(a, b);
  if (diff.empty() != (a == b)) Fail("an empty diff for different values, or the reverse", a, b, diff);

  json::value patched = a;
  for (const json::value& op : diff) {
    if (!op.is_object() || !octo::fuzz::ApplyDiffOp(patched, op.get_object())) Fail("an op that does not apply", a, b, diff);
  }
  if (patched != b) Fail("applying the diff does not give `after`", a, b, diff);

  boost::system::error_code ec;
  const json::value reread = octo::payload::ParseJsonText(octo::payload::SerializeCompact(diff), ec);
  if (ec || !octo::fuzz::SameReadBack(reread, json::value(diff))) {
    Fail("the diff's text does not read back", a, b, diff);
  }
  return 0;
}
