#pragma once
// Debian's abseil is built with its own absl::string_view (not an alias of
// std::string_view), so absl::StrCat/StrSplit/SimpleAtoi do not accept a
// std::string_view directly. Convert explicitly at those call sites.
#include <string_view>

#include "absl/strings/string_view.h"

namespace octo {

inline absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace octo
