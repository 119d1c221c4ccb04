#include "tests/perf/wrk_runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/process.h"

namespace octo::perf {

absl::StatusOr<WrkResult> RunWrk(const WrkOptions& options) {
  if (::access(options.wrk_bin.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(options.wrk_bin,
                                            " not found: install the Debian package wrk "
                                            "(scripts/bench.sh does)"));
  }
  // A JSON body of exactly body_bytes bytes.
  const std::string prefix = R"({"benchPadding":")";
  const std::string suffix = R"("})";
  const int pad = std::max(0, options.body_bytes - static_cast<int>(prefix.size() + suffix.size()));
  const std::string script_path = options.work_dir + "/wrk-post.lua";
  {
    std::ofstream script(script_path);
    script << "-- written by octo-bench: POST a " << options.body_bytes << "-byte JSON body\n"
           << "wrk.method = \"POST\"\n"
           << "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
           << "wrk.body = '" << prefix << "' .. string.rep(\"x\", " << pad << ") .. '" << suffix << "'\n";
    if (!script) return absl::InternalError(absl::StrCat("cannot write ", script_path));
  }
  WrkResult result;
  std::vector<std::string> args = {absl::StrCat("-t", options.threads),
                                   absl::StrCat("-c", options.connections),
                                   absl::StrCat("-d", options.seconds, "s"),
                                   "--timeout", "5s", "-s", script_path,
                                   absl::StrCat("http://127.0.0.1:", options.port, options.path)};
  result.command = absl::StrCat(options.wrk_bin, " ", absl::StrJoin(args, " "));
  const std::string log_path = options.work_dir + "/wrk.log";
  std::remove(log_path.c_str());
  auto child = testing::ChildProcess::Start(
      {.binary = options.wrk_bin, .args = args, .env = {}, .log_path = log_path});
  if (!child.ok()) return child.status();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.seconds + 30);
  while ((*child)->IsRunning()) {
    if (std::chrono::steady_clock::now() > deadline) {
      (*child)->Kill9();
      return absl::DeadlineExceededError(absl::StrCat("wrk did not finish: ", (*child)->LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  testing::ExitInfo exit = (*child)->Terminate(std::chrono::seconds(1));
  std::ifstream in(log_path);
  std::stringstream output;
  output << in.rdbuf();
  bool found = false;
  for (absl::string_view line : absl::StrSplit(output.str(), '\n')) {
    absl::string_view t = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&t, "Requests/sec:")) {
      found = absl::SimpleAtod(absl::StripAsciiWhitespace(t), &result.requests_per_second);
    } else if (absl::StrContains(t, " requests in ")) {
      (void)absl::SimpleAtoi(t.substr(0, t.find(' ')), &result.requests);
    } else if (absl::ConsumePrefix(&t, "Non-2xx or 3xx responses:")) {
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(t), &result.non_2xx);
    } else if (absl::StartsWith(t, "Socket errors:")) {
      result.socket_errors = std::string(t);
    } else if (absl::StartsWith(t, "Latency") && result.latency.empty()) {
      result.latency = std::string(t);
    }
  }
  if (!found || !exit.Clean()) {
    return absl::InternalError(
        absl::StrCat("wrk failed (", exit.ToString(), "): ", (*child)->LogTail(2000)));
  }
  return result;
}

}  // namespace octo::perf
