// The PostgreSQL layer of services/common against a real server: the
// timeouts every pooled connection carries, the transaction helper's reruns,
// and a pooled connection killed under the pool being replaced.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/migrations.h"
#include "services/common/pg_connection.h"
#include "services/common/pg_pool.h"
#include "services/common/pg_status.h"
#include "services/common/pg_transaction.h"
#include "tests/integration/pg_fixture.h"
#include "tests/support/pg_test_db.h"

namespace octo {
namespace {

using ::octo::testing::IsOk;
using ::octo::testing::StatusIs;
using ::testing::HasSubstr;

class PgLayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<octo::testing::TestDatabase>();
    pqxx::connection conn(db_->conninfo());
    pqxx::work txn(conn);
    txn.exec("CREATE TABLE t (id integer PRIMARY KEY, v integer NOT NULL)");
    txn.exec("INSERT INTO t VALUES (1, 0)");
    txn.commit();
  }

  std::unique_ptr<PgPool> Pool(const PgConnectionOptions& options, int size = 2) {
    auto pool = PgPool::Create(db_->conninfo(), size, options);
    EXPECT_THAT(pool, IsOk());
    return pool.ok() ? *std::move(pool) : nullptr;
  }

  std::string Show(PgPool& pool, const std::string& setting) {
    absl::StatusOr<std::string> v =
        RunInTransaction(pool, {.operation = "show", .read_only = true},
                         [&](pqxx::work& txn) -> absl::StatusOr<std::string> {
                           return txn.exec1("SHOW " + setting)[0].as<std::string>();
                         });
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : "";
  }

  int BackendPid(PgPool& pool) {
    absl::StatusOr<int> pid = RunInTransaction(
        pool, {.operation = "pid", .read_only = true},
        [](pqxx::work& txn) -> absl::StatusOr<int> {
          return txn.exec1("SELECT pg_backend_pid()")[0].as<int>();
        });
    EXPECT_THAT(pid, IsOk());
    return pid.ok() ? *pid : 0;
  }

  std::unique_ptr<octo::testing::TestDatabase> db_;
};

TEST_F(PgLayerTest, EveryPooledConnectionCarriesTheDefaultTimeouts) {
  auto pool = Pool({});
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(Show(*pool, "statement_timeout"), "30s");
  EXPECT_EQ(Show(*pool, "lock_timeout"), "5s");
  EXPECT_EQ(Show(*pool, "idle_in_transaction_session_timeout"), "1min");
  // The server's default is on; no statement of ours is worth compiling.
  EXPECT_EQ(Show(*pool, "jit"), "off");
  // The TCP settings are libpq's: visible in the conninfo it connects with.
  EXPECT_THAT(pool->conninfo(), HasSubstr("connect_timeout='5'"));
  EXPECT_THAT(pool->conninfo(), HasSubstr("keepalives_idle='30'"));
  EXPECT_THAT(pool->conninfo(), HasSubstr("tcp_user_timeout='60000'"));
}

TEST_F(PgLayerTest, ConfiguredTimeoutsReachTheServer) {
  PgConnectionOptions o;
  o.statement_timeout = absl::Milliseconds(1500);
  o.lock_timeout = absl::Milliseconds(250);
  o.idle_in_transaction_timeout = absl::Seconds(7);
  auto pool = Pool(o, 3);
  ASSERT_NE(pool, nullptr);
  // On a connection opened after the first, too.
  auto held = pool->Acquire();
  ASSERT_THAT(held, IsOk());
  EXPECT_EQ(Show(*pool, "statement_timeout"), "1500ms");
  EXPECT_EQ(Show(*pool, "lock_timeout"), "250ms");
  EXPECT_EQ(Show(*pool, "idle_in_transaction_session_timeout"), "7s");
}

TEST_F(PgLayerTest, AHeldLockFailsTransientlyAfterLockTimeoutInsteadOfHanging) {
  PgConnectionOptions o;
  o.lock_timeout = absl::Milliseconds(200);
  auto pool = Pool(o);
  ASSERT_NE(pool, nullptr);
  pqxx::connection holder(db_->conninfo());
  pqxx::work lock(holder);
  lock.exec("SELECT * FROM t WHERE id = 1 FOR UPDATE");

  const absl::Status s = RunInTransaction(*pool, {.operation = "update_t"}, [](pqxx::work& txn) {
    txn.exec("UPDATE t SET v = v + 1 WHERE id = 1");
    return absl::OkStatus();
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("update_t")));
  EXPECT_TRUE(IsTransient(s));
  EXPECT_EQ(SqlstateOf(s), "55P03");

  // The lock gone, the same pool goes on.
  lock.abort();
  EXPECT_THAT(RunInTransaction(*pool, {.operation = "update_t"},
                               [](pqxx::work& txn) {
                                 txn.exec("UPDATE t SET v = v + 1 WHERE id = 1");
                                 return absl::OkStatus();
                               }),
              IsOk());
}

TEST_F(PgLayerTest, ALongStatementIsCancelledAsTransient) {
  PgConnectionOptions o;
  o.statement_timeout = absl::Milliseconds(200);
  auto pool = Pool(o, 1);
  ASSERT_NE(pool, nullptr);
  const absl::Status s = RunInTransaction(*pool, {.operation = "sleep"}, [](pqxx::work& txn) {
    txn.exec("SELECT pg_sleep(60)");
    return absl::OkStatus();
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(SqlstateOf(s), "57014");
  EXPECT_TRUE(IsTransient(s));
  EXPECT_THAT(pool->Ping(), IsOk());  // the connection is still usable
}

TEST_F(PgLayerTest, AKilledPooledConnectionIsReplacedAndTheRequestRerun) {
  auto pool = Pool({}, 1);
  ASSERT_NE(pool, nullptr);
  const int victim = BackendPid(*pool);
  ASSERT_NE(victim, 0);
  {
    pqxx::connection admin(db_->conninfo());
    pqxx::nontransaction txn(admin);
    ASSERT_TRUE(txn.exec1(absl::StrCat("SELECT pg_terminate_backend(", victim, ", 10000)"))[0]
                    .as<bool>());
  }
  // A write, not yet committed when the connection turns out dead: rerun on
  // a fresh connection, once, and committed once.
  int runs = 0;
  absl::StatusOr<int> pid = RunInTransaction(
      *pool, {.operation = "write"}, [&](pqxx::work& txn) -> absl::StatusOr<int> {
        ++runs;
        txn.exec("UPDATE t SET v = v + 1 WHERE id = 1");
        return txn.exec1("SELECT pg_backend_pid()")[0].as<int>();
      });
  ASSERT_THAT(pid, IsOk());
  EXPECT_NE(*pid, victim);
  EXPECT_LE(runs, 2);
  pqxx::connection check(db_->conninfo());
  pqxx::work txn(check);
  EXPECT_EQ(txn.exec1("SELECT v FROM t WHERE id = 1")[0].as<int>(), 1);
}

// The connection dies once the body is done: COMMIT goes to a dead backend,
// so nobody knows whether it committed. Never rerun: a rerun could write
// twice. UNKNOWN, marked in doubt, not transient.
TEST_F(PgLayerTest, AConnectionLostAtCommitIsInDoubtAndNeverRerun) {
  auto pool = Pool({}, 1);
  ASSERT_NE(pool, nullptr);
  int runs = 0;
  const absl::Status s =
      RunInTransaction(*pool, {.operation = "write"}, [&](pqxx::work& txn) {
        ++runs;
        txn.exec("UPDATE t SET v = v + 1 WHERE id = 1");
        const int self = txn.exec1("SELECT pg_backend_pid()")[0].as<int>();
        pqxx::connection admin(db_->conninfo());
        pqxx::nontransaction kill(admin);
        kill.exec(absl::StrCat("SELECT pg_terminate_backend(", self, ", 10000)"));
        return absl::OkStatus();
      });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnknown,
                          HasSubstr("write: the outcome of the commit is unknown")));
  EXPECT_TRUE(IsCommitInDoubt(s));
  EXPECT_FALSE(IsTransient(s));
  EXPECT_EQ(runs, 1);
  EXPECT_THAT(pool->Ping(), IsOk());  // the dead connection was replaced
}

// A statement name libpqxx refuses to define on a pooled connection (here:
// prepared on it by hand with other SQL) is a status, not an exception
// escaping Acquire; the pool goes on with fresh connections.
TEST_F(PgLayerTest, AStatementThatCannotBeDefinedFailsAcquireWithAStatus) {
  auto pool = Pool({}, 1);
  ASSERT_NE(pool, nullptr);
  {
    auto lease = pool->Acquire();
    ASSERT_THAT(lease, IsOk());
    lease->conn().prepare("get_v", "SELECT 2");
  }
  constexpr PgStatement kStatements[] = {{"get_v", "SELECT v FROM t WHERE id = $1"}};
  ASSERT_THAT(pool->RegisterStatements(kStatements), IsOk());
  EXPECT_THAT(pool->Acquire(), StatusIs(absl::StatusCode::kInternal, HasSubstr("get_v")));
  auto fresh = pool->Acquire();  // the slot was given back
  ASSERT_THAT(fresh, IsOk());
  pqxx::work txn(fresh->conn());
  EXPECT_EQ(txn.exec_prepared1("get_v", 1)[0].as<int>(), 0);
}

// A second replica waits for the first's migrations on the advisory lock,
// even when the operator's options set a short lock_timeout.
TEST_F(PgLayerTest, MigrationsWaitForTheAdvisoryLockWhateverTheOperatorsLockTimeout) {
  constexpr long long kKey = 424242;
  pqxx::connection first(db_->conninfo());
  pqxx::nontransaction hold(first);
  hold.exec(absl::StrCat("SELECT pg_advisory_lock(", kKey, ")"));

  absl::Status applied = absl::UnknownError("not run");
  std::thread second([&] {
    applied = ApplyMigrations(db_->conninfo() + " options='-c lock_timeout=100'",
                              {{1, "one", "CREATE TABLE migrated (id integer)"}}, kKey);
  });
  // Wait until the second one queues on the lock, then past its would-be
  // lock_timeout, before releasing.
  pqxx::connection observer(db_->conninfo());
  for (int i = 0; i < 500; ++i) {
    pqxx::nontransaction q(observer);
    if (q.exec1("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0]
            .as<int>() > 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::SleepFor(absl::Milliseconds(500));
  hold.exec(absl::StrCat("SELECT pg_advisory_unlock(", kKey, ")"));
  second.join();
  EXPECT_THAT(applied, IsOk());
}

TEST_F(PgLayerTest, PingAnswersForTheServerNotForADeadConnection) {
  auto pool = Pool({}, 1);
  ASSERT_NE(pool, nullptr);
  const int victim = BackendPid(*pool);
  pqxx::connection admin(db_->conninfo());
  pqxx::nontransaction txn(admin);
  txn.exec(absl::StrCat("SELECT pg_terminate_backend(", victim, ", 10000)"));
  EXPECT_THAT(pool->Ping(), IsOk());
}

TEST_F(PgLayerTest, SerializationFailuresAreRerunUpToMaxAttempts) {
  auto pool = Pool({}, 1);
  ASSERT_NE(pool, nullptr);
  constexpr char kFail[] = "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$";
  int runs = 0;
  EXPECT_THAT(RunInTransaction(*pool, {.operation = "flaky", .max_attempts = 3},
                               [&](pqxx::work& txn) {
                                 if (++runs < 3) txn.exec(kFail);
                                 return absl::OkStatus();
                               }),
              IsOk());
  EXPECT_EQ(runs, 3);

  runs = 0;
  const absl::Status s = RunInTransaction(*pool, {.operation = "always", .max_attempts = 2},
                                          [&](pqxx::work& txn) {
                                            ++runs;
                                            txn.exec(kFail);
                                            return absl::OkStatus();
                                          });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(runs, 2);
  // So is an ABORTED status of the body's own (a key that appeared meanwhile).
  runs = 0;
  EXPECT_THAT(RunInTransaction(*pool, {.operation = "appeared"},
                               [&](pqxx::work&) {
                                 return ++runs == 1 ? absl::AbortedError("key appeared, retry")
                                                    : absl::OkStatus();
                               }),
              IsOk());
  EXPECT_EQ(runs, 2);
  // Any other failing status of the body is returned as is, never rerun.
  runs = 0;
  EXPECT_THAT(RunInTransaction(*pool, {.operation = "missing"},
                               [&](pqxx::work&) {
                                 ++runs;
                                 return absl::NotFoundError("no such row");
                               }),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(runs, 1);
}

TEST_F(PgLayerTest, RegisteredStatementsAreDefinedOnEveryConnection) {
  auto pool = Pool({}, 2);
  ASSERT_NE(pool, nullptr);
  auto first = pool->Acquire();  // opened before the registration
  ASSERT_THAT(first, IsOk());
  constexpr PgStatement kGet{"get_v", "SELECT v FROM t WHERE id = $1"};
  constexpr PgStatement kStatements[] = {kGet};
  ASSERT_THAT(pool->RegisterStatements(kStatements), IsOk());
  ASSERT_THAT(pool->RegisterStatements(kStatements), IsOk());  // idempotent
  constexpr PgStatement kClash[] = {{"get_v", "SELECT 2"}};
  EXPECT_THAT(pool->RegisterStatements(kClash), StatusIs(absl::StatusCode::kInternal));
  auto second = pool->Acquire();  // a new connection
  ASSERT_THAT(second, IsOk());
  for (auto* lease : {&*second}) {
    pqxx::work txn(lease->conn());
    EXPECT_EQ(txn.exec_prepared1(kGet.name, 1)[0].as<int>(), 0);
  }
  { auto released = std::move(*first); }  // back to the pool, then reused
  EXPECT_THAT(RunInTransaction(*pool, {.operation = kGet.name},
                               [&](pqxx::work& txn) {
                                 txn.exec_prepared1(kGet.name, 1);
                                 return absl::OkStatus();
                               }),
              IsOk());
}

TEST(PgConnect, AServerThatNeverAnswersFailsAfterTheConnectTimeout) {
  // A loopback socket that listens but never accepts: the kernel completes
  // the TCP handshake and the startup packet waits for an answer forever.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  PgConnectionOptions o;
  o.connect_timeout = absl::Seconds(2);
  auto pool = PgPool::Create(
      absl::StrCat("host=127.0.0.1 port=", ntohs(addr.sin_port), " user=x dbname=x"), 1, o);
  EXPECT_THAT(pool, StatusIs(absl::StatusCode::kUnavailable));
  close(fd);
}

}  // namespace
}  // namespace octo
