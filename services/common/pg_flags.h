#pragma once
// The --pg_* flags of every service executable: the limits of each
// PostgreSQL connection the process opens (docs/decisions.md, "One
// PostgreSQL layer"), each defaulting from its OCTO_PG_* environment
// variable, else from PgConnectionOptions. Linking octo_service_main
// defines the flags; a process links it once.
//
// Example (a service's ConfigFromFlags):
//   absl::StatusOr<PgConnectionOptions> pg = PgOptionsFromFlags();
//   if (!pg.ok()) return pg.status();
#include "absl/status/statusor.h"
#include "services/common/pg_connection.h"

namespace octo {

// The options the --pg_* flags give, validated (ValidatePgConnectionOptions:
// INVALID_ARGUMENT naming the flag's value that is out of range).
absl::StatusOr<PgConnectionOptions> PgOptionsFromFlags();

}  // namespace octo
