#pragma once
// What tells the dispatcher that deliveries were enqueued: PostgreSQL's
// LISTEN octo_deliveries in production (PgNotificationSource, on its own
// connection and thread), nothing or a test's trigger in unit tests. The
// dispatcher also polls, so a missed notification only delays.
//
// Example:
//   std::unique_ptr<NotificationSource> source = NewPgNotificationSource(conninfo);
//   source->Start([&] { claims.Wake(); });
#include <functional>
#include <memory>
#include <string>

namespace octo::delivery {

class NotificationSource {
 public:
  virtual ~NotificationSource() = default;
  // Calls `on_notify` (from any thread) for each notification, and once
  // after each (re)connection since notifications may have been missed
  // meanwhile. Called once. Stops on destruction.
  virtual void Start(std::function<void()> on_notify) = 0;
};

// LISTEN octo_deliveries (kDeliveryChannel) on a dedicated connection;
// reconnects with backoff.
std::unique_ptr<NotificationSource> NewPgNotificationSource(std::string conninfo);

}  // namespace octo::delivery
