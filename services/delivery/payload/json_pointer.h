#pragma once
// JSON Pointer (RFC 6901) tokens.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace octo::payload {

// "a/b~c" -> "a~1b~0c".
std::string EscapePointerToken(std::string_view token);
// "" -> {}; "/a~1b/0" -> {"a/b", "0"}; nullopt when the pointer does not
// start with '/' or holds a '~' not followed by 0 or 1.
std::optional<std::vector<std::string>> ParsePointer(std::string_view pointer);

}  // namespace octo::payload
