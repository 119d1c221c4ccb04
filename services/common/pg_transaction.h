#pragma once
// The one way the stores run a transaction.
//
//   RunInTransaction(pool, options, fn)  on a pooled connection
//   RunInTransaction(conn, options, fn)  on a connection the caller owns
//
// `fn(pqxx::work&)` returns absl::Status or absl::StatusOr<T>; the
// transaction commits when it returns OK and rolls back otherwise. libpqxx
// exceptions from `fn` or the commit become a status (pg_status.h). `fn` may
// run more than once, so it must only touch the database:
//   - serialization failures and deadlocks (ABORTED) rerun it, up to
//     max_attempts in all, after a short jittered pause; so does an ABORTED
//     status `fn` returns itself (e.g. a unique key that appeared meanwhile);
//     any other status of `fn` is returned as is;
//   - on a pool, a connection found lost is replaced and `fn` rerun once,
//     when that is safe: the commit was not reached (the server rolled the
//     transaction back) or the transaction is read_only. A commit whose
//     outcome is unknown is returned (UNAVAILABLE, IsCommitInDoubt) for the
//     caller to settle, never rerun blindly.
// Every attempt is recorded in the pool's metrics under `operation`.
//
// Example:
//   absl::StatusOr<Webhook> w = RunInTransaction(*pool, {.operation = kSelect.name},
//       [&](pqxx::work& txn) -> absl::StatusOr<Webhook> { ... });
#include <chrono>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include <pqxx/pqxx>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace octo {

class PgPool;

struct PgTxOptions {
  // A constant of the caller (usually a statement name): metrics label and
  // the prefix of error messages.
  std::string_view operation = "transaction";
  // Only reads: rerunning after any lost connection is harmless.
  bool read_only = false;
  // Runs in all when the transaction keeps being ABORTED (40001, 40P01).
  int max_attempts = 3;
  // How long a pooled run waits for a free connection.
  std::chrono::milliseconds acquire_timeout = std::chrono::seconds(5);
};

namespace pg_internal {
using Body = absl::FunctionRef<absl::Status(pqxx::work&)>;
absl::Status Run(PgPool& pool, const PgTxOptions& options, Body body);
absl::Status Run(pqxx::connection_base& conn, const PgTxOptions& options, Body body);

// Adapts `fn` returning Status or StatusOr<T> to Run's Body.
template <typename Target, typename Fn>
auto RunAdapted(Target& target, const PgTxOptions& options, Fn&& fn) {
  using Result = std::invoke_result_t<Fn&, pqxx::work&>;
  if constexpr (std::is_same_v<Result, absl::Status>) {
    return Run(target, options, Body(fn));
  } else {
    using T = typename Result::value_type;
    std::optional<T> value;
    absl::Status status = Run(target, options, [&](pqxx::work& txn) -> absl::Status {
      Result r = fn(txn);
      if (!r.ok()) return r.status();
      value.emplace(*std::move(r));
      return absl::OkStatus();
    });
    if (!status.ok()) return absl::StatusOr<T>(status);
    return absl::StatusOr<T>(*std::move(value));
  }
}
}  // namespace pg_internal

template <typename Fn>
auto RunInTransaction(PgPool& pool, const PgTxOptions& options, Fn&& fn) {
  return pg_internal::RunAdapted(pool, options, std::forward<Fn>(fn));
}

// On a connection of the caller's. After an UNAVAILABLE status the caller
// checks conn.is_open() (or IsConnectionLost on what it caught) and opens a
// new connection itself; ABORTED is rerun here as on a pool.
template <typename Fn>
auto RunInTransaction(pqxx::connection_base& conn, const PgTxOptions& options, Fn&& fn) {
  return pg_internal::RunAdapted(conn, options, std::forward<Fn>(fn));
}

}  // namespace octo
