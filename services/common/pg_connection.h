#pragma once
// How every PostgreSQL connection of the services is opened: the libpq
// conninfo of the operator plus the timeouts below, so that no connection can
// wait forever on a lock, a statement, a dead peer or a forgotten transaction.
//
// The session timeouts travel in the startup packet (libpq "options",
// "-c name=value"): no extra round trip, and they hold from the first
// statement. Settings the operator's conninfo already names win.
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
};

// INVALID_ARGUMENT naming the field (as its flag, e.g. "--pg_lock_timeout")
// when a value is out of range: negative, not a whole number of milliseconds
// (session timeouts) or seconds (connect, keepalives), or too large.
absl::Status ValidatePgConnectionOptions(const PgConnectionOptions& options);

// `conninfo` (key=value or postgresql:// URI) as a key=value conninfo with
// the options added where it does not set them itself; a libpq "options"
// value of its own is kept after ours, so its -c settings win.
// INVALID_ARGUMENT for an unparsable conninfo (libpq's reason, which never
// quotes the password) or invalid options.
absl::StatusOr<std::string> PgConninfo(std::string_view conninfo,
                                       const PgConnectionOptions& options);

// Opens a connection on a conninfo made by PgConninfo. UNAVAILABLE when the
// server cannot be reached within the connect timeout or refuses us.
absl::StatusOr<std::unique_ptr<pqxx::connection>> OpenPgConnection(const std::string& conninfo);

}  // namespace octo
