#include "gateway/http_server.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/error_code.hpp>

#include "absl/strings/str_cat.h"
#include "gateway/http_session.h"
#include "services/common/log.h"

namespace octo::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// Wait before accepting again after accept() failed (e.g. out of fds).
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

}  // namespace

class HttpServer::Impl final : public SessionOwner {
 public:
  Impl(Options options, HttpHandler* handler) : options_(std::move(options)), handler_(handler) {}

  ~Impl() { Stop(std::chrono::milliseconds(0)); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  absl::Status Start();
  void Stop(std::chrono::milliseconds drain);
  int port() const { return port_; }

  const Options& options() const override { return options_; }
  HttpHandler* handler() const override { return handler_; }
  bool stopping() const override { return stopping_.load(std::memory_order_acquire); }

  void Register(const std::shared_ptr<HttpSession>& session);
  void Unregister(HttpSession* session) override;

 private:
  void DoAccept();
  void OnAccept(error_code ec, tcp::socket socket);

  const Options options_;
  HttpHandler* const handler_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;  // by the owner's thread only
  bool stopped_ = false;  // by the owner's thread only
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable sessions_gone_;
  std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions_;  // guarded by mu_

  // Declared after the session registry: destroying the io_context destroys
  // the handlers still queued in it, and with them the last references to
  // their sessions, whose destructors unregister themselves.
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_{asio::make_strand(ioc_)};
  asio::steady_timer accept_retry_{acceptor_.get_executor()};
  std::vector<std::thread> threads_;
};

absl::Status HttpServer::Impl::Start() {
  if (started_) return absl::FailedPreconditionError("the server was already started");
  started_ = true;
  error_code ec;
  tcp::resolver resolver(ioc_);
  const auto endpoints =
      resolver.resolve(options_.host, std::to_string(options_.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve '", options_.host, "': ", ec.message()));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  const std::string where = absl::StrCat(endpoint.address().to_string(), ":", endpoint.port());
  if (acceptor_.open(endpoint.protocol(), ec); ec) {
    return absl::UnavailableError(absl::StrCat("socket for ", where, ": ", ec.message()));
  }
  if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return absl::UnavailableError(absl::StrCat("SO_REUSEADDR on ", where, ": ", ec.message()));
  }
  if (acceptor_.bind(endpoint, ec); ec) {
    return absl::UnavailableError(absl::StrCat("bind ", where, ": ", ec.message()));
  }
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return absl::UnavailableError(absl::StrCat("listen on ", where, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec)
    return absl::UnavailableError(absl::StrCat("local endpoint of ", where, ": ", ec.message()));

  work_.emplace(ioc_.get_executor());
  asio::post(acceptor_.get_executor(), [this] { DoAccept(); });
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] {
      // A handler that throws must not take the process down: log and go on.
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          log::Error("uncaught exception on an I/O thread", {{"what", e.what()}});
        } catch (...) {
          log::Error("uncaught non-standard exception on an I/O thread");
        }
      }
    });
  }
  return absl::OkStatus();
}

void HttpServer::Impl::DoAccept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void HttpServer::Impl::OnAccept(error_code ec, tcp::socket socket) {
  if (stopping() || ec == asio::error::operation_aborted) return;
  if (ec) {
    // EMFILE/ENFILE/ENOBUFS...: back off briefly instead of spinning.
    log::Warn("accept failed", {{"error", ec.message()}});
    accept_retry_.expires_after(kAcceptRetryDelay);
    accept_retry_.async_wait([this](error_code wait_ec) {
      if (!wait_ec && !stopping()) DoAccept();
    });
    return;
  }
  bool full = false;
  {
    std::lock_guard lock(mu_);
    full = static_cast<int>(sessions_.size()) >= options_.max_connections;
  }
  error_code ignored;
  const tcp::endpoint remote = socket.remote_endpoint(ignored);
  std::string address = ignored ? std::string("unknown") : ClientAddressKey(remote.address());
  if (full) {
    log::Warn("connection limit reached; closing a new connection");
    if (options_.guard != nullptr) options_.guard->CountGlobalConnectionLimit();
    socket.close(ignored);
  } else if (options_.guard != nullptr && !options_.guard->AdmitConnection(address)) {
    // No log line per refusal: a client at its cap would flood the log.
    socket.close(ignored);
  } else {
    socket.set_option(tcp::no_delay(true), ignored);
    auto session = std::make_shared<HttpSession>(this, std::move(socket), std::move(address));
    Register(session);
    asio::post(session->executor(), [session] { session->Start(); });
  }
  DoAccept();
}

void HttpServer::Impl::Register(const std::shared_ptr<HttpSession>& session) {
  std::lock_guard lock(mu_);
  sessions_.emplace(session.get(), session);
}

void HttpServer::Impl::Unregister(HttpSession* session) {
  std::lock_guard lock(mu_);
  sessions_.erase(session);
  if (sessions_.empty()) sessions_gone_.notify_all();
}

void HttpServer::Impl::Stop(std::chrono::milliseconds drain) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_release);

  asio::post(acceptor_.get_executor(), [this] {
    error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  std::vector<std::shared_ptr<HttpSession>> live;
  {
    std::lock_guard lock(mu_);
    for (const auto& [raw, weak] : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) {
    asio::post(session->executor(), [session] { session->Shutdown(); });
  }
  live.clear();
  {
    std::unique_lock lock(mu_);
    sessions_gone_.wait_for(lock, drain, [this] { return sessions_.empty(); });
  }
  work_.reset();
  ioc_.stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

HttpServer::HttpServer(Options options, HttpHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() = default;

absl::Status HttpServer::Start() { return impl_->Start(); }

int HttpServer::port() const { return impl_->port(); }

void HttpServer::Stop(std::chrono::milliseconds drain) { impl_->Stop(drain); }

}  // namespace octo::gateway
