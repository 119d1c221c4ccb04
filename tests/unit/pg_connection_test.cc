// Connection options and the conninfo they produce, without a server
// (PQconninfoParse is client-side).
#include "services/common/pg_connection.h"

#include <libpq-fe.h>

#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace octo {
namespace {

// keyword -> value of a conninfo, as libpq reads it.
std::map<std::string, std::string> Parsed(const std::string& conninfo) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(
      PQconninfoParse(conninfo.c_str(), &error), &PQconninfoFree);
  EXPECT_NE(opts, nullptr) << (error != nullptr ? error : "") << " in " << conninfo;
  if (error != nullptr) PQfreemem(error);
  std::map<std::string, std::string> out;
  if (opts == nullptr) return out;
  for (PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out[o->keyword] = o->val;
  }
  return out;
}

TEST(PgConninfo, AddsTheDefaultTimeoutsAndKeepalives) {
  absl::StatusOr<std::string> c = PgConninfo("host=/tmp/pg port=5999 dbname=octo", {});
  ASSERT_TRUE(c.ok()) << c.status();
  auto kv = Parsed(*c);
  EXPECT_EQ(kv["host"], "/tmp/pg");
  EXPECT_EQ(kv["port"], "5999");
  EXPECT_EQ(kv["dbname"], "octo");
  EXPECT_EQ(kv["connect_timeout"], "5");
  EXPECT_EQ(kv["keepalives"], "1");
  EXPECT_EQ(kv["keepalives_idle"], "30");
  EXPECT_EQ(kv["keepalives_interval"], "10");
  EXPECT_EQ(kv["keepalives_count"], "3");
  EXPECT_EQ(kv["options"],
            "-c statement_timeout=30000 -c lock_timeout=5000 "
            "-c idle_in_transaction_session_timeout=60000");
}

TEST(PgConninfo, AcceptsUrisAndKeepsQuotedValues) {
  PgConnectionOptions o;
  o.statement_timeout = absl::Milliseconds(1500);
  o.lock_timeout = absl::ZeroDuration();  // off
  o.connect_timeout = absl::Seconds(3);
  absl::StatusOr<std::string> c =
      PgConninfo("postgresql://octo:p%27w%20d@127.0.0.1:5432/webhooks?sslmode=disable", o);
  ASSERT_TRUE(c.ok()) << c.status();
  auto kv = Parsed(*c);
  EXPECT_EQ(kv["user"], "octo");
  EXPECT_EQ(kv["password"], "p'w d");
  EXPECT_EQ(kv["host"], "127.0.0.1");
  EXPECT_EQ(kv["dbname"], "webhooks");
  EXPECT_EQ(kv["sslmode"], "disable");
  EXPECT_EQ(kv["connect_timeout"], "3");
  EXPECT_EQ(kv["options"],
            "-c statement_timeout=1500 -c lock_timeout=0 "
            "-c idle_in_transaction_session_timeout=60000");
}

TEST(PgConninfo, TheOperatorsOwnSettingsWin) {
  absl::StatusOr<std::string> c = PgConninfo(
      "dbname=octo connect_timeout=20 keepalives=0 options='-c lock_timeout=100'", {});
  ASSERT_TRUE(c.ok()) << c.status();
  auto kv = Parsed(*c);
  EXPECT_EQ(kv["connect_timeout"], "20");
  EXPECT_EQ(kv["keepalives"], "0");
  // Later -c settings win in PostgreSQL: the operator's come last.
  EXPECT_EQ(kv["options"],
            "-c statement_timeout=30000 -c lock_timeout=5000 "
            "-c idle_in_transaction_session_timeout=60000 -c lock_timeout=100");
}

TEST(PgConninfo, RefusesAnUnparsableConninfoWithoutEchoingIt) {
  absl::StatusOr<std::string> c = PgConninfo("host=x password=hunter2 nonsense", {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message().find("hunter2"), absl::string_view::npos) << c.status();
}

TEST(PgConnectionOptions, DefaultsAreValid) {
  EXPECT_TRUE(ValidatePgConnectionOptions({}).ok());
}

TEST(PgConnectionOptions, RefusesOutOfRangeValuesNamingTheFlag) {
  const struct {
    void (*set)(PgConnectionOptions&);
    const char* flag;
  } cases[] = {
      {[](PgConnectionOptions& o) { o.statement_timeout = absl::Seconds(-1); },
       "--pg_statement_timeout"},
      {[](PgConnectionOptions& o) { o.statement_timeout = absl::Microseconds(1500); },
       "--pg_statement_timeout"},
      {[](PgConnectionOptions& o) { o.lock_timeout = absl::Hours(25); }, "--pg_lock_timeout"},
      {[](PgConnectionOptions& o) { o.idle_in_transaction_timeout = absl::InfiniteDuration(); },
       "--pg_idle_in_transaction_timeout"},
      {[](PgConnectionOptions& o) { o.connect_timeout = absl::Seconds(1); },
       "--pg_connect_timeout"},
      {[](PgConnectionOptions& o) { o.connect_timeout = absl::Milliseconds(2500); },
       "--pg_connect_timeout"},
      {[](PgConnectionOptions& o) { o.keepalives_idle = absl::ZeroDuration(); },
       "--pg_keepalives_idle"},
      {[](PgConnectionOptions& o) { o.keepalives_interval = absl::Hours(3); },
       "--pg_keepalives_interval"},
      {[](PgConnectionOptions& o) { o.keepalives_count = 0; }, "--pg_keepalives_count"},
  };
  for (const auto& c : cases) {
    PgConnectionOptions o;
    c.set(o);
    const absl::Status s = ValidatePgConnectionOptions(o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_NE(s.message().find(c.flag), absl::string_view::npos) << s;
    EXPECT_FALSE(PgConninfo("dbname=x", o).ok()) << c.flag;
  }
}

}  // namespace
}  // namespace octo
