#include "services/delivery/payload/json_parse.h"

#include <cmath>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>

namespace octo::payload {

// Iterative, so that a deeply nested document (Boost's parser allows 32
// levels by default, callers may raise it) cannot exhaust the stack here.
void ZeroNaNs(boost::json::value& value) {
  std::vector<boost::json::value*> pending{&value};
  while (!pending.empty()) {
    boost::json::value* v = pending.back();
    pending.pop_back();
    if (v->is_double()) {
      if (std::isnan(v->get_double())) *v = 0.0;
    } else if (boost::json::array* a = v->if_array()) {
      for (boost::json::value& e : *a) pending.push_back(&e);
    } else if (boost::json::object* o = v->if_object()) {
      for (auto& member : *o) pending.push_back(&member.value());
    }
  }
}

boost::json::value ParseJsonText(std::string_view text, boost::system::error_code& ec,
                                 boost::json::storage_ptr storage) {
  boost::json::value v =
      boost::json::parse(boost::json::string_view(text.data(), text.size()), ec, std::move(storage));
  if (!ec) ZeroNaNs(v);
  return v;
}

boost::json::value ParseJsonText(std::string_view text, std::error_code& ec,
                                 boost::json::storage_ptr storage) {
  boost::system::error_code boost_ec;
  boost::json::value v = ParseJsonText(text, boost_ec, std::move(storage));
  ec = boost_ec;
  return v;
}

}  // namespace octo::payload
