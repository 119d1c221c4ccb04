#pragma once
// JSON equality for text that went through Boost.JSON's parser twice.
// Boost 1.81 does not round every long decimal to the nearest double
// ("11010110e110" reads as 1.1010110000000001e117, one unit in the last
// place off), so a double written exactly (SerializeCompact) may read back
// a unit or two away. Everything else must be equal.
#include <cmath>
#include <cstddef>

#include <boost/json/value.hpp>

namespace octo::fuzz {

// Boost 1.81 also reads "0e400" (zero times a huge power of ten) as NaN,
// which no JSON text can hold; the product parses with
// payload::ParseJsonText, which reads it as 0.0, and the targets check that
// no NaN comes out of it.
inline bool HasNaN(const boost::json::value& v) {
  if (v.is_double()) return std::isnan(v.get_double());
  if (const boost::json::array* a = v.if_array()) {
    for (const boost::json::value& e : *a) {
      if (HasNaN(e)) return true;
    }
  }
  if (const boost::json::object* o = v.if_object()) {
    for (const auto& member : *o) {
      if (HasNaN(member.value())) return true;
    }
  }
  return false;
}

inline bool WithinTwoUlps(double a, double b) {
  if (a == b) return true;
  const double one = std::nextafter(a, b);
  return one == b || std::nextafter(one, b) == b;
}

inline bool SameReadBack(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) return WithinTwoUlps(a.get_double(), b.get_double());
  if (a.kind() != b.kind()) return a == b;
  if (const boost::json::array* x = a.if_array()) {
    const boost::json::array& y = b.get_array();
    if (x->size() != y.size()) return false;
    for (std::size_t i = 0; i < x->size(); ++i) {
      if (!SameReadBack((*x)[i], y[i])) return false;
    }
    return true;
  }
  if (const boost::json::object* x = a.if_object()) {
    const boost::json::object& y = b.get_object();
    if (x->size() != y.size()) return false;
    for (const auto& member : *x) {
      const boost::json::value* other = y.if_contains(member.key());
      if (other == nullptr || !SameReadBack(member.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace octo::fuzz
