// The shared schema's migrations (services/schema, octo_schema): embedded
// correctly, idempotent, and safe when several replicas of either service
// apply them at once.
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_format.h"
#include "services/common/migrations.h"
#include "services/schema/migrations.h"
#include "tests/integration/pg_fixture.h"
#include "tests/support/pg_test_db.h"

#ifndef OCTO_SOURCE_DIR
#error "OCTO_SOURCE_DIR must name the source tree"
#endif

namespace octo::testing {
namespace {

using ::octo::schema::kMigrationLockKey;
using ::octo::schema::Migrations;

long long Query(const std::string& conninfo, const std::string& sql) {
  pqxx::connection conn(conninfo);
  pqxx::work txn(conn);
  return txn.exec1(sql)[0].as<long long>();
}

constexpr char kTablesQuery[] =
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
    "AND table_name IN ('suppliers', 'connections', 'api_keys', 'webhooks', 'events', "
    "'resource_snapshots', 'deliveries', 'delivery_attempts')";
constexpr long long kTables = 8;

TEST(Migrations, EmbeddedSqlMatchesTheFilesOnDisk) {
  const std::filesystem::path dir =
      std::filesystem::path(OCTO_SOURCE_DIR) / "services/schema/migrations";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".sql") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), Migrations().size());
  int previous = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& m = Migrations()[i];
    EXPECT_GT(m.version, previous);
    previous = m.version;
    EXPECT_EQ(files[i].filename().string(), absl::StrFormat("%04d_%s.sql", m.version, m.name));
    std::ifstream in(files[i]);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(m.sql, text.str()) << files[i];
  }
  EXPECT_EQ(Migrations().front().version, 1);
}

TEST(Migrations, ApplyingTwiceIsANoOp) {
  TestDatabase db;
  ASSERT_THAT(ApplyMigrations(db.conninfo(), Migrations(), kMigrationLockKey), IsOk());
  EXPECT_EQ(Query(db.conninfo(), kTablesQuery), kTables);
  ASSERT_THAT(ApplyMigrations(db.conninfo(), Migrations(), kMigrationLockKey), IsOk());
  EXPECT_EQ(Query(db.conninfo(), "SELECT count(*) FROM schema_migrations"),
            static_cast<long long>(Migrations().size()));
}

TEST(Migrations, ConcurrentAppliersApplyEachMigrationOnce) {
  TestDatabase db;
  constexpr int kReplicas = 4;
  std::vector<absl::Status> results(kReplicas);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = ApplyMigrations(db.conninfo(), Migrations(), kMigrationLockKey); });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_THAT(s, IsOk());
  EXPECT_EQ(Query(db.conninfo(), kTablesQuery), kTables);
  EXPECT_EQ(Query(db.conninfo(), "SELECT count(*) FROM schema_migrations"),
            static_cast<long long>(Migrations().size()));
  EXPECT_EQ(
      Query(db.conninfo(), "SELECT count(*) FROM pg_trigger WHERE tgname = 'webhooks_enforce_cap'"),
      1);
}

}  // namespace
}  // namespace octo::testing

namespace octo::testing {
namespace {

// Without OCTO_TEST_PG a PostgreSQL test fails loudly; it never skips.
TEST(PgTestDb, MissingClusterFailsInsteadOfSkipping) {
  const std::string saved = TestClusterConninfo();
  ::unsetenv("OCTO_TEST_PG");
  bool threw = false;
  EXPECT_NONFATAL_FAILURE(
      {
        try {
          TestDatabase db;
        } catch (const std::runtime_error&) {
          threw = true;
        }
      },
      "OCTO_TEST_PG is not set");
  ::setenv("OCTO_TEST_PG", saved.c_str(), 1);
  EXPECT_TRUE(threw);
}

TEST(PgTestDb, CreatesAndDropsAUniqueDatabase) {
  std::string name;
  {
    TestDatabase a;
    TestDatabase b;
    EXPECT_NE(a.name(), b.name());
    name = a.name();
    pqxx::connection conn(a.conninfo());
    pqxx::work txn(conn);
    EXPECT_EQ(txn.exec1("SELECT current_database()")[0].as<std::string>(), a.name());
  }
  pqxx::connection conn(TestClusterConninfo());
  pqxx::work txn(conn);
  EXPECT_EQ(
      txn.exec_params1("SELECT count(*) FROM pg_database WHERE datname = $1", name)[0].as<int>(),
      0);
}

}  // namespace
}  // namespace octo::testing
