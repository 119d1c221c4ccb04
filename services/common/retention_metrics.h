#pragma once
// The metrics of octo-delivery's retention maintenance pass
// (services/delivery/retention.h; docs/observability.md, "Retention"):
// what each pass did, and the two figures an SRE must see coming — how far
// ahead the partitions reach (inserts fail past that: there is no default
// partition) and how old the oldest stored week is.
//
//   octo_retention_passes_total{outcome=ok|error|skipped}
//   octo_retention_last_pass_duration_seconds
//   octo_retention_last_success_timestamp_seconds
//   octo_retention_partitions_created_total
//   octo_retention_slices_dropped_total
//   octo_retention_slices_held
//   octo_retention_ordered_resources_pruned_total
//   octo_retention_oldest_partition_age_seconds
//   octo_retention_partition_runway_seconds
//   octo_retention_period_seconds, octo_retention_interval_seconds (the
//     configuration, so that alert rules compare against it)
//
// Thread-safe, like every metrics class.
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace octo::metrics {

class RetentionMetrics {
 public:
  // ok: the pass held the lock and finished; skipped: another session held
  // the lock; error: it failed (connection, SQL).
  enum class Outcome { kOk, kError, kSkipped };

  RetentionMetrics(prometheus::Registry& registry, double retention_seconds, double interval_seconds);

  // A finished pass of `seconds`. kOk also sets the last-success time to
  // now; kSkipped leaves the duration alone (it did no work).
  void PassFinished(Outcome outcome, double seconds);
  void PartitionsCreated(int count);
  void SlicesDropped(int count);
  void SetSlicesHeld(int count);
  void ResourcesPruned(long long count);
  void SetOldestPartitionAge(double seconds);
  // The runway series appears with the first value: before anything is
  // known there is no series, rather than a 0 that would read as "inserts
  // fail now".
  void SetRunway(double seconds);

  static std::string_view OutcomeName(Outcome outcome);

 private:
  prometheus::Family<prometheus::Counter>& passes_;
  prometheus::Counter* by_outcome_[3];
  prometheus::Gauge& duration_;
  prometheus::Gauge& last_success_;
  prometheus::Counter& created_;
  prometheus::Counter& dropped_;
  prometheus::Gauge& held_;
  prometheus::Counter& pruned_;
  prometheus::Gauge& oldest_age_;
  prometheus::Family<prometheus::Gauge>& runway_;
};

}  // namespace octo::metrics
