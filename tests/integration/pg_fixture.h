#pragma once
// Shared by the integration tests: status matchers (this abseil has none) and
// a fixture with a fresh database, migrated, and a repository on it.
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/common/migrations.h"
#include "services/common/pg_pool.h"
#include "services/schema/migrations.h"
#include "services/subscription/pg_repository.h"
#include "tests/support/pg_test_db.h"

namespace octo::subscription {
inline void PrintTo(WebhookStatus s, std::ostream* os) {
  *os << (s == WebhookStatus::kEnabled ? "enabled" : "disabled");
}
}  // namespace octo::subscription

namespace octo::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status " << s;
  return s.ok();
}

// StatusIs(code) and StatusIs(code, message_matcher).
MATCHER_P(StatusIs, code, "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status " << s;
  return s.code() == code;
}
MATCHER_P2(StatusIs, code, message_matcher, "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

// A migrated database of its own for each test, a pool and a repository.
class PgRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    std::vector<Migration> migrations;
    for (const Migration& m : schema::Migrations()) {
      if (m.version <= MigrateUpTo()) migrations.push_back(m);
    }
    ASSERT_THAT(ApplyMigrations(db_->conninfo(), migrations, schema::kMigrationLockKey), IsOk());
    auto pool = PgPool::Create(db_->conninfo(), PoolSize());
    ASSERT_THAT(pool, IsOk());
    pool_ = *std::move(pool);
    auto repo = subscription::PgRepository::Create(pool_.get());
    ASSERT_THAT(repo, IsOk());
    repo_ = *std::move(repo);
  }

  void TearDown() override {
    repo_.reset();
    pool_.reset();  // close connections before the database is dropped
    db_.reset();
  }

  virtual int PoolSize() const { return 4; }
  // The migrations applied at set-up: all of them, or an older schema to
  // test an upgrade from.
  virtual int MigrateUpTo() const { return std::numeric_limits<int>::max(); }

  // A direct connection for raw SQL.
  std::unique_ptr<pqxx::connection> Raw() const {
    return std::make_unique<pqxx::connection>(db_->conninfo());
  }

  long long Count(const std::string& sql) const {
    auto conn = Raw();
    pqxx::work txn(*conn);
    return txn.exec1(sql)[0].as<long long>();
  }

  // Makes the first row written to `table` end its own session, as a server
  // crash or failover would: with `at_commit` false while the row is inserted
  // (the transaction never reaches COMMIT: nothing stored, safe to rerun);
  // with `at_commit` true during COMMIT (a deferred trigger: the client
  // cannot know whether it committed). KilledRuns() counts the rows the
  // trigger saw, over every run.
  void KillFirstSessionWriting(const std::string& table, bool at_commit) {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec("CREATE SEQUENCE octo_test_kills");
    txn.exec(
        "CREATE FUNCTION octo_test_kill() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        "  IF nextval('octo_test_kills') = 1 THEN"
        "    PERFORM pg_terminate_backend(pg_backend_pid());"
        "    PERFORM pg_sleep(10);"  // the termination arrives here
        "  END IF;"
        "  RETURN NULL;"
        " END $$");
    txn.exec("CREATE CONSTRAINT TRIGGER octo_test_kill AFTER INSERT ON " + table +
             (at_commit ? " DEFERRABLE INITIALLY DEFERRED" : "") +
             " FOR EACH ROW EXECUTE FUNCTION octo_test_kill()");
    txn.commit();
  }
  long long KilledRuns() const {
    return Count("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM octo_test_kills");
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<subscription::PgRepository> repo_;
};

}  // namespace octo::testing
