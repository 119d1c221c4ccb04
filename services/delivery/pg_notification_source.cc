#include <utility>

#include "services/delivery/dispatch_store.h"
#include "services/delivery/notification_source.h"

namespace octo::delivery {
namespace {

// NotificationListener (dispatch_store.h) behind the interface.
class PgNotificationSource final : public NotificationSource {
 public:
  explicit PgNotificationSource(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  void Start(std::function<void()> on_notify) override {
    if (listener_ == nullptr) {
      listener_ = std::make_unique<NotificationListener>(conninfo_, kDeliveryChannel, std::move(on_notify));
    }
  }

 private:
  const std::string conninfo_;
  std::unique_ptr<NotificationListener> listener_;
};

}  // namespace

std::unique_ptr<NotificationSource> NewPgNotificationSource(std::string conninfo) {
  return std::make_unique<PgNotificationSource>(std::move(conninfo));
}

}  // namespace octo::delivery
