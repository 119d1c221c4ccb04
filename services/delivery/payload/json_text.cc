#include "services/delivery/payload/json_text.h"

#include <array>
#include <charconv>
#include <cmath>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>

namespace octo::payload {
namespace {

constexpr std::array<bool, 256> MakeEscapeTable() {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[static_cast<std::size_t>(c)] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}
constexpr std::array<bool, 256> kNeedsEscape = MakeEscapeTable();

}  // namespace

void AppendJsonString(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  const char* const data = s.data();
  const std::size_t size = s.size();
  std::size_t run_start = 0;
  std::size_t i = 0;
  while (true) {
    while (i < size && !kNeedsEscape[static_cast<unsigned char>(data[i])]) ++i;
    out.append(data + run_start, i - run_start);
    if (i == size) break;
    const auto c = static_cast<unsigned char>(data[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escaped, sizeof escaped);
      }
    }
    run_start = ++i;
  }
  out += '"';
}

namespace {

template <typename T>
void AppendInteger(T v, std::string& out) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  out.append(buffer, result.ptr);
}

void AppendDouble(double v, std::string& out) {
  if (std::isinf(v)) {
    out += v > 0 ? "1e999" : "-1e999";
    return;
  }
  if (std::isnan(v)) {  // ParseJsonText never gives one; never emit non-JSON
    out += "null";
    return;
  }
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  const std::string_view text(buffer, static_cast<std::size_t>(result.ptr - buffer));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

}  // namespace

void AppendCompact(const boost::json::value& value, std::string& out) {
  switch (value.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64:
      AppendInteger(value.get_int64(), out);
      return;
    case boost::json::kind::uint64:
      AppendInteger(value.get_uint64(), out);
      return;
    case boost::json::kind::double_:
      AppendDouble(value.get_double(), out);
      return;
    case boost::json::kind::string:
      AppendJsonString(value.get_string(), out);
      return;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const boost::json::value& element : value.get_array()) {
        if (!first) out += ',';
        first = false;
        AppendCompact(element, out);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& member : value.get_object()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(member.key(), out);
        out += ':';
        AppendCompact(member.value(), out);
      }
      out += '}';
      return;
    }
  }
}

std::string SerializeCompact(const boost::json::value& value) {
  std::string out;
  AppendCompact(value, out);
  return out;
}

}  // namespace octo::payload
