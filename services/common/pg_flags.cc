#include "services/common/pg_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "services/common/net.h"

ABSL_FLAG(absl::Duration, pg_statement_timeout,
          octo::EnvOrDuration("OCTO_PG_STATEMENT_TIMEOUT",
                              octo::PgConnectionOptions{}.statement_timeout),
          "a database statement running longer is cancelled and its call fails UNAVAILABLE; "
          "0 = off (env OCTO_PG_STATEMENT_TIMEOUT)");
ABSL_FLAG(absl::Duration, pg_lock_timeout,
          octo::EnvOrDuration("OCTO_PG_LOCK_TIMEOUT", octo::PgConnectionOptions{}.lock_timeout),
          "a wait for a row or table lock longer than this fails UNAVAILABLE instead of pinning "
          "the connection; 0 = off (env OCTO_PG_LOCK_TIMEOUT)");
ABSL_FLAG(absl::Duration, pg_idle_in_transaction_timeout,
          octo::EnvOrDuration("OCTO_PG_IDLE_IN_TRANSACTION_TIMEOUT",
                              octo::PgConnectionOptions{}.idle_in_transaction_timeout),
          "the server ends a session idle inside a transaction this long, releasing its locks; "
          "0 = off (env OCTO_PG_IDLE_IN_TRANSACTION_TIMEOUT)");
ABSL_FLAG(absl::Duration, pg_connect_timeout,
          octo::EnvOrDuration("OCTO_PG_CONNECT_TIMEOUT",
                              octo::PgConnectionOptions{}.connect_timeout),
          "opening a database connection gives up after this; whole seconds, at least 2s "
          "(env OCTO_PG_CONNECT_TIMEOUT)");
ABSL_FLAG(absl::Duration, pg_keepalives_idle,
          octo::EnvOrDuration("OCTO_PG_KEEPALIVES_IDLE",
                              octo::PgConnectionOptions{}.keepalives_idle),
          "TCP keepalive: a database connection silent this long is probed; whole seconds "
          "(env OCTO_PG_KEEPALIVES_IDLE)");
ABSL_FLAG(absl::Duration, pg_keepalives_interval,
          octo::EnvOrDuration("OCTO_PG_KEEPALIVES_INTERVAL",
                              octo::PgConnectionOptions{}.keepalives_interval),
          "TCP keepalive: time between probes; whole seconds (env OCTO_PG_KEEPALIVES_INTERVAL)");
ABSL_FLAG(int, pg_keepalives_count,
          octo::EnvOrInt("OCTO_PG_KEEPALIVES_COUNT", octo::PgConnectionOptions{}.keepalives_count),
          "TCP keepalive: unanswered probes before the connection is declared dead "
          "(env OCTO_PG_KEEPALIVES_COUNT)");
ABSL_FLAG(absl::Duration, pg_tcp_user_timeout,
          octo::EnvOrDuration("OCTO_PG_TCP_USER_TIMEOUT",
                              octo::PgConnectionOptions{}.tcp_user_timeout),
          "a connection whose sent data stays unacknowledged this long is dropped (a request "
          "in flight to a vanished server); whole milliseconds, 0 = the system's default "
          "(env OCTO_PG_TCP_USER_TIMEOUT)");

namespace octo {

absl::StatusOr<PgConnectionOptions> PgOptionsFromFlags() {
  PgConnectionOptions o;
  o.statement_timeout = absl::GetFlag(FLAGS_pg_statement_timeout);
  o.lock_timeout = absl::GetFlag(FLAGS_pg_lock_timeout);
  o.idle_in_transaction_timeout = absl::GetFlag(FLAGS_pg_idle_in_transaction_timeout);
  o.connect_timeout = absl::GetFlag(FLAGS_pg_connect_timeout);
  o.keepalives_idle = absl::GetFlag(FLAGS_pg_keepalives_idle);
  o.keepalives_interval = absl::GetFlag(FLAGS_pg_keepalives_interval);
  o.keepalives_count = absl::GetFlag(FLAGS_pg_keepalives_count);
  o.tcp_user_timeout = absl::GetFlag(FLAGS_pg_tcp_user_timeout);
  if (absl::Status s = ValidatePgConnectionOptions(o); !s.ok()) return s;
  return o;
}

}  // namespace octo
