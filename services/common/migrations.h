#pragma once
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace octo {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// Applies every migration newer than the database's schema version, each in
// its own transaction, under a session advisory lock so replicas starting
// together apply them exactly once. Migrations must be sorted by version.
absl::Status ApplyMigrations(const std::string& conninfo, const std::vector<Migration>& migrations,
                             long long advisory_lock_key);

}  // namespace octo
