#include "services/common/retention_metrics.h"

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace octo::metrics {
namespace {

prometheus::Gauge& Constant(prometheus::Registry& registry, const char* name, const char* help, double value) {
  prometheus::Gauge& g = prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  g.Set(value);
  return g;
}

}  // namespace

std::string_view RetentionMetrics::OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kError:
      return "error";
    case Outcome::kSkipped:
      return "skipped";
  }
  return "error";
}

RetentionMetrics::RetentionMetrics(prometheus::Registry& registry, double retention_seconds,
                                   double interval_seconds)
    : passes_(prometheus::BuildCounter()
                  .Name("octo_retention_passes_total")
                  .Help("Retention maintenance passes of this replica by outcome: ok, error (connection or SQL "
                        "failure), skipped (another replica held the lock).")
                  .Register(registry)),
      duration_(prometheus::BuildGauge()
                    .Name("octo_retention_last_pass_duration_seconds")
                    .Help("Duration of this replica's last pass that did the work or failed (skipped ones "
                          "are not counted).")
                    .Register(registry)
                    .Add({})),
      last_success_(prometheus::BuildGauge()
                        .Name("octo_retention_last_success_timestamp_seconds")
                        .Help("Unix time at which this replica last finished a pass (0: never since start).")
                        .Register(registry)
                        .Add({})),
      created_(prometheus::BuildCounter()
                   .Name("octo_retention_partitions_created_total")
                   .Help("Partitions of events, deliveries and delivery_attempts created ahead of time.")
                   .Register(registry)
                   .Add({})),
      dropped_(prometheus::BuildCounter()
                   .Name("octo_retention_slices_dropped_total")
                   .Help("Weekly slices (the three tables' partitions of a week) dropped after the retention "
                         "period.")
                   .Register(registry)
                   .Add({})),
      held_(prometheus::BuildGauge()
                .Name("octo_retention_slices_held")
                .Help("Slices past the retention period kept at the last pass: a delivery in them is pending "
                      "(or they were busy).")
                .Register(registry)
                .Add({})),
      pruned_(prometheus::BuildCounter()
                  .Name("octo_retention_ordered_resources_pruned_total")
                  .Help("ordered_resources rows deleted: idle beyond the retention period, no delivery left.")
                  .Register(registry)
                  .Add({})),
      oldest_age_(prometheus::BuildGauge()
                      .Name("octo_retention_oldest_partition_age_seconds")
                      .Help("Age of the oldest partition's week start: about the retention period plus a "
                            "week, more while a pending delivery holds an old slice.")
                      .Register(registry)
                      .Add({})),
      runway_(prometheus::BuildGauge()
                  .Name("octo_retention_partition_runway_seconds")
                  .Help("How far beyond now the partitions of all three tables reach without a gap: inserts "
                        "fail once now passes it (7 to 14 days when healthy).")
                  .Register(registry)) {
  // Every outcome exists at 0, so that increase() sees the first error.
  for (Outcome o : {Outcome::kOk, Outcome::kError, Outcome::kSkipped}) {
    by_outcome_[static_cast<int>(o)] = &passes_.Add({{"outcome", std::string(OutcomeName(o))}});
  }
  Constant(registry, "octo_retention_period_seconds", "The configured --retention.", retention_seconds);
  Constant(registry, "octo_retention_interval_seconds", "The configured --retention_interval.", interval_seconds);
}

void RetentionMetrics::PassFinished(Outcome outcome, double seconds) {
  by_outcome_[static_cast<int>(outcome)]->Increment();
  if (outcome != Outcome::kSkipped) duration_.Set(seconds);
  if (outcome == Outcome::kOk) last_success_.Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
}

void RetentionMetrics::PartitionsCreated(int count) { created_.Increment(count); }
void RetentionMetrics::SlicesDropped(int count) { dropped_.Increment(count); }
void RetentionMetrics::SetSlicesHeld(int count) { held_.Set(count); }
void RetentionMetrics::ResourcesPruned(long long count) { pruned_.Increment(static_cast<double>(count)); }
void RetentionMetrics::SetOldestPartitionAge(double seconds) { oldest_age_.Set(seconds); }
void RetentionMetrics::SetRunway(double seconds) { runway_.Add({}).Set(seconds); }

}  // namespace octo::metrics
