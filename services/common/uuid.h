#pragma once
// Random (version 4) UUIDs for ids the services make themselves (event ids).
//
// FormatUuidV4 is the one place that turns 16 bytes into RFC 4122 text: it
// sets the version nibble (4) and the variant bits (10xx) and writes the
// canonical lower-case 8-4-4-4-12 form. NewUuidV4 feeds it from a per-thread
// absl::BitGen (seeded from the OS once per thread): ids must be unique, not
// secret, so no system call per id.
#include <array>
#include <cstdint>
#include <string>

namespace octo {

std::string FormatUuidV4(std::array<std::uint8_t, 16> bytes);
std::string NewUuidV4();

}  // namespace octo
