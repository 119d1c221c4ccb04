// FormatUuidV4, NewUuidV4 and the time-ordered NewUuidV7: the RFC 4122 /
// 9562 version and variant bits, the canonical text form, distinct ids, and
// v7 ids that sort (as text, as PostgreSQL's uuid sorts bytes) by their
// millisecond.
#include "services/common/uuid.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "services/common/validation.h"

namespace octo {
namespace {

TEST(UuidTest, FormatsBytesWithVersionFourAndTheRfcVariant) {
  std::array<std::uint8_t, 16> bytes;
  bytes.fill(0xff);
  EXPECT_EQ(FormatUuidV4(bytes), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  bytes.fill(0x00);
  EXPECT_EQ(FormatUuidV4(bytes), "00000000-0000-4000-8000-000000000000");
  for (int k = 0; k < 16; ++k) bytes[k] = static_cast<std::uint8_t>(k * 17);
  EXPECT_EQ(FormatUuidV4(bytes), "00112233-4455-4677-8899-aabbccddeeff");
}

TEST(UuidTest, NewIdsAreValidAndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = NewUuidV4();
    ASSERT_TRUE(IsUuid(id)) << id;
    ASSERT_EQ(id[14], '4') << id;
    ASSERT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 10000u);
}

TEST(UuidTest, V7PutsTheMillisecondsFirstBigEndian) {
  const std::string id = MakeUuidV7(0x0123456789abULL);
  ASSERT_TRUE(IsUuid(id)) << id;
  EXPECT_EQ(id.substr(0, 13), "01234567-89ab") << id;
  EXPECT_EQ(id[14], '7') << id;
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  // Only the low 48 bits of the time are kept.
  EXPECT_EQ(MakeUuidV7(0xffff000000000001ULL).substr(0, 13), "00000000-0001");
}

TEST(UuidTest, V7IdsOfALaterMillisecondSortAfter) {
  std::string previous = MakeUuidV7(1700000000000ULL);
  for (std::uint64_t ms = 1700000000001ULL; ms < 1700000001000ULL; ++ms) {
    const std::string id = MakeUuidV7(ms);
    ASSERT_LT(previous, id);
    previous = id;
  }
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = NewUuidV7();
    ASSERT_TRUE(IsUuid(id)) << id;
    ASSERT_EQ(id[14], '7') << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 10000u);
}

}  // namespace
}  // namespace octo
