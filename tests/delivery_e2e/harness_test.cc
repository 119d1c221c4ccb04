// ctest runs this binary once per suite (CMakeLists.txt here): a suite
// missing from that list would silently never run.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_split.h"

namespace octo::delivery_e2e {
namespace {

TEST(DeliveryHarnessTest, EverySuiteIsRunByCtest) {
  const std::vector<std::string> listed = absl::StrSplit(OCTO_DELIVERY_E2E_CTEST_SUITES, ',');
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const std::string name = unit.GetTestSuite(i)->name();
    EXPECT_NE(std::find(listed.begin(), listed.end(), name), listed.end())
        << "suite " << name << " is not in octo_delivery_e2e_suites in tests/delivery_e2e/CMakeLists.txt";
  }
}

}  // namespace
}  // namespace octo::delivery_e2e
