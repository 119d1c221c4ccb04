// SkipMutexDeadlockChecks (services/common/service_startup.h): with the
// libabsl the services link, absl::Mutex checks lock order on every Lock
// and aborts on an inversion; the services turn that off (outside the
// sanitized build). Each case runs in a child process (death tests), so the
// process-wide mode of this test program is left as it was.
#include "services/common/service_startup.h"

#include <cstdlib>

#include <gtest/gtest.h>

#include "absl/base/config.h"
#include "absl/synchronization/mutex.h"

namespace octo {
namespace {

// a then b, later b then a: the order absl's check reports as a potential deadlock.
void InvertLockOrder() {
  absl::Mutex a;
  absl::Mutex b;
  {
    absl::MutexLock la(&a);
    absl::MutexLock lb(&b);
  }
  {
    absl::MutexLock lb(&b);
    absl::MutexLock la(&a);
  }
}

TEST(SkipMutexDeadlockChecks, TheCheckIsOnByDefaultWithThisAbsl) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(InvertLockOrder(), "[Dd]eadlock");
}

TEST(SkipMutexDeadlockChecks, AfterwardsALockOrderInversionIsNotChecked) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER)
  // The sanitized build keeps the check.
  EXPECT_DEATH(
      {
        EXPECT_FALSE(SkipMutexDeadlockChecks());
        InvertLockOrder();
      },
      "[Dd]eadlock");
#else
  EXPECT_EXIT(
      {
        if (!SkipMutexDeadlockChecks()) std::exit(3);
        InvertLockOrder();
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
#endif
}

}  // namespace
}  // namespace octo
