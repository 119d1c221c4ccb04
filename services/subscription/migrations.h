#pragma once
// The subscription service's schema: migrations/NNNN_name.sql, embedded into
// the binary at build time and applied at start-up with octo::ApplyMigrations.
//
// Example:
//   absl::Status s = octo::ApplyMigrations(conninfo, octo::subscription::Migrations(),
//                                          octo::subscription::kMigrationLockKey);
#include <vector>

#include "services/common/migrations.h"

namespace octo::subscription {

// Sorted by version. Thread-safe.
const std::vector<Migration>& Migrations();

// pg_advisory_lock key held while migrating ("octo" + "sub").
inline constexpr long long kMigrationLockKey = 0x6f63746f00737562LL;

}  // namespace octo::subscription
