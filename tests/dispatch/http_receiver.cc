#include "tests/dispatch/http_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace octo::testing {
namespace {

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 410: return "Gone";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::optional<std::string> ReceivedRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (absl::EqualsIgnoreCase(n, absl::string_view(name.data(), name.size()))) return v;
  }
  return std::nullopt;
}

int ReceivedRequest::HeaderCount(std::string_view name) const {
  return static_cast<int>(std::count_if(headers.begin(), headers.end(), [&](const auto& h) {
    return absl::EqualsIgnoreCase(h.first, absl::string_view(name.data(), name.size()));
  }));
}

HttpReceiver::HttpReceiver(int listen_backlog) {
  handler_ = [](const ReceivedRequest&) { return Reply(200, "ok"); };
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket() failed");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, listen_backlog) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("bind/listen on 127.0.0.1 failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

HttpReceiver::~HttpReceiver() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  cv_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void HttpReceiver::SetHandler(Handler handler) {
  std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

std::string HttpReceiver::Url(std::string_view path) const {
  return absl::StrCat("http://127.0.0.1:", port_, absl::string_view(path.data(), path.size()));
}

std::vector<ReceivedRequest> HttpReceiver::Requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

bool HttpReceiver::WaitForRequests(std::size_t n, absl::Duration timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return requests_.size() >= n; });
}

bool HttpReceiver::Sleep(absl::Duration d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, absl::ToChronoMicroseconds(d), [&] { return stopping_; });
}

void HttpReceiver::AcceptLoop() {
  while (true) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) continue;
    const int connection = ++connections_;
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd, connection] { Serve(fd, connection); });
  }
}

void HttpReceiver::Serve(int fd, int connection) {
  std::string buffer;
  char chunk[16384];
  const auto read_more = [&]() -> bool {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  };
  bool keep_open = true;
  while (keep_open) {
    std::size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more()) {
        keep_open = false;
        break;
      }
    }
    if (!keep_open) break;
    ReceivedRequest request;
    request.connection = connection;
    const std::string head = buffer.substr(0, end);
    buffer.erase(0, end + 4);
    std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() != 3) break;
    request.method = first[0];
    request.target = first[1];
    std::size_t content_length = 0;
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const std::size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      std::string name = lines[i].substr(0, colon);
      std::string value(absl::StripAsciiWhitespace(absl::string_view(lines[i]).substr(colon + 1)));
      if (absl::EqualsIgnoreCase(name, "content-length")) (void)absl::SimpleAtoi(value, &content_length);
      request.headers.emplace_back(std::move(name), std::move(value));
    }
    while (buffer.size() < content_length) {
      if (!read_more()) {
        keep_open = false;
        break;
      }
    }
    if (!keep_open) break;
    request.body = buffer.substr(0, content_length);
    buffer.erase(0, content_length);
    request.received_at = absl::Now();

    Handler handler;
    {
      std::lock_guard lock(mu_);
      handler = handler_;
    }
    const int now = ++concurrent_;
    int seen = max_concurrent_.load();
    while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
    }
    ScriptedResponse response = handler(request);
    {
      std::lock_guard lock(mu_);
      requests_.push_back(std::move(request));
    }
    cv_.notify_all();
    const bool answered = response.delay <= absl::ZeroDuration() || Sleep(response.delay);
    --concurrent_;
    if (!answered) break;
    if (response.reset) {
      const linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      break;
    }
    std::string out;
    if (!response.raw.empty()) {
      out = response.raw;
    } else {
      out = absl::StrCat("HTTP/1.1 ", response.status, " ", ReasonPhrase(response.status), "\r\n");
      for (const auto& [n, v] : response.headers) absl::StrAppend(&out, n, ": ", v, "\r\n");
      absl::StrAppend(&out, "Content-Length: ", response.body.size(), "\r\n");
      if (response.close) absl::StrAppend(&out, "Connection: close\r\n");
      absl::StrAppend(&out, "\r\n", response.body);
    }
    if (!WriteAll(fd, out) || response.close || !response.raw.empty()) break;
  }
  {
    std::lock_guard lock(mu_);
    std::erase(open_fds_, fd);
  }
  ::close(fd);
}

ScriptedResponse Reply(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers) {
  ScriptedResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

ScriptedResponse Delayed(absl::Duration delay, int status) {
  ScriptedResponse r;
  r.status = status;
  r.delay = delay;
  return r;
}

ScriptedResponse ResetConnection() {
  ScriptedResponse r;
  r.reset = true;
  return r;
}

ScriptedResponse Raw(std::string bytes) {
  ScriptedResponse r;
  r.raw = std::move(bytes);
  return r;
}

int UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace octo::testing
