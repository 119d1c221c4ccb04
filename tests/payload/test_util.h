#pragma once
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "services/delivery/payload/json_text.h"

namespace octo::payload::testing {

inline boost::json::value Json(std::string_view text) {
  return boost::json::parse(boost::json::string_view(text.data(), text.size()));
}

inline std::string Compact(const boost::json::value& v) { return SerializeCompact(v); }

}  // namespace octo::payload::testing
