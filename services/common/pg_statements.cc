#include "services/common/pg_statements.h"

#include <string_view>

#include "absl/strings/str_cat.h"

namespace octo {

absl::Status PgStatementRegistry::Add(std::span<const PgStatement> statements) {
  std::lock_guard lock(mu_);
  std::vector<PgStatement> fresh;
  for (const PgStatement& s : statements) {
    bool known = false;
    for (const auto* list : {&statements_, &fresh}) {
      for (const PgStatement& have : *list) {
        if (std::string_view(have.name) != s.name) continue;
        if (std::string_view(have.sql) != s.sql) {
          return absl::InternalError(
              absl::StrCat("prepared statement ", s.name, " is defined twice, differently"));
        }
        known = true;
      }
    }
    if (!known) fresh.push_back(s);
  }
  statements_.insert(statements_.end(), fresh.begin(), fresh.end());
  return absl::OkStatus();
}

void PgStatementRegistry::DefineNew(pqxx::connection_base& conn, std::size_t* defined) const {
  std::lock_guard lock(mu_);
  for (; *defined < statements_.size(); ++*defined) {
    conn.prepare(statements_[*defined].name, statements_[*defined].sql);
  }
}

std::size_t PgStatementRegistry::size() const {
  std::lock_guard lock(mu_);
  return statements_.size();
}

}  // namespace octo
