#pragma once
// A PostgreSQL 15 cluster of the test's own, for fault tests that stop and
// start the database under the services (`pg_ctl stop -m immediate`): the
// shared throwaway cluster of scripts/test.sh must not be stopped.
//
// initdb into a fresh directory under $TMPDIR, a Unix socket there and a
// free TCP port on 127.0.0.1; run as the `postgres` user when the test runs
// as root (PostgreSQL refuses root), as the current user otherwise. The
// binaries come from OCTO_PG_BIN or /usr/lib/postgresql/15/bin.
//
// Example:
//   PgCluster pg;
//   ASSERT_TRUE(pg.Create().ok());
//   setenv("OCTO_TEST_PG", pg.conninfo().c_str(), 1);   // E2eStack uses it
//   ...
//   ASSERT_TRUE(pg.StopImmediate().ok());  ...  ASSERT_TRUE(pg.Start().ok());
//   // destruction stops the cluster and deletes the directory
#include <string>

#include "absl/status/status.h"

namespace octo::faults {

class PgCluster {
 public:
  PgCluster() = default;
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // initdb and start. FAILED_PRECONDITION (with the log) when it cannot.
  absl::Status Create();
  // pg_ctl start -w (same port).
  absl::Status Start();
  // pg_ctl stop -m immediate: every backend is killed at once, no
  // checkpoint; the next start runs crash recovery.
  absl::Status StopImmediate();

  // "host=<socket dir> port=<port> user=postgres dbname=postgres".
  const std::string& conninfo() const { return conninfo_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int port_ = 0;
  std::string conninfo_;
  bool running_ = false;
};

}  // namespace octo::faults
