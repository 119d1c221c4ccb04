#include "services/common/uuid.h"

#include <chrono>

#include "absl/random/random.h"

namespace octo {
namespace {

std::array<std::uint8_t, 16> RandomBytes() {
  thread_local absl::BitGen bitgen;
  std::array<std::uint8_t, 16> bytes;
  for (int half = 0; half < 2; ++half) {
    const std::uint64_t bits = absl::Uniform<std::uint64_t>(bitgen);
    for (int k = 0; k < 8; ++k) bytes[8 * half + k] = static_cast<std::uint8_t>(bits >> (8 * k));
  }
  return bytes;
}

}  // namespace

std::string FormatUuid(std::array<std::uint8_t, 16> bytes, int version) {
  static constexpr char kHex[] = "0123456789abcdef";
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | ((version & 0x0f) << 4));
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

std::string FormatUuidV4(std::array<std::uint8_t, 16> bytes) { return FormatUuid(bytes, 4); }

std::string NewUuidV4() { return FormatUuidV4(RandomBytes()); }

std::string MakeUuidV7(std::uint64_t unix_ms) {
  std::array<std::uint8_t, 16> bytes = RandomBytes();
  for (int k = 0; k < 6; ++k) bytes[k] = static_cast<std::uint8_t>(unix_ms >> (8 * (5 - k)));
  return FormatUuid(bytes, 7);
}

std::string NewUuidV7() {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return MakeUuidV7(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count()));
}

}  // namespace octo
