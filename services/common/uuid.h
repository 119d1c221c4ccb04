#pragma once
// UUIDs for ids the services make themselves (event ids).
//
// FormatUuid is the one place that turns 16 bytes into RFC 4122 / 9562
// text: it sets the version nibble and the variant bits (10xx) and writes
// the canonical lower-case 8-4-4-4-12 form. The random bits come from a
// per-thread absl::BitGen (seeded from the OS once per thread): ids must be
// unique, not secret, so no system call per id.
//
// NewUuidV7 (time-ordered: 48 bits of Unix milliseconds first, then 74
// random bits) is what the services store: new ids then sort after the ids
// already in a table's B-tree indexes, so inserts append to the indexes'
// right edge instead of landing on random leaves of an index that grows
// with the history kept (each such leaf a buffer to read and, the first
// time after a checkpoint, a full page image in the WAL). The delivery ids
// PostgreSQL makes follow the same layout (octo_uuid_v7, migration 0015).
#include <array>
#include <cstdint>
#include <string>

namespace octo {

// `version` is 4 or 7.
std::string FormatUuid(std::array<std::uint8_t, 16> bytes, int version);
std::string FormatUuidV4(std::array<std::uint8_t, 16> bytes);
std::string NewUuidV4();
// Random bits after the big-endian `unix_ms` (48 bits kept).
std::string MakeUuidV7(std::uint64_t unix_ms);
std::string NewUuidV7();

}  // namespace octo
