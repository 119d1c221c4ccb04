#include "gateway/json_body.h"

#include <set>
#include <vector>

#include <boost/json/parse.hpp>

#include "absl/strings/str_cat.h"
#include "gateway/octo_error.h"
#include "services/delivery/payload/json_parse.h"
#include "services/delivery/payload/json_text.h"

namespace octo::gateway {
namespace json = boost::json;

namespace {

// The decoded text of the string literal starting at text[i] (a quote);
// `i` is left after its closing quote. The text is valid JSON.
std::string ReadString(std::string_view text, std::size_t& i) {
  const std::size_t start = i++;
  bool escaped = false;
  while (i < text.size() && text[i] != '"') {
    if (text[i] == '\\') {
      escaped = true;
      ++i;
    }
    ++i;
  }
  ++i;
  const std::string_view literal = text.substr(start, i - start);
  if (!escaped) return std::string(literal.substr(1, literal.size() - 2));
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(literal.data(), literal.size()), ec);
  return ec || !v.is_string() ? std::string(literal) : std::string(v.get_string());
}

}  // namespace

RepeatedMember FindRepeatedMember(std::string_view text) {
  struct Level {
    bool object;
    bool expect_key;
    std::set<std::string> names;
  };
  std::vector<Level> stack;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '"') {
      const bool is_key = !stack.empty() && stack.back().object && stack.back().expect_key;
      std::string s = ReadString(text, i);
      if (is_key) {
        stack.back().expect_key = false;
        if (!stack.back().names.insert(s).second) return {true, std::move(s)};
      }
      continue;
    }
    if (c == '{' || c == '[') stack.push_back({c == '{', c == '{', {}});
    if ((c == '}' || c == ']') && !stack.empty()) stack.pop_back();
    if (c == ',' && !stack.empty() && stack.back().object) stack.back().expect_key = true;
    ++i;
  }
  return {};
}

absl::StatusOr<json::value> ParseJsonBody(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = payload::ParseJsonText(body, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("The request body is not valid JSON: ", ec.message()));
  }
  if (RepeatedMember repeated = FindRepeatedMember(body); repeated.found) {
    return absl::InvalidArgumentError(absl::StrCat(
        "The request body is not valid here: the member '", TruncateUtf8(repeated.name, 100),
        "' is given twice in one object (which one is meant cannot be told)"));
  }
  return doc;
}

std::string JsonText(const json::value& value) { return payload::SerializeCompact(value); }

}  // namespace octo::gateway
