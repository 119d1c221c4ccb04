#pragma once
// Validation of the admin fields (suppliers, connections, API keys). Webhook
// fields use services/common/validation.h. Each function returns OK or
// INVALID_ARGUMENT whose message starts with the field name as the REST API
// spells it ("name: ...", "contact.email: ..."). Pure functions.
#include <string_view>

#include "absl/status/status.h"
#include "services/subscription/repository.h"

namespace octo::subscription {

inline constexpr std::size_t kMaxNameChars = 200;
inline constexpr std::size_t kMaxEmailBytes = 254;
inline constexpr std::size_t kMaxTelephoneBytes = 50;
inline constexpr std::size_t kMaxAddressChars = 500;
inline constexpr int kMaxWebhooksLimit = 100000;

// Non-empty unless `allow_empty`, at most 200 characters, no control
// characters. `field` is the name used in the message.
absl::Status ValidateName(std::string_view field, std::string_view name, bool allow_empty = false);

// An absolute http(s) URL of at most 2,048 bytes, without credentials.
absl::Status ValidateEndpoint(std::string_view field, std::string_view url);

// Each field optional: website an http(s) URL, email a plausible address,
// telephone digits and + - ( ) . spaces, address at most 500 characters.
absl::Status ValidateContact(const ContactRecord& contact);

// 0 (the service default) or 1..100000.
absl::Status ValidateMaxWebhooks(int max_webhooks);

// A UUID, else INVALID_ARGUMENT "<field>: must be a UUID".
absl::Status ValidateUuid(std::string_view field, std::string_view id);

// Per-endpoint limits; 0 means none. rateLimitPerSecond: a finite number in
// (0, 100000]; maxConcurrency: 1..10000 (the schema's bounds).
absl::Status ValidateRateLimit(double requests_per_second);
absl::Status ValidateMaxConcurrency(int max_concurrency);

}  // namespace octo::subscription
