#include "gateway/webhook_json.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>

#include "absl/time/time.h"

namespace octo::gateway {

namespace v1 = octo::webhooks::v1;

std::string FormatRfc3339(const google::protobuf::Timestamp& timestamp) {
  const absl::Time t =
      absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
  // %E*S: seconds with as many fractional digits as needed, none when whole.
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

boost::json::object WebhookToJson(const v1::Webhook& webhook, std::string_view secret) {
  boost::json::object out;
  out["id"] = webhook.id();
  out["event"] = webhook.event();
  out["url"] = webhook.url();
  out["retryOnError"] = webhook.retry_on_error();
  out["useContactLanguage"] = webhook.use_contact_language();

  // Protobuf maps have no order: sort by name for stable output.
  std::vector<std::pair<std::string_view, std::string_view>> headers(webhook.headers().begin(),
                                                                     webhook.headers().end());
  std::sort(headers.begin(), headers.end());
  boost::json::object headers_json;
  for (const auto& [name, value] : headers) headers_json[name] = value;
  out["headers"] = std::move(headers_json);

  boost::json::array capabilities;
  for (const std::string& capability : webhook.capabilities())
    capabilities.emplace_back(capability);
  out["capabilities"] = std::move(capabilities);
  out["ordered"] = webhook.ordered();  // our extension, always present

  switch (webhook.status()) {
    case v1::WEBHOOK_STATUS_ENABLED:
      out["status"] = "enabled";
      break;
    case v1::WEBHOOK_STATUS_DISABLED:
      out["status"] = "disabled";
      break;
    default:
      out["status"] = "unspecified";
      break;
  }
  if (webhook.has_create_time()) out["createdAt"] = FormatRfc3339(webhook.create_time());
  if (webhook.has_update_time()) out["updatedAt"] = FormatRfc3339(webhook.update_time());
  if (webhook.status() == v1::WEBHOOK_STATUS_DISABLED) {
    out["disabledReason"] = webhook.disabled_reason();
    if (webhook.has_disable_time()) out["disabledAt"] = FormatRfc3339(webhook.disable_time());
  }
  if (webhook.has_rate_limit_per_second()) out["rateLimitPerSecond"] = webhook.rate_limit_per_second();
  if (webhook.has_max_concurrency()) out["maxConcurrency"] = webhook.max_concurrency();
  if (webhook.has_failing_since()) out["failingSince"] = FormatRfc3339(webhook.failing_since());
  if (webhook.has_previous_secret_expire_time()) {
    out["previousSecretExpiresAt"] = FormatRfc3339(webhook.previous_secret_expire_time());
  }
  if (!secret.empty()) out["secret"] = secret;
  return out;
}

}  // namespace octo::gateway
