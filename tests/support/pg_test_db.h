#pragma once
// Throwaway PostgreSQL databases for tests.
//
// Tests that need PostgreSQL read one variable, OCTO_TEST_PG: the libpq
// conninfo (key=value or postgresql:// URI) of a superuser on a throwaway
// cluster, e.g. "host=/tmp/pg port=5999 user=postgres dbname=postgres".
// Without it those tests FAIL with a clear message; they never skip.
//
// Example:
//   TEST(WebhookStore, Creates) {
//     octo::testing::TestDatabase db;   // CREATE DATABASE octo_test_<hex>
//     auto pool = octo::PgPool::Create(db.conninfo(), 2);
//     ...
//   }                                    // DROP DATABASE ... WITH (FORCE)
#include <string>
#include <string_view>

namespace octo::testing {

// The conninfo in OCTO_TEST_PG. When it is unset or empty, records a
// GoogleTest failure and throws std::runtime_error (GoogleTest reports the
// exception as a failure of the current test), so it never returns "".
std::string TestClusterConninfo();

// `conninfo` with its dbname replaced by `dbname` (all other settings kept).
// Accepts key=value strings and URIs; returns key=value. Throws
// std::runtime_error for an unparsable conninfo.
std::string WithDbname(std::string_view conninfo, std::string_view dbname);

// A fresh, uniquely named database on the test cluster, created on
// construction and dropped (WITH (FORCE), so open connections do not block
// it) on destruction. Construction failure records a test failure and throws
// std::runtime_error. Not copyable or movable. Thread-compatible.
class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  // "octo_test_<16 hex digits>".
  const std::string& name() const { return name_; }
  // Conninfo of the cluster with dbname = name().
  const std::string& conninfo() const { return conninfo_; }

 private:
  std::string cluster_conninfo_;
  std::string name_;
  std::string conninfo_;
};

}  // namespace octo::testing
