#include "tests/faults/pg_cluster.h"

#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace octo::faults {
namespace {

std::string PgBin() {
  const char* dir = std::getenv("OCTO_PG_BIN");
  return dir != nullptr && *dir != '\0' ? dir : "/usr/lib/postgresql/15/bin";
}

bool IsRoot() { return geteuid() == 0; }

// `command` as the cluster's owner, from / (a cwd postgres cannot read
// would only warn); output appended to `log`.
int RunAsOwner(const std::string& command, const std::string& log) {
  const std::string inner = absl::StrCat(command, " >>", log, " 2>&1");
  const std::string full = IsRoot() ? absl::StrCat("cd / && runuser -u postgres -- sh -c '", inner, "'")
                                    : absl::StrCat("cd / && ", inner);
  return std::system(full.c_str());
}

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
}

// A port nothing listens on right now (bound and released: PostgreSQL
// takes it a moment later; a clash makes Start fail loudly).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

PgCluster::~PgCluster() {
  if (dir_.empty()) return;
  if (running_) {
    RunAsOwner(absl::StrCat(PgBin(), "/pg_ctl -D ", dir_, "/data -m immediate -w -t 30 stop"), dir_ + "/ctl.log");
  }
  std::system(absl::StrCat("rm -rf '", dir_, "'").c_str());
}

absl::Status PgCluster::Create() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/octo-fault-pg.XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return absl::FailedPreconditionError("mkdtemp failed");
  dir_ = pattern;
  if (IsRoot()) {
    const passwd* pg = getpwnam("postgres");
    if (pg == nullptr) return absl::FailedPreconditionError("running as root but there is no postgres user");
    if (chown(dir_.c_str(), pg->pw_uid, pg->pw_gid) != 0) return absl::FailedPreconditionError("chown failed");
  }
  const std::string log = dir_ + "/initdb.log";
  if (RunAsOwner(absl::StrCat(PgBin(), "/initdb -D ", dir_, "/data -U postgres -A trust -E UTF8 --no-locale --no-sync"),
                 log) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("initdb failed (", PgBin(), "):\n", Tail(log)));
  }
  port_ = FreePort();
  {
    std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
    conf << "listen_addresses = '127.0.0.1'\nport = " << port_ << "\nunix_socket_directories = '" << dir_
         << "'\nmax_connections = 100\nshared_buffers = 64MB\nfsync = on\nlog_min_messages = warning\n";
  }
  conninfo_ = absl::StrCat("host=", dir_, " port=", port_, " user=postgres dbname=postgres");
  return Start();
}

absl::Status PgCluster::Start() {
  const std::string log = dir_ + "/ctl.log";
  if (RunAsOwner(absl::StrCat(PgBin(), "/pg_ctl -D ", dir_, "/data -l ", dir_, "/postgresql.log -w -t 60 start"),
                 log) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("pg_ctl start failed:\n", Tail(log), "\n", Tail(dir_ + "/postgresql.log")));
  }
  running_ = true;
  return absl::OkStatus();
}

absl::Status PgCluster::StopImmediate() {
  const std::string log = dir_ + "/ctl.log";
  if (RunAsOwner(absl::StrCat(PgBin(), "/pg_ctl -D ", dir_, "/data -m immediate -w -t 30 stop"), log) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("pg_ctl stop failed:\n", Tail(log)));
  }
  running_ = false;
  return absl::OkStatus();
}

}  // namespace octo::faults
