#pragma once
// How every PostgreSQL connection of the services is opened: the libpq
// conninfo of the operator plus the timeouts below, so that no connection can
// wait forever on a lock, a statement, a dead peer or a forgotten transaction.
//
// The session timeouts travel in the startup packet (libpq "options",
// "-c name=value"): no extra round trip, and they hold from the first
// statement. Precedence, highest first (docs/configuration.md):
//   - `override_options` (session settings a caller must have, e.g. the
//     migrations' lock_timeout=0), placed after everything else;
//   - the operator's options: the conninfo's own "options", or PGOPTIONS
//     from the environment when the conninfo has none (libpq would ignore
//     PGOPTIONS once we set "options", so it is merged here);
//   - the timeouts of PgConnectionOptions.
// Keywords the conninfo sets itself (connect_timeout, keepalives*,
// tcp_user_timeout) win over ours; connect_timeout is also left out when
// PGCONNECT_TIMEOUT is set, so the environment's value applies.
//
// Example:
//   PgConnectionOptions options;            // the defaults of docs/decisions.md
//   options.lock_timeout = absl::Seconds(2);
//   ASSIGN_OR_RETURN(std::string conninfo, PgConninfo(flag_value, options));
//   pqxx::connection conn(conninfo);
#include <memory>
#include <string>
#include <string_view>

#include <pqxx/connection>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace octo {

struct PgConnectionOptions {
  // A statement running longer is cancelled (57014 -> UNAVAILABLE). 0 = off.
  absl::Duration statement_timeout = absl::Seconds(30);
  // A wait for a row or table lock longer than this fails (55P03 ->
  // UNAVAILABLE) instead of pinning the connection. 0 = off.
  absl::Duration lock_timeout = absl::Seconds(5);
  // A session idle inside an open transaction longer than this is ended by
  // the server, releasing its locks. 0 = off.
  absl::Duration idle_in_transaction_timeout = absl::Seconds(60);
  // Opening a connection (TCP, TLS, authentication) gives up after this.
  // Whole seconds, at least 2 (libpq's minimum).
  absl::Duration connect_timeout = absl::Seconds(5);
  // TCP keepalive: a peer silent for keepalives_idle is probed every
  // keepalives_interval, and declared dead after keepalives_count probes.
  // Whole seconds. Ignored by libpq on Unix-domain sockets.
  bool keepalives = true;
  absl::Duration keepalives_idle = absl::Seconds(30);
  absl::Duration keepalives_interval = absl::Seconds(10);
  int keepalives_count = 3;
  // Keepalive only probes an idle socket: with a request in flight to a
  // vanished server the kernel retransmits for ~15 minutes. A connection
  // whose sent data stays unacknowledged this long is dropped (libpq
  // tcp_user_timeout, Linux). Default: keepalives_idle + interval * count.
  // Whole milliseconds; 0 = the system's default.
  absl::Duration tcp_user_timeout = absl::Seconds(60);
  // "-c name=value ..." placed after the operator's options, so these win.
  std::string override_options;
};

// INVALID_ARGUMENT naming the field (as its flag, e.g. "--pg_lock_timeout")
// when a value is out of range: negative, not a whole number of milliseconds
// (session timeouts) or seconds (connect, keepalives), or too large.
absl::Status ValidatePgConnectionOptions(const PgConnectionOptions& options);

// `conninfo` (key=value or postgresql:// URI) as a key=value conninfo with
// the options added as described above.
// INVALID_ARGUMENT for an unparsable conninfo (a fixed message: libpq's
// reason can quote a piece of the password) or invalid options.
absl::StatusOr<std::string> PgConninfo(std::string_view conninfo,
                                       const PgConnectionOptions& options);

// Opens a connection on a conninfo made by PgConninfo. UNAVAILABLE when the
// server cannot be reached within the connect timeout or refuses us.
absl::StatusOr<std::unique_ptr<pqxx::connection>> OpenPgConnection(const std::string& conninfo);

}  // namespace octo
