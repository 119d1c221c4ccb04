#pragma once
// The dashboard's 24-hour health of a webhook (OperatorStore::Health) and
// the delivery service's retry settings agree on one figure: the health
// counts the attempts started in the last kHealthWindowHours of the
// webhook's deliveries created or requeued (redelivered, replayed) within
// the last kHealthLookbackHours. A delivery's attempts must therefore all
// start within kHealthLookbackHours - kHealthWindowHours of its creation or
// requeue; octo-delivery refuses a retry configuration that could exceed it
// (CheckRetrySpanFitsHealthLookback, services/delivery/retry_policy.h).
// See docs/decisions.md and docs/configuration.md.
namespace octo {

inline constexpr int kHealthWindowHours = 24;
inline constexpr int kHealthLookbackHours = 72;

}  // namespace octo
