#pragma once
// What the libcurl transport tests share: a collector of results, a request
// to post, and senders started against it.
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/time.h"
#include "services/delivery/curl_transport.h"

namespace octo::delivery::transport_test {

// Collects what the sender reports.
class Results {
 public:
  HttpTransport::CompletionFn Callback() {
    return [this](std::vector<TransferResult> done) {
      std::lock_guard lock(mu_);
      for (auto& r : done) {
        const uint64_t tag = r.tag;
        by_tag_[tag] = std::move(r);
        order_.push_back(tag);
      }
      cv_.notify_all();
    };
  }
  bool WaitFor(std::size_t n, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return by_tag_.size() >= n; });
  }
  TransferResult Get(uint64_t tag) {
    std::lock_guard lock(mu_);
    return by_tag_.at(tag);
  }
  std::vector<uint64_t> Order() {
    std::lock_guard lock(mu_);
    return order_;
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return by_tag_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, TransferResult> by_tag_;
  std::vector<uint64_t> order_;
};

inline OutgoingRequest Post(uint64_t tag, std::string url, std::string body = R"({"a":1})") {
  OutgoingRequest r;
  r.tag = tag;
  r.url = std::move(url);
  r.headers = {"Content-Type: application/json", "User-Agent: octo-webhooks/test", "X-Custom: v",
               "webhook-id: msg_1"};
  r.body = std::move(body);
  return r;
}

// The receivers run on loopback, which the production SSRF policy refuses.
inline DestinationPolicy LoopbackAllowed() { return *DestinationPolicy::Parse("127.0.0.0/8,::1/128"); }

// A started transport reporting to `results`.
inline std::unique_ptr<HttpTransport> StartedTransport(Results& results, CurlTransportOptions options) {
  auto transport = NewCurlTransport(std::move(options));
  EXPECT_TRUE(transport.ok()) << transport.status();
  if (!transport.ok()) return nullptr;
  (*transport)->Start(results.Callback());
  return std::move(*transport);
}

// A transport allowed to reach loopback (the guard's own tests set their policy).
inline std::unique_ptr<HttpTransport> NewSender(Results& results, CurlTransportOptions options = {}) {
  options.destination_policy = LoopbackAllowed();
  return StartedTransport(results, std::move(options));
}


}  // namespace octo::delivery::transport_test
