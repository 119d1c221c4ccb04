// Prints the dispatch and enqueue statements that grow with the stored
// history as psql PREPAREs, exactly as the service sends them, for
// cycle.sh and cpu.sh (docs/PERFORMANCE.md, "The claim at scale"):
//   cmake --build build --target octo-sql-profile-statements
//   build/tests/perf/octo-sql-profile-statements > /tmp/prepare.sql
#include <cstdio>

#include "services/delivery/dispatch_store_sql.h"
#include "services/delivery/enqueue_sql.h"

int main() {
  namespace d = octo::delivery::dispatch_sql;
  namespace q = octo::delivery::enqueue;
  std::printf("PREPARE claim(int, bigint, int, boolean) AS %s;\n", d::kClaim.sql);
  std::printf("PREPARE wres(json) AS %s;\n", d::kWriteResults.sql);
  std::printf("PREPARE cevents(uuid[]) AS %s;\n", d::kClaimEvents.sql);
  std::printf("PREPARE ins_events(json, uuid[], uuid[], text[], text[], text[]) AS %s;\n", q::kInsertEvents.sql);
  std::printf("PREPARE sel_events(json) AS %s;\n", q::kSelectEvents.sql);
}
