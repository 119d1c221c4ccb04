#include "services/delivery/payload/json_diff.h"

#include <string>

#include <boost/json/object.hpp>

#include "services/delivery/payload/json_pointer.h"

namespace octo::payload {
namespace {

void Emit(boost::json::array& out, std::string_view op, const std::string& path, const boost::json::value* was,
          const boost::json::value* value) {
  boost::json::object entry;
  entry.reserve(4);
  entry.emplace("op", op);
  entry.emplace("path", path);
  if (was != nullptr) entry.emplace("was", *was);
  if (value != nullptr) entry.emplace("value", *value);
  out.push_back(std::move(entry));
}

void Diff(const boost::json::value& before, const boost::json::value& after, std::string& path,
          boost::json::array& out) {
  if (before.is_object() && after.is_object()) {
    const boost::json::object& b = before.get_object();
    const boost::json::object& a = after.get_object();
    const std::size_t base = path.size();
    for (const auto& member : a) {
      path += '/';
      path += EscapePointerToken(member.key());
      if (const boost::json::value* old = b.if_contains(member.key())) {
        Diff(*old, member.value(), path, out);
      } else {
        Emit(out, "add", path, nullptr, &member.value());
      }
      path.resize(base);
    }
    for (const auto& member : b) {
      if (a.contains(member.key())) continue;
      path += '/';
      path += EscapePointerToken(member.key());
      Emit(out, "remove", path, &member.value(), nullptr);
      path.resize(base);
    }
    return;
  }
  if (before.is_array() && after.is_array()) {
    const boost::json::array& b = before.get_array();
    const boost::json::array& a = after.get_array();
    const std::size_t base = path.size();
    const std::size_t common = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < common; ++i) {
      path += '/';
      path += std::to_string(i);
      Diff(b[i], a[i], path, out);
      path.resize(base);
    }
    for (std::size_t i = common; i < a.size(); ++i) {
      path += '/';
      path += std::to_string(i);
      Emit(out, "add", path, nullptr, &a[i]);
      path.resize(base);
    }
    for (std::size_t i = b.size(); i > common; --i) {
      path += '/';
      path += std::to_string(i - 1);
      Emit(out, "remove", path, &b[i - 1], nullptr);
      path.resize(base);
    }
    return;
  }
  if (before != after) Emit(out, "replace", path, &before, &after);
}

}  // namespace

boost::json::array ComputeDiff(const boost::json::value& before, const boost::json::value& after) {
  boost::json::array out;
  std::string path;
  Diff(before, after, path, out);
  return out;
}

}  // namespace octo::payload
