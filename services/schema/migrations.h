#pragma once
// The schema of the one database both services share: migrations/NNNN_name.sql,
// embedded into the binaries at build time and applied at start-up by
// octo-subscription and octo-delivery alike, whichever starts first, with
// octo::ApplyMigrations under kMigrationLockKey. Table ownership is logical
// (docs/delivery.md): the subscription service writes suppliers, connections,
// api_keys and webhooks; the delivery service events, resource_snapshots,
// deliveries and delivery_attempts.
//
// Example:
//   absl::Status s = octo::ApplyMigrations(conninfo, octo::schema::Migrations(),
//                                          octo::schema::kMigrationLockKey);
#include <vector>

#include "services/common/migrations.h"

namespace octo::schema {

// Sorted by version. Thread-safe.
const std::vector<Migration>& Migrations();

// The one pg_advisory_lock key held while migrating, by every process. Its
// value ("octo" + "sub") is the one the subscription service used before the
// set was shared, so a replica of the previous release that starts during a
// rolling upgrade still serialises with the new ones.
inline constexpr long long kMigrationLockKey = 0x6f63746f00737562LL;

}  // namespace octo::schema
