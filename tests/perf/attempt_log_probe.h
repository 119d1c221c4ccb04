#pragma once
// The attempt log read as operators and partners read it (the gateway's GET
// /octo/webhooks/:id/deliveries[/:deliveryId] and the dashboard's routes call
// these): SubscriptionService.GetDelivery (one delivery with its attempts)
// and ListDeliveries (a webhook's newest page of 20, all states and failed
// only), forwarded by octo-subscription to octo-delivery's
// DeliveryOperationsService. Sequential calls, one at a time, for random
// deliveries and webhooks of the stored history: each call's round trip.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "tests/perf/latency_histogram.h"

namespace octo::perf {

struct LogWebhook {
  std::string connection_id;
  std::string webhook_id;
};

struct LogSample {
  std::string connection_id;
  std::string webhook_id;
  std::string delivery_id;
};

// `n` deliveries, each of a random webhook of `webhooks` at a random time of
// [from, to] (the first created at or after it); fewer when webhooks have no
// deliveries then.
absl::StatusOr<std::vector<LogSample>> SampleDeliveries(const std::string& conninfo,
                                                        const std::vector<LogWebhook>& webhooks,
                                                        const std::string& from, const std::string& to, int n);

struct LogCallStats {
  std::string name;  // "GetDelivery", ...
  LatencyHistogram::Summary latency;
  int calls = 0;
  int failures = 0;
  std::string first_error;
  bool timed_out = false;  // the loop's time limit ended it early
  bool complete() const { return failures == 0 && !timed_out && calls > 0; }
};

// Calls each of the three reads once per sample, in turn per read (all
// GetDelivery, then every ListDeliveries ...), each loop bounded by
// `time_limit`. A call is a failure when it does not answer OK or answers
// without what it was asked for (a delivery without attempts, an empty page).
std::vector<LogCallStats> ProbeAttemptLog(const std::shared_ptr<grpc::Channel>& subscription,
                                          const std::vector<LogSample>& samples,
                                          std::chrono::seconds time_limit);

}  // namespace octo::perf
