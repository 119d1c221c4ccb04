#include <gtest/gtest.h>

#include <string>

#include "services/delivery/enqueue_recordset.h"

namespace octo::delivery::enqueue {
namespace {

// PostgreSQL's binary array form (array_recv), big-endian int32s.
std::string Int32(unsigned v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string Bytes(const pqxx::binarystring& b) { return std::string(b.get(), b.size()); }

TEST(JsonArray, AnEmptyArrayHasNoDimensions) {
  EXPECT_EQ(Bytes(JsonArray().Finish()), Int32(0) + Int32(0) + Int32(25));
}

TEST(JsonArray, ElementsAreLengthPrefixedAndTrimmed) {
  JsonArray a;
  a.Add(" {\"a\":\"\\\"\"} \n").Add("[]");
  const std::string first = "{\"a\":\"\\\"\"}";
  EXPECT_EQ(Bytes(a.Finish()), Int32(1) + Int32(0) + Int32(25) + Int32(2) + Int32(1) +
                                   Int32(first.size()) + first + Int32(2) + "[]");
}

}  // namespace
}  // namespace octo::delivery::enqueue
