#include "tests/perf/single_publish.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/perf/sink_server.h"

namespace octo::perf {

namespace v1 = ::octo::webhooks::v1;
using std::chrono::steady_clock;

PublishStats PublishOneAtATime(const std::shared_ptr<grpc::Channel>& channel,
                               const EventFactory& factory, char phase,
                               const SinglePublishOptions& options, double* seconds) {
  std::atomic<std::int64_t> next{0};
  LatencyHistogram rpc_latency;
  absl::Mutex mu;
  PublishStats stats;
  const auto start = steady_clock::now();
  const auto stop_at = start + options.time_limit;
  auto client = [&] {
    auto stub = v1::EventService::NewStub(channel);
    for (;;) {
      const std::int64_t index = next.fetch_add(1);
      if (index >= options.events || steady_clock::now() > stop_at) return;
      v1::PublishEventRequest request;
      factory.Fill(phase, index, RealtimeNs(), request);
      v1::PublishEventResponse response;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + options.rpc_timeout);
      const auto sent = steady_clock::now();
      const grpc::Status status = stub->PublishEvent(&context, request, &response);
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - sent);
      absl::MutexLock lock(&mu);
      if (!status.ok()) {
        ++stats.batches_failed;
        if (stats.first_error.empty()) {
          stats.first_error =
              absl::StrCat("PublishEvent: ", status.error_code(), " ", status.error_message());
        }
        continue;
      }
      rpc_latency.Record(static_cast<std::uint64_t>(us.count()));
      ++stats.batches_ok;
      ++stats.events;
      stats.deliveries += static_cast<std::uint64_t>(response.delivery_count());
      if (response.duplicate()) ++stats.duplicates;
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(options.clients));
  for (int i = 0; i < options.clients; ++i) threads.emplace_back(client);
  for (std::thread& t : threads) t.join();
  *seconds = std::chrono::duration<double>(steady_clock::now() - start).count();
  stats.rpc_latency = rpc_latency.Snapshot();
  return stats;
}

}  // namespace octo::perf
