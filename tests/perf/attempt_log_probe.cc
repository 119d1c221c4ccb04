#include "tests/perf/attempt_log_probe.h"

#include <exception>
#include <functional>
#include <random>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"

namespace octo::perf {
namespace {

namespace v1 = ::octo::webhooks::v1;
using Clock = std::chrono::steady_clock;

constexpr auto kCallTimeout = std::chrono::seconds(5);

// Runs `call` once per sample until the time limit; `call` answers "" or
// why the answer is wrong.
LogCallStats Loop(const std::string& name, const std::vector<LogSample>& samples, std::chrono::seconds time_limit,
                  const std::function<std::string(const LogSample&)>& call) {
  LogCallStats stats;
  stats.name = name;
  LatencyHistogram histogram;
  const auto deadline = Clock::now() + time_limit;
  for (const LogSample& sample : samples) {
    if (Clock::now() > deadline) {
      stats.timed_out = true;
      break;
    }
    const auto start = Clock::now();
    const std::string problem = call(sample);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    ++stats.calls;
    if (!problem.empty()) {
      ++stats.failures;
      if (stats.first_error.empty()) stats.first_error = problem;
      continue;
    }
    histogram.Record(static_cast<std::uint64_t>(us));
  }
  stats.latency = histogram.Snapshot();
  return stats;
}

std::string RpcProblem(const char* rpc, const grpc::Status& s) {
  return absl::StrCat(rpc, ": ", s.error_code(), " ", s.error_message());
}

}  // namespace

absl::StatusOr<std::vector<LogSample>> SampleDeliveries(const std::string& conninfo,
                                                        const std::vector<LogWebhook>& webhooks,
                                                        const std::string& from, const std::string& to, int n) {
  if (webhooks.empty()) return absl::InvalidArgumentError("no webhooks to sample");
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<std::size_t> pick(0, webhooks.size() - 1);
  std::uniform_real_distribution<double> when(0.0, 1.0);
  std::vector<LogSample> out;
  try {
    pqxx::connection conn(conninfo);
    pqxx::nontransaction tx(conn);
    tx.exec0("SET statement_timeout = '10s'");
    // The first delivery of the webhook at or after the random time: an
    // index range scan (webhook_id, created_at).
    conn.prepare("flat_sample",
                 "SELECT id::text FROM deliveries WHERE webhook_id = $1::uuid AND created_at >= "
                 "$2::timestamptz + $4::float8 * ($3::timestamptz - $2::timestamptz)"
                 " ORDER BY created_at, id LIMIT 1");
    for (int i = 0; i < n; ++i) {
      const LogWebhook& w = webhooks[pick(rng)];
      pqxx::result r = tx.exec_prepared("flat_sample", w.webhook_id, from, to, when(rng));
      if (r.empty()) continue;
      out.push_back({w.connection_id, w.webhook_id, r[0][0].c_str()});
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("sampling deliveries: ", e.what()));
  }
  return out;
}

std::vector<LogCallStats> ProbeAttemptLog(const std::shared_ptr<grpc::Channel>& subscription,
                                          const std::vector<LogSample>& samples,
                                          std::chrono::seconds time_limit) {
  auto stub = v1::SubscriptionService::NewStub(subscription);
  auto context = [] {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    return ctx;
  };
  std::vector<LogCallStats> out;
  out.push_back(Loop("GetDelivery (a delivery with its attempts)", samples, time_limit,
                     [&](const LogSample& s) -> std::string {
                       v1::GetDeliveryRequest req;
                       req.set_connection_id(s.connection_id);
                       req.set_webhook_id(s.webhook_id);
                       req.set_delivery_id(s.delivery_id);
                       v1::Delivery resp;
                       const grpc::Status st = stub->GetDelivery(context().get(), req, &resp);
                       if (!st.ok()) return RpcProblem("GetDelivery", st);
                       if (resp.attempts_size() < 1) return "GetDelivery: a finished delivery without attempts";
                       return "";
                     }));
  const auto list = [&](v1::DeliveryState state) {
    return [&stub, &context, state](const LogSample& s) -> std::string {
      v1::ListDeliveriesRequest req;
      req.set_connection_id(s.connection_id);
      req.set_webhook_id(s.webhook_id);
      req.set_page_size(20);
      req.set_state(state);
      v1::ListDeliveriesResponse resp;
      const grpc::Status st = stub->ListDeliveries(context().get(), req, &resp);
      if (!st.ok()) return RpcProblem("ListDeliveries", st);
      // Every sampled webhook has a history; failed ones are 2 % of it.
      if (state == v1::DELIVERY_STATE_UNSPECIFIED && resp.deliveries_size() == 0) {
        return "ListDeliveries: an empty page for a webhook with a history";
      }
      return "";
    };
  };
  out.push_back(Loop("ListDeliveries (a webhook's newest 20)", samples, time_limit,
                     list(v1::DELIVERY_STATE_UNSPECIFIED)));
  out.push_back(Loop("ListDeliveries state=FAILED (newest 20)", samples, time_limit,
                     list(v1::DELIVERY_STATE_FAILED)));
  return out;
}

}  // namespace octo::perf
