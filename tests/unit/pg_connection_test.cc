// Connection options and the conninfo they produce, without a server
// (PQconninfoParse is client-side).
#include "services/common/pg_connection.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
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
  // Keepalive only probes idle sockets; a request in flight needs this.
  EXPECT_EQ(kv["tcp_user_timeout"], "60000");
  EXPECT_EQ(kv["options"],
            "-c statement_timeout=30000 -c lock_timeout=5000 "
            "-c idle_in_transaction_session_timeout=60000 -c jit=off");
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
            "-c idle_in_transaction_session_timeout=60000 -c jit=off");
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
            "-c idle_in_transaction_session_timeout=60000 -c jit=off -c lock_timeout=100");
}

TEST(PgConninfo, RefusesAnUnparsableConninfoWithoutEchoingIt) {
  absl::StatusOr<std::string> c = PgConninfo("host=x password=hunter2 nonsense", {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message().find("hunter2"), absl::string_view::npos) << c.status();
}

// libpq's own parse errors quote the offending token, which can be a piece
// of the password: none of it may reach the message.
TEST(PgConninfo, ParseErrorsNeverQuoteAPieceOfThePassword) {
  const struct {
    const char* conninfo;
    const char* secret;
  } cases[] = {
      {"postgresql://octo:p%zz@db/octo", "p%zz"},        // invalid percent-encoded token
      {"host=db password=hun ter2 dbname=octo", "ter2"},  // missing "=" after "ter2"
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::string> r = PgConninfo(c.conninfo, {});
    ASSERT_FALSE(r.ok()) << c.conninfo;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().find(c.secret), absl::string_view::npos) << r.status();
    EXPECT_NE(r.status().message().find("unparsable PostgreSQL conninfo"), absl::string_view::npos);
  }
}

// Sets an environment variable for one scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(PgConninfo, PgoptionsFromTheEnvironmentIsKeptAfterOurs) {
  ScopedEnv env("PGOPTIONS", "-c lock_timeout=2s -c search_path=octo");
  auto kv = Parsed(*PgConninfo("dbname=octo", {}));
  EXPECT_EQ(kv["options"],
            "-c statement_timeout=30000 -c lock_timeout=5000 "
            "-c idle_in_transaction_session_timeout=60000 -c jit=off -c lock_timeout=2s -c search_path=octo");
  // The conninfo's own options replace PGOPTIONS, as libpq does.
  auto own = Parsed(*PgConninfo("dbname=octo options='-c work_mem=8MB'", {}));
  EXPECT_EQ(own["options"],
            "-c statement_timeout=30000 -c lock_timeout=5000 "
            "-c idle_in_transaction_session_timeout=60000 -c jit=off -c work_mem=8MB");
}

TEST(PgConninfo, PgconnectTimeoutFromTheEnvironmentApplies) {
  ScopedEnv env("PGCONNECT_TIMEOUT", "17");
  auto kv = Parsed(*PgConninfo("dbname=octo", {}));
  EXPECT_EQ(kv.count("connect_timeout"), 0u);  // libpq takes PGCONNECT_TIMEOUT
  EXPECT_EQ(Parsed(*PgConninfo("dbname=octo connect_timeout=9", {}))["connect_timeout"], "9");
}

TEST(PgConninfo, OverrideOptionsComeAfterTheOperatorsAndWin) {
  PgConnectionOptions o;
  o.override_options = "-c lock_timeout=0 -c statement_timeout=0";
  auto kv = Parsed(*PgConninfo("dbname=octo options='-c lock_timeout=2s'", o));
  EXPECT_EQ(kv["options"],
            "-c statement_timeout=30000 -c lock_timeout=5000 "
            "-c idle_in_transaction_session_timeout=60000 -c jit=off -c lock_timeout=2s "
            "-c lock_timeout=0 -c statement_timeout=0");
}

TEST(PgConninfo, TcpUserTimeoutIsConfigurableAndOffAtZero) {
  PgConnectionOptions o;
  o.tcp_user_timeout = absl::Milliseconds(2500);
  EXPECT_EQ(Parsed(*PgConninfo("dbname=octo", o))["tcp_user_timeout"], "2500");
  o.tcp_user_timeout = absl::ZeroDuration();
  EXPECT_EQ(Parsed(*PgConninfo("dbname=octo", o)).count("tcp_user_timeout"), 0u);
  // The conninfo's own value wins.
  EXPECT_EQ(Parsed(*PgConninfo("dbname=octo tcp_user_timeout=100", {}))["tcp_user_timeout"],
            "100");
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
      {[](PgConnectionOptions& o) { o.tcp_user_timeout = absl::Seconds(-1); },
       "--pg_tcp_user_timeout"},
      {[](PgConnectionOptions& o) { o.tcp_user_timeout = absl::Microseconds(1500); },
       "--pg_tcp_user_timeout"},
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
