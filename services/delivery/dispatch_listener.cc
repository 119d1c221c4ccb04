// NotificationListener (dispatch_store.h): LISTEN on a dedicated connection.
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include <pqxx/pqxx>

#include "services/common/log.h"
#include "services/common/pg_pool.h"
#include "services/delivery/dispatch_store.h"

namespace octo::delivery {

namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel, const std::function<void()>& on_notify)
      : pqxx::notification_receiver(conn, channel), on_notify_(on_notify) {}
  void operator()(const std::string& /*payload*/, int /*backend_pid*/) override { on_notify_(); }

 private:
  const std::function<void()>& on_notify_;
};

}  // namespace

struct NotificationListener::Impl {
  std::string conninfo;
  std::string channel;
  std::function<void()> on_notify;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // guarded by mu
  std::thread thread;

  bool Stopping() {
    std::lock_guard lock(mu);
    return stop;
  }

  void Run() {
    absl::Duration backoff = absl::Milliseconds(100);
    while (!Stopping()) {
      try {
        pqxx::connection conn(conninfo);
        Receiver receiver(conn, channel, on_notify);
        on_notify();  // anything enqueued while we were not listening
        backoff = absl::Milliseconds(100);
        while (!Stopping()) {
          conn.await_notification(0, 200'000);
          if (!conn.is_open()) throw pqxx::broken_connection("LISTEN connection closed");
        }
      } catch (const std::exception& e) {
        const std::string error = StatusFromException("listen", e).ToString();
        log::Warn("LISTEN connection failed; polling meanwhile", {{"error", error}});
        std::unique_lock lock(mu);
        cv.wait_for(lock, absl::ToChronoMilliseconds(backoff), [&] { return stop; });
        backoff = std::min(backoff * 2, absl::Seconds(5));
      }
    }
  }
};

NotificationListener::NotificationListener(std::string conninfo, std::string channel,
                                           std::function<void()> on_notify)
    : impl_(std::make_unique<Impl>()) {
  impl_->conninfo = std::move(conninfo);
  impl_->channel = std::move(channel);
  impl_->on_notify = std::move(on_notify);
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

NotificationListener::~NotificationListener() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

}  // namespace octo::delivery
