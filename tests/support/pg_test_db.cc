#include "tests/support/pg_test_db.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pqxx/pqxx>

namespace octo::testing {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  ADD_FAILURE() << message;
  throw std::runtime_error(message);
}

// Quotes a conninfo value: 'value' with \ and ' escaped.
std::string QuoteValue(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string RandomHex(int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < digits; ++i) out.push_back(kHex[rd() % 16]);
  return out;
}

}  // namespace

std::string TestClusterConninfo() {
  const char* v = std::getenv("OCTO_TEST_PG");
  if (v == nullptr || *v == '\0') {
    Fail(
        "OCTO_TEST_PG is not set: it must hold the libpq conninfo of a superuser on a throwaway "
        "PostgreSQL cluster (e.g. \"host=/tmp/pg port=5999 user=postgres dbname=postgres\"); "
        "the README's test command starts one and sets it");
  }
  return v;
}

std::string WithDbname(std::string_view conninfo, std::string_view dbname) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> opts(
      PQconninfoParse(std::string(conninfo).c_str(), &err), &PQconninfoFree);
  if (!opts) {
    std::string message = "unparsable conninfo in OCTO_TEST_PG";
    if (err != nullptr) {
      message += std::string(": ") + err;
      PQfreemem(err);
    }
    throw std::runtime_error(message);
  }
  std::string out;
  for (PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string_view(o->keyword) == "dbname") continue;
    out += o->keyword;
    out += '=';
    out += QuoteValue(o->val);
    out += ' ';
  }
  out += "dbname=";
  out += QuoteValue(dbname);
  return out;
}

TestDatabase::TestDatabase()
    : cluster_conninfo_(TestClusterConninfo()), name_("octo_test_" + RandomHex(16)) {
  try {
    conninfo_ = WithDbname(cluster_conninfo_, name_);
    pqxx::connection conn(cluster_conninfo_);
    pqxx::nontransaction txn(conn);
    txn.exec("CREATE DATABASE " + txn.quote_name(name_));
  } catch (const std::exception& e) {
    Fail("cannot create test database " + name_ + " on the OCTO_TEST_PG cluster: " + e.what());
  }
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection conn(cluster_conninfo_);
    pqxx::nontransaction txn(conn);
    txn.exec("DROP DATABASE IF EXISTS " + txn.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: cannot drop test database %s: %s\n", name_.c_str(), e.what());
  }
}

}  // namespace octo::testing
