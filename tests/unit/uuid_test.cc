// FormatUuidV4 and NewUuidV4: the RFC 4122 version and variant bits, the
// canonical text form, and distinct ids.
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

}  // namespace
}  // namespace octo
