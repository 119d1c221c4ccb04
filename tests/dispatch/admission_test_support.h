#pragma once
// What the DestinationAdmission tests share: destinations, asks, and a
// fixture on a simulated clock that admits, queues and warms up.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "services/delivery/destination_admission.h"
#include "tests/fakes/simulated_clock.h"

namespace octo::delivery::admission_test {

using octo::testing::SimulatedClock;

inline constexpr char kDest[] = "http://127.0.0.1:8080";
inline constexpr char kOther[] = "http://127.0.0.1:9090";
// An answer on a connection opened for it and kept alive.
inline constexpr ConnectionUse kOpenedKept{.opened = true, .kept = true};

inline AdmissionAsk Ask(uint64_t tag, std::string destination = kDest, std::string webhook = "") {
  AdmissionAsk a;
  a.tag = tag;
  a.destination = std::move(destination);
  a.webhook_id = webhook.empty() ? "w-" + std::to_string(tag) : webhook;
  return a;
}

inline OutgoingRequest Request(uint64_t tag) {
  OutgoingRequest r;
  r.tag = tag;
  return r;
}

inline std::vector<uint64_t> Tags(const std::vector<OutgoingRequest>& requests) {
  std::vector<uint64_t> tags;
  for (const auto& r : requests) tags.push_back(r.tag);
  return tags;
}

class AdmissionTest : public ::testing::Test {
 protected:
  DestinationAdmission Make(int max_per_host, int max_queued, absl::Duration max_wait = absl::ZeroDuration()) {
    return DestinationAdmission({max_per_host, max_queued, max_wait}, clock_);
  }
  // Admits `ask`; a kWait one is rendered and put in line at once.
  Admission AdmitAndQueue(DestinationAdmission& a, const AdmissionAsk& ask, std::vector<OutgoingRequest>* started) {
    int deferred = 0;
    const Admission verdict = a.Admit(ask, deferred);
    if (verdict.verdict == Admission::kWait) {
      for (auto& r : a.Enqueue(Request(ask.tag))) started->push_back(std::move(r));
    }
    return verdict;
  }
  // Proves `n` connections to a destination: bursts of n requests, answered.
  void WarmUp(DestinationAdmission& a, const std::string& destination, int n, uint64_t first_tag) {
    for (uint64_t burst = 0; a.ProvenConnections(destination) < n && burst < 10; ++burst) {
      Burst(a, destination, n, first_tag + burst * 1000);
    }
  }
  void Burst(DestinationAdmission& a, const std::string& destination, int n, uint64_t first_tag) {
    std::vector<OutgoingRequest> started;
    std::vector<uint64_t> running;
    for (uint64_t t = first_tag; t < first_tag + static_cast<uint64_t>(n); ++t) {
      if (AdmitAndQueue(a, Ask(t, destination), &started).verdict == Admission::kStart) running.push_back(t);
    }
    while (!running.empty()) {
      std::vector<uint64_t> next;
      for (uint64_t t : running) {
        for (const auto& r : a.Finished(t, absl::Milliseconds(10), true, kOpenedKept)) next.push_back(r.tag);
      }
      running = next;
    }
  }
  SimulatedClock clock_;
};

}  // namespace octo::delivery::admission_test
