#include "tests/faults/cluster_probe.h"

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "tests/support/http_client.h"

namespace octo::faults {

namespace v1 = ::octo::webhooks::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double MetricSum(int port, std::string_view name, std::string_view label) {
  if (port <= 0) return -1;
  testing::HttpClient http(port, 2s);
  auto r = http.Send({.method = "GET", .target = "/metrics", .headers = {}, .body = std::nullopt});
  if (!r.ok() || r->status != 200) return -1;
  double sum = 0;
  std::istringstream lines(r->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t end = line.find_first_of("{ ");
    const std::size_t space = line.rfind(' ');
    if (end == std::string::npos || space == std::string::npos) continue;
    double value = 0;
    if (std::string_view(line).substr(0, end) != name) continue;
    if (!label.empty() && (line[end] != '{' || line.substr(end, space - end).find(label) == std::string::npos)) {
      continue;
    }
    if (absl::SimpleAtod(line.substr(space + 1), &value)) {
      sum += value;
    }
  }
  return sum;
}

int PeakConcurrency(const std::vector<testing::ReceivedRequest>& requests, std::chrono::milliseconds answer_delay) {
  // +1 when a request is read, -1 when its answer goes; at equal times the
  // end first, so that back-to-back requests do not count as overlapping.
  std::vector<std::pair<Clock::time_point, int>> edges;
  edges.reserve(requests.size() * 2);
  for (const testing::ReceivedRequest& r : requests) {
    edges.emplace_back(r.received_steady, +1);
    edges.emplace_back(r.received_steady + answer_delay, -1);
  }
  std::sort(edges.begin(), edges.end());
  int now = 0;
  int peak = 0;
  for (const auto& edge : edges) {
    now += edge.second;
    peak = std::max(peak, now);
  }
  return peak;
}

// ------------------------------------------------------------ RestPoller --

RestPoller::RestPoller(int port, std::string api_key, std::string path, std::chrono::milliseconds interval)
    : port_(port), api_key_(std::move(api_key)), path_(std::move(path)), interval_(interval) {}

RestPoller::~RestPoller() { Stop(); }

void RestPoller::Start() { thread_ = std::thread([this] { Run(); }); }

void RestPoller::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void RestPoller::Run() {
  testing::HttpClient http(port_, kPollTimeout);
  int failed_in_a_row = 0;
  Clock::time_point failing_since = Clock::now();
  auto end_run = [&](Clock::time_point at) {
    if (failed_in_a_row >= 2) {
      const double ms = std::chrono::duration<double, std::milli>(at - failing_since).count();
      figures_.longest_failure_window_ms = std::max(figures_.longest_failure_window_ms, ms);
    } else if (failed_in_a_row == 1) {
      ++figures_.isolated_failures;
    }
    failed_in_a_row = 0;
  };
  while (!stop_) {
    const Clock::time_point sent = Clock::now();
    auto r = http.Send({.method = "GET",
                        .target = path_,
                        .headers = {{"Authorization", "Bearer " + api_key_}},
                        .body = std::nullopt});
    ++figures_.requests;
    if (r.ok() && r->status < 500) {
      if (r->status >= 400) ++figures_.answered_4xx;
      if (r->status < 300) ++figures_.answered_2xx;
      end_run(sent);
    } else {
      ++figures_.failures;
      if (failed_in_a_row++ == 0) failing_since = sent;
    }
    std::this_thread::sleep_until(sent + interval_);
  }
  // A lone failure at the end is not an outage either (nothing followed it).
  end_run(Clock::now());
}

// -------------------------------------------------------- PacedPublisher --

PacedPublisher::PacedPublisher(std::vector<std::unique_ptr<v1::EventService::Stub>> stubs, BatchMaker make_batch,
                               int events, int batch, int events_per_second)
    : stubs_(std::move(stubs)),
      make_batch_(std::move(make_batch)),
      events_(events),
      batch_(batch),
      events_per_second_(events_per_second) {}

PacedPublisher::~PacedPublisher() {
  Stop();
  Join();
}

void PacedPublisher::Stop() { stop_ = true; }

bool PacedPublisher::SleepUntil(Clock::time_point t) {
  while (!stop_) {
    const Clock::time_point now = Clock::now();
    if (now >= t) return true;
    std::this_thread::sleep_for(std::min<Clock::duration>(t - now, 50ms));
  }
  return false;
}

void PacedPublisher::Start() { thread_ = std::thread([this] { Run(); }); }

void PacedPublisher::Join() {
  if (thread_.joinable()) thread_.join();
}

void PacedPublisher::Run() {
  constexpr int kTries = 20;
  const Clock::time_point start = Clock::now();
  int batch_number = 0;
  for (int first = 0; first < events_; first += batch_, ++batch_number) {
    // The pace: batch n goes at start + n × batch / rate (or later).
    if (!SleepUntil(start + std::chrono::microseconds(static_cast<int64_t>(first) * 1'000'000 / events_per_second_))) {
      break;
    }
    const v1::PublishEventsRequest request = make_batch_(first, std::min(batch_, events_ - first));
    bool done = false;
    for (int attempt = 0; attempt < kTries && !done && !stop_; ++attempt) {
      v1::EventService::Stub& stub = *stubs_[static_cast<std::size_t>(batch_number + attempt) % stubs_.size()];
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 30s);
      v1::PublishEventsResponse response;
      if (stub.PublishEvents(&context, request, &response).ok()) {
        accepted_ += response.results_size();
        done = true;
      } else {
        ++retried_;
        // At once to the next replica; a pause once each has refused it.
        if ((attempt + 1) % static_cast<int>(stubs_.size()) == 0) SleepUntil(Clock::now() + 200ms);
      }
    }
    if (!done && !stop_) ++lost_;
  }
  seconds_ = std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace octo::faults
