// Fuzz target: SanitizeSnippet (services/delivery/dispatch_outcome.h), which
// stores a receiver's response body in a PostgreSQL text column.
//
// Input: byte 0 picks the limit (0..255 bytes, or the default 4096), the
// rest is the body.
//
// Checked: the snippet is valid UTF-8 without NUL (what PostgreSQL text
// holds), at most the limit; it is a prefix of the body when the body is
// valid UTF-8 without NUL; it never cuts a character the limit could hold
// whole (the next character would not fit); and sanitizing it again changes
// nothing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "services/delivery/dispatch_outcome.h"

namespace {

// Length of the UTF-8 character at the start of `s`, 0 when invalid or NUL
// (written independently of the code under test, from RFC 3629's table).
std::size_t CharLength(std::string_view s) {
  const auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = at(0);
  if (c == 0) return 0;
  if (c < 0x80) return 1;
  std::size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((at(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (at(i) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool IsCleanUtf8(std::string_view s) {
  while (!s.empty()) {
    const std::size_t n = CharLength(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

[[noreturn]] void Fail(const char* what, std::string_view body, std::size_t limit) {
  fprintf(stderr, "invariant broken: %s (limit %zu, body %zu bytes)\n", what, limit, body.size());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::size_t limit = data[0] == 255 ? 4096 : data[0];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string snippet = octo::delivery::SanitizeSnippet(body, limit);
  if (snippet.size() > limit) Fail("longer than the limit", body, limit);
  if (!IsCleanUtf8(snippet)) Fail("not valid UTF-8 without NUL", body, limit);
  if (IsCleanUtf8(body)) {
    if (body.substr(0, snippet.size()) != snippet) Fail("not a prefix of a clean body", body, limit);
    if (snippet.size() < body.size() && snippet.size() + CharLength(body.substr(snippet.size())) <= limit) {
      Fail("stopped before a character that fits", body, limit);
    }
  }
  if (octo::delivery::SanitizeSnippet(snippet, limit) != snippet) Fail("not idempotent", body, limit);
  return 0;
}
