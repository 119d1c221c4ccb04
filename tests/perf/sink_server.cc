#include "tests/perf/sink_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/perf/latency_histogram.h"

namespace octo::perf {

std::int64_t RealtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace {

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 16 * 1024 * 1024;
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kMaxEpollEvents = 256;
constexpr int kMaxDelayMs = 600'000;

std::int64_t MonotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Small std::string_view helpers (Debian's abseil has its own string_view
// type, and this is the hot path anyway).
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

void StoreMax(std::atomic<std::int64_t>& a, std::int64_t v) {
  std::int64_t cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

// Counters shared by every loop.
struct Stats {
  std::atomic<std::uint64_t> requests{0};  // counted POSTs
  std::atomic<std::uint64_t> body_bytes{0};
  std::atomic<std::uint64_t> responses_2xx{0};
  std::atomic<std::uint64_t> responses_other{0};
  std::atomic<std::uint64_t> unmarked{0};  // POSTs without benchPublishedAtNs
  std::atomic<std::uint64_t> bad_requests{0};
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::int64_t> first_ns{0};
  std::atomic<std::int64_t> last_ns{0};
  LatencyHistogram latency;

  void Reset() {
    for (auto* c : {&requests, &body_bytes, &responses_2xx, &responses_other, &unmarked,
                    &bad_requests, &connections}) {
      c->store(0, std::memory_order_relaxed);
    }
    first_ns.store(0, std::memory_order_relaxed);
    last_ns.store(0, std::memory_order_relaxed);
    latency.Reset();
  }
};

std::string_view Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

void AppendResponse(std::string& out, int status, bool close, std::string_view content_type = {},
                    std::string_view body = {}) {
  if (status == 204 && !close) {
    out += "HTTP/1.1 204 No Content\r\n\r\n";  // the hot path
    return;
  }
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += Reason(status);
  out += "\r\n";
  if (status != 204) {
    out += "Content-Length: ";
    out += std::to_string(body.size());
    out += "\r\n";
  }
  if (!content_type.empty()) {
    out += "Content-Type: ";
    out += content_type;
    out += "\r\n";
  }
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
}

// "/delay/<ms>/status/<code>/rest" -> delay and status; unknown segments end
// the script.
void ScriptFromPath(std::string_view path, int& delay_ms, int& status) {
  auto next = [&path]() -> std::string_view {
    if (path.empty() || path[0] != '/') return {};
    path.remove_prefix(1);
    const std::size_t slash = path.find('/');
    std::string_view seg = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
    return seg;
  };
  for (;;) {
    std::string_view saved = path;
    std::string_view key = next();
    if (key != "delay" && key != "status") {
      path = saved;
      return;
    }
    int value = 0;
    if (!ParseNumber(next(), value)) return;
    if (key == "delay") delay_ms = std::clamp(value, 0, kMaxDelayMs);
    if (key == "status" && value >= 200 && value <= 599) status = value;
  }
}

// The CLOCK_REALTIME ns after `"benchPublishedAtNs":`, or -1.
std::int64_t PublishedAtNs(std::string_view body) {
  const void* hit = ::memmem(body.data(), body.size(), kPublishedAtKey, sizeof(kPublishedAtKey) - 1);
  if (hit == nullptr) return -1;
  const char* p = static_cast<const char*>(hit) + sizeof(kPublishedAtKey) - 1;
  const char* end = body.data() + body.size();
  while (p < end && (*p == ' ' || *p == '\t')) ++p;
  std::int64_t ns = -1;
  auto [ptr, ec] = std::from_chars(p, end, ns);
  if (ec != std::errc() || ptr == p) return -1;
  return ns;
}

struct Conn {
  int fd = -1;
  std::uint64_t id = 0;
  std::string in;
  std::size_t in_off = 0;
  std::string out;
  std::size_t out_off = 0;
  bool sent_continue = false;
  bool close_after_flush = false;
  bool waiting = false;  // a delayed answer is pending: parse nothing more
  int pending_status = 0;
  bool pending_close = false;
  bool writing = false;      // EPOLLOUT registered
  bool read_closed = false;  // the peer half-closed: EPOLLIN unregistered
};

struct Timer {
  std::int64_t deadline_ns;  // CLOCK_MONOTONIC
  std::uint64_t conn_id;
  bool operator>(const Timer& o) const { return deadline_ns > o.deadline_ns; }
};

class Loop {
 public:
  Loop(int listen_fd, Stats& stats, const std::atomic<bool>& stopping,
       std::function<std::string()> stats_json, std::function<void()> reset)
      : listen_fd_(listen_fd),
        stats_(stats),
        stopping_(stopping),
        stats_json_(std::move(stats_json)),
        reset_(std::move(reset)) {}
  ~Loop() {
    for (auto& [id, c] : conns_) ::close(c.fd);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  absl::Status Init() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", std::strerror(errno)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0)
      return absl::InternalError(absl::StrCat("epoll_ctl: ", std::strerror(errno)));
    return absl::OkStatus();
  }

  void Run() {
    std::vector<epoll_event> events(kMaxEpollEvents);
    read_buf_.resize(kReadChunk);
    while (!stopping_.load(std::memory_order_relaxed)) {
      int timeout_ms = 100;
      if (!timers_.empty()) {
        const std::int64_t wait_ns = timers_.top().deadline_ns - MonotonicNs();
        timeout_ms = static_cast<int>(std::clamp<std::int64_t>((wait_ns + 999'999) / 1'000'000, 0, 100));
      }
      const int n = ::epoll_wait(epoll_fd_, events.data(), kMaxEpollEvents, timeout_ms);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == 0) {
          Accept();
          continue;
        }
        auto it = conns_.find(events[i].data.u64);
        if (it == conns_.end()) continue;
        Conn& c = it->second;
        const std::uint32_t e = events[i].events;
        if ((e & (EPOLLERR | EPOLLHUP)) != 0) {
          Close(c);
          continue;
        }
        if ((e & EPOLLIN) != 0 && !OnReadable(c)) continue;  // closed
        if ((e & EPOLLOUT) != 0) Flush(c);
      }
      FireTimers();
    }
  }

 private:
  void Accept() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error: the next event retries
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const std::uint64_t id = next_id_++;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = id;
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        continue;
      }
      Conn& c = conns_[id];
      c.fd = fd;
      c.id = id;
      stats_.connections.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // False when the connection was closed.
  bool OnReadable(Conn& c) {
    bool eof = false;
    for (;;) {
      const ssize_t r = ::recv(c.fd, read_buf_.data(), read_buf_.size(), 0);
      if (r > 0) {
        c.in.append(read_buf_.data(), static_cast<std::size_t>(r));
        if (static_cast<std::size_t>(r) < read_buf_.size()) break;
        continue;
      }
      if (r == 0) {
        eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close(c);
      return false;
    }
    Process(c);
    if (eof) {
      // The peer half-closed: answer what is complete, then close. Stop
      // watching for input (level-triggered EOF would spin meanwhile).
      c.close_after_flush = true;
      c.read_closed = true;
      SetInterest(c);
      if (c.waiting) return true;  // the timer answers and closes
    }
    return Flush(c);
  }

  // Parses and answers complete requests in c.in.
  void Process(Conn& c) {
    while (!c.waiting && !c.close_after_flush) {
      std::string_view buf(c.in);
      buf.remove_prefix(c.in_off);
      if (buf.empty()) break;
      const std::size_t head_end = buf.find("\r\n\r\n");
      if (head_end == std::string_view::npos) {
        if (buf.size() > kMaxHeaderBytes) Fail(c, 431);
        break;
      }
      std::string_view head = buf.substr(0, head_end);
      const std::size_t line_end = head.find("\r\n");
      std::string_view line = head.substr(0, line_end);
      std::string_view headers =
          line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
      const std::size_t sp1 = line.find(' ');
      const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
      if (sp2 == std::string_view::npos) {
        Fail(c, 400);
        break;
      }
      std::string_view method = line.substr(0, sp1);
      std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      std::string_view version = line.substr(sp2 + 1);
      if (version.substr(0, 7) != "HTTP/1.") {
        Fail(c, 400);
        break;
      }
      bool keep_alive = version != "HTTP/1.0";
      std::size_t content_length = 0;
      bool expect_continue = false;
      bool chunked = false;
      while (!headers.empty()) {
        const std::size_t eol = headers.find("\r\n");
        std::string_view h = headers.substr(0, eol);
        headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
        const std::size_t colon = h.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view name = h.substr(0, colon);
        std::string_view value = Trim(h.substr(colon + 1));
        if (EqualsIgnoreCase(name, "content-length")) {
          if (!ParseNumber(value, content_length)) content_length = kMaxBodyBytes + 1;
        } else if (EqualsIgnoreCase(name, "connection")) {
          if (ContainsIgnoreCase(value, "close")) keep_alive = false;
          if (ContainsIgnoreCase(value, "keep-alive")) keep_alive = true;
        } else if (EqualsIgnoreCase(name, "expect")) {
          expect_continue = EqualsIgnoreCase(value, "100-continue");
        } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
          chunked = true;
        }
      }
      if (chunked) {
        Fail(c, 501);
        break;
      }
      if (content_length > kMaxBodyBytes) {
        Fail(c, 413);
        break;
      }
      const std::size_t total = head_end + 4 + content_length;
      if (buf.size() < total) {
        if (expect_continue && !c.sent_continue) {
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
          c.sent_continue = true;
        }
        break;
      }
      c.sent_continue = false;
      std::string_view body = buf.substr(head_end + 4, content_length);
      Handle(c, method, target, body, !keep_alive);
      c.in_off += total;
    }
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    } else if (c.in_off > kMaxHeaderBytes) {
      c.in.erase(0, c.in_off);
      c.in_off = 0;
    }
  }

  void Handle(Conn& c, std::string_view method, std::string_view target, std::string_view body,
              bool close) {
    const std::size_t query = target.find('?');
    std::string_view path = target.substr(0, query);
    if (method == "GET" || method == "HEAD") {
      if (path == "/stats") {
        AppendResponse(c.out, 200, close, "application/json", stats_json_());
      } else if (path == "/reset") {
        reset_();
        AppendResponse(c.out, 200, close, "application/json", "{}");
      } else if (path == "/healthz") {
        AppendResponse(c.out, 200, close, "text/plain", "ok\n");
      } else {
        AppendResponse(c.out, 404, close);
      }
      if (close) c.close_after_flush = true;
      return;
    }
    if (method != "POST" && method != "PUT") {
      AppendResponse(c.out, 405, close);
      if (close) c.close_after_flush = true;
      return;
    }
    const std::int64_t now = RealtimeNs();
    stats_.requests.fetch_add(1, std::memory_order_relaxed);
    stats_.body_bytes.fetch_add(body.size(), std::memory_order_relaxed);
    std::int64_t expected = 0;
    stats_.first_ns.compare_exchange_strong(expected, now, std::memory_order_relaxed);
    StoreMax(stats_.last_ns, now);
    const std::int64_t published = PublishedAtNs(body);
    if (published >= 0) {
      const std::int64_t us = now > published ? (now - published) / 1000 : 0;
      stats_.latency.Record(static_cast<std::uint64_t>(us));
    } else {
      stats_.unmarked.fetch_add(1, std::memory_order_relaxed);
    }
    int delay_ms = 0;
    int status = 204;
    if (path.size() > 1 && (path[1] == 'd' || path[1] == 's')) ScriptFromPath(path, delay_ms, status);
    (status < 300 ? stats_.responses_2xx : stats_.responses_other).fetch_add(1, std::memory_order_relaxed);
    if (delay_ms > 0) {
      c.waiting = true;
      c.pending_status = status;
      c.pending_close = close;
      timers_.push({MonotonicNs() + std::int64_t{delay_ms} * 1'000'000, c.id});
      return;
    }
    AppendResponse(c.out, status, close);
    if (close) c.close_after_flush = true;
  }

  void Fail(Conn& c, int status) {
    stats_.bad_requests.fetch_add(1, std::memory_order_relaxed);
    AppendResponse(c.out, status, /*close=*/true);
    c.close_after_flush = true;
  }

  void FireTimers() {
    const std::int64_t now = MonotonicNs();
    while (!timers_.empty() && timers_.top().deadline_ns <= now) {
      const std::uint64_t id = timers_.top().conn_id;
      timers_.pop();
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;  // closed meanwhile
      Conn& c = it->second;
      const bool eof = c.close_after_flush;
      c.waiting = false;
      c.close_after_flush = false;
      AppendResponse(c.out, c.pending_status, c.pending_close);
      if (c.pending_close) c.close_after_flush = true;
      Process(c);
      if (eof) c.close_after_flush = true;
      Flush(c);
    }
  }

  // Writes what is buffered; false when the connection was closed.
  bool Flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (w > 0) {
        c.out_off += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!c.writing) {
          c.writing = true;
          SetInterest(c);
        }
        return true;
      }
      Close(c);
      return false;
    }
    c.out.clear();
    c.out_off = 0;
    if (c.writing) {
      c.writing = false;
      SetInterest(c);
    }
    if (c.close_after_flush && !c.waiting) {
      Close(c);
      return false;
    }
    return true;
  }

  void SetInterest(Conn& c) {
    epoll_event ev{};
    ev.events = (c.read_closed ? 0u : EPOLLIN | EPOLLRDHUP) | (c.writing ? EPOLLOUT : 0u);
    ev.data.u64 = c.id;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void Close(Conn& c) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    const std::uint64_t id = c.id;
    conns_.erase(id);  // `c` dangles from here
  }

  int listen_fd_;
  int epoll_fd_ = -1;
  Stats& stats_;
  const std::atomic<bool>& stopping_;
  std::function<std::string()> stats_json_;
  std::function<void()> reset_;
  std::unordered_map<std::uint64_t, Conn> conns_;
  std::uint64_t next_id_ = 1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::string read_buf_;
};

absl::StatusOr<int> Listen(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("bind/listen 127.0.0.1:", port, ": ", std::strerror(err)));
  }
  return fd;
}

class SinkServerImpl final : public SinkServer {
 public:
  ~SinkServerImpl() override { Stop(); }

  absl::Status Init(const SinkOptions& options) {
    const int threads = std::max(1, options.threads);
    int port = options.listen_port;
    for (int i = 0; i < threads; ++i) {
      absl::StatusOr<int> fd = Listen(port);
      if (!fd.ok()) return fd.status();
      if (i == 0) {
        sockaddr_in addr{};
        socklen_t len = sizeof addr;
        ::getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len);
        port = ntohs(addr.sin_port);
        port_ = port;
      }
      loops_.push_back(std::make_unique<Loop>(
          *fd, stats_, stopping_, [this] { return StatsJson(); }, [this] { ResetStats(); }));
      if (absl::Status s = loops_.back()->Init(); !s.ok()) return s;
    }
    for (auto& loop : loops_) threads_.emplace_back([l = loop.get()] { l->Run(); });
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  std::string StatsJson() const override {
    const LatencyHistogram::Summary l = stats_.latency.Snapshot();
    auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    return absl::StrCat(
        "{\"requests\":", get(stats_.requests), ",\"body_bytes\":", get(stats_.body_bytes),
        ",\"responses_2xx\":", get(stats_.responses_2xx),
        ",\"responses_other\":", get(stats_.responses_other), ",\"unmarked\":", get(stats_.unmarked),
        ",\"bad_requests\":", get(stats_.bad_requests), ",\"connections\":", get(stats_.connections),
        ",\"first_ns\":", stats_.first_ns.load(std::memory_order_relaxed),
        ",\"last_ns\":", stats_.last_ns.load(std::memory_order_relaxed), ",\"latency_us\":{\"count\":",
        l.count, ",\"min\":", l.min_us, ",\"mean\":", static_cast<std::uint64_t>(l.mean_us),
        ",\"p50\":", l.p50_us, ",\"p90\":", l.p90_us, ",\"p99\":", l.p99_us, ",\"p999\":", l.p999_us,
        ",\"max\":", l.max_us, "}}\n");
  }

  void ResetStats() override { stats_.Reset(); }

  void Stop() override {
    stopping_.store(true);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
    loops_.clear();
  }

 private:
  Stats stats_;
  std::atomic<bool> stopping_{false};
  int port_ = 0;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SinkServer>> SinkServer::Start(SinkOptions options) {
  auto server = std::make_unique<SinkServerImpl>();
  if (absl::Status s = server->Init(options); !s.ok()) return s;
  return server;
}

}  // namespace octo::perf
