#pragma once
// Helpers of the metrics tests: reading a value out of a registry or out of
// the Prometheus text format, and running promtool.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/registry.h>

#include "absl/status/statusor.h"

namespace octo::metrics_test {

using Labels = std::map<std::string, std::string>;

// The value of the series `name` with exactly `labels` in `registry`: a
// counter's or gauge's value, a histogram's sample count. nullopt when absent.
std::optional<double> Value(const prometheus::Registry& registry, const std::string& name,
                            const Labels& labels = {});

// One sample of the text format: name{labels} value.
struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

// Parses the samples of a text-format exposition (comments skipped).
std::vector<Sample> ParseText(const std::string& text);

// The sum of the samples named `name` whose labels include `labels`.
double Sum(const std::vector<Sample>& samples, const std::string& name, const Labels& labels = {});

// The metric family names a text-format exposition declares (# TYPE lines).
std::vector<std::string> FamilyNames(const std::string& text);

// `promtool check metrics` on `text`: OK, or FAILED_PRECONDITION with its
// output. INTERNAL when promtool cannot be run (the test then fails: the
// Debian package `prometheus` provides it, scripts/install-deps.sh installs it).
absl::Status PromtoolCheckMetrics(const std::string& text);

// Runs `command` with /bin/sh; returns its exit status and combined output.
std::pair<int, std::string> RunShell(const std::string& command);

}  // namespace octo::metrics_test
