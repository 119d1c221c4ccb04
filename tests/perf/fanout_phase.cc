#include "tests/perf/fanout_phase.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "octo/webhooks/v1/events.grpc.pb.h"
#include "tests/perf/sink_server.h"

namespace octo::perf {
namespace {

namespace v1 = ::octo::webhooks::v1;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Waits until the sink has received `want` requests since its reset and
// `attempts_want` attempts are recorded; the times since `sent` in ms.
absl::Status Drain(SinkClient& sink, DbProbe& db, std::uint64_t want, std::int64_t attempts_want,
                   Clock::time_point sent, Clock::time_point deadline, double* received_ms,
                   double* recorded_ms) {
  bool received = false;
  for (;;) {
    if (!received) {
      absl::StatusOr<SinkStats> s = sink.Stats();
      if (!s.ok()) return s.status();
      if (s->requests >= want) {
        received = true;
        *received_ms = MsSince(sent);
      }
    }
    if (received) {
      absl::StatusOr<std::int64_t> n = db.CountAttempts();
      if (!n.ok()) return n.status();
      if (*n >= attempts_want) {
        *recorded_ms = MsSince(sent);
        return absl::OkStatus();
      }
    }
    if (Clock::now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the fan-out of ", want, " deliveries was not ",
                       received ? "recorded" : "received", " in time"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

absl::StatusOr<FanoutResult> RunFanout(const std::shared_ptr<grpc::Channel>& admin_channel,
                                       const std::shared_ptr<grpc::Channel>& publisher_channel, int sink_port,
                                       DbProbe& db, const FanoutOptions& options) {
  FanoutResult r;
  r.webhooks = options.webhooks;
  const auto setup_start = Clock::now();
  absl::StatusOr<Tenant> tenant =
      CreateTenant(admin_channel, sink_port, options.webhooks, options.capabilities);
  if (!tenant.ok()) return tenant.status();
  r.setup_seconds = MsSince(setup_start) / 1000;
  const EventFactory factory(tenant->supplier_id, options.run_id, 0);
  // Provisioning is the admin's; publishing is a publisher's (internal
  // authentication refuses EventService to the admin caller).
  auto stub = v1::EventService::NewStub(publisher_channel);
  SinkClient sink(sink_port);
  for (int i = 0; i < options.events; ++i) {
    if (absl::Status s = sink.Reset(); !s.ok()) return s;
    absl::StatusOr<std::int64_t> attempts = db.CountAttempts();
    if (!attempts.ok()) return attempts.status();
    v1::PublishEventRequest request;
    factory.Fill('f', i, RealtimeNs(), request);
    v1::PublishEventResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    const auto sent = Clock::now();
    const grpc::Status status = stub->PublishEvent(&context, request, &response);
    const double accept_ms = MsSince(sent);
    if (!status.ok()) {
      r.problem = absl::StrCat("PublishEvent: ", status.error_message());
      break;
    }
    if (response.delivery_count() != options.webhooks) {
      r.problem = absl::StrCat("the event got ", response.delivery_count(), " deliveries, not ",
                               options.webhooks);
      break;
    }
    r.accept_ms.push_back(accept_ms);
    double received_ms = 0;
    double recorded_ms = 0;
    absl::Status drained =
        Drain(sink, db, static_cast<std::uint64_t>(options.webhooks), *attempts + options.webhooks,
              sent, Clock::now() + options.drain_timeout, &received_ms, &recorded_ms);
    if (!drained.ok()) {
      r.problem = std::string(drained.message());
      break;
    }
    r.received_ms.push_back(received_ms);
    r.recorded_ms.push_back(recorded_ms);
  }
  return r;
}

}  // namespace octo::perf
