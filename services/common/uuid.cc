#include "services/common/uuid.h"

#include "absl/random/random.h"

namespace octo {

std::string FormatUuidV4(std::array<std::uint8_t, 16> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string text;
  text.reserve(36);
  for (int k = 0; k < 16; ++k) {
    if (k == 4 || k == 6 || k == 8 || k == 10) text.push_back('-');
    text.push_back(kHex[bytes[k] >> 4]);
    text.push_back(kHex[bytes[k] & 0x0f]);
  }
  return text;
}

std::string NewUuidV4() {
  thread_local absl::BitGen bitgen;
  std::array<std::uint8_t, 16> bytes;
  for (int half = 0; half < 2; ++half) {
    const std::uint64_t bits = absl::Uniform<std::uint64_t>(bitgen);
    for (int k = 0; k < 8; ++k) bytes[8 * half + k] = static_cast<std::uint8_t>(bits >> (8 * k));
  }
  return FormatUuidV4(bytes);
}

}  // namespace octo
