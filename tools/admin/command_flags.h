#pragma once
// The flag grammar shared by octo-admin's operator and event commands:
// `--name=value` or `--name value`, '_' and '-' one in names (never in
// values: --event=booking_update). Header-only: two small functions.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"

namespace octo::admin {

// A usage error of a command, pointing at --help.
inline absl::Status CommandUsage(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(message, " (octo-admin --help)"));
}

// The flag at args[i] (which starts with "--"): its normalised name and its
// value; `i` moves past a value given as the next argument.
inline absl::StatusOr<std::pair<std::string, std::string>> SplitCommandFlag(const std::vector<std::string>& args,
                                                                            std::size_t& i) {
  std::string name = args[i].substr(2);
  std::string value;
  if (const auto eq = name.find('='); eq != std::string::npos) {
    value = name.substr(eq + 1);
    name = name.substr(0, eq);
  } else if (i + 1 < args.size()) {
    value = args[++i];
  } else {
    return CommandUsage(absl::StrCat("--", name, " needs a value"));
  }
  return std::make_pair(absl::StrReplaceAll(name, {{"_", "-"}}), std::move(value));
}

}  // namespace octo::admin
