#pragma once
// Debian's abseil 20220623 is built with its own absl::string_view (not an
// alias of std::string_view), and the two do not convert into each other.
// Our interfaces use std::string_view; these bridge to abseil's functions.
#include <string_view>

#include "absl/strings/string_view.h"

namespace octo::gateway {

inline absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view StdView(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace octo::gateway
