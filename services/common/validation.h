#pragma once
// Validation and masking of webhook fields. The subscription service is the
// authority; these are pure functions so the rules are unit-tested in one place.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/common/address_guard.h"

namespace octo {

inline constexpr std::size_t kMaxUrlBytes = 2048;
inline constexpr std::size_t kMaxHeaderCount = 20;
inline constexpr std::size_t kMaxHeaderNameBytes = 256;
inline constexpr std::size_t kMaxHeaderValueBytes = 4096;
inline constexpr std::size_t kMaxHeadersTotalBytes = 16384;
inline constexpr std::size_t kMaxCapabilities = 50;
inline constexpr std::size_t kMaxCapabilityBytes = 100;

// The OCTO webhook events a partner can subscribe to.
const std::vector<std::string>& WebhookEvents();

// Each returns InvalidArgumentError whose message starts with the field name
// ("url: ...") so callers can surface it unchanged.
absl::Status ValidateWebhookUrl(std::string_view url);
// The parts of a url ValidateWebhookUrl and ValidateWebhookDestination judge:
// the scheme (lower case), the host as written (IPv6 brackets kept) and the
// port as written ("" when none; port_given tells "host:" from "host"; an
// empty port after an IPv6 host is taken as none). Views into `url`.
// INVALID_ARGUMENT "url: ..." when there is no "://", the user information
// holds an '@', or an IPv6 host is not closed or not followed by ':'. Also what the URL-parser fuzz target
// compares with libcurl's reading of the same url.
struct WebhookUrlParts {
  std::string scheme;
  std::string_view host;
  std::string_view port;
  bool port_given = false;
};
absl::StatusOr<WebhookUrlParts> SplitWebhookUrl(std::string_view url);
// SSRF protection at creation (docs/delivery.md, "SSRF guard"): a url whose
// host is an IP literal, in any spelling a resolver accepts (decimal
// "2130706433", octal "0177.0.0.1", hex, "127.1", "[::ffff:127.0.0.1]"), or
// a "localhost" name, must be an address `policy` allows: else
// INVALID_ARGUMENT "url: ...". Host names are judged by the delivery service
// when it connects. Call after ValidateWebhookUrl.
absl::Status ValidateWebhookDestination(std::string_view url, const DestinationPolicy& policy);
absl::Status ValidateWebhookEvent(std::string_view event);
absl::Status ValidateWebhookHeaders(const std::map<std::string, std::string>& headers);
absl::Status ValidateCapabilities(const std::vector<std::string>& capabilities);

// Parses an Octo-Capabilities header: comma-separated capability ids,
// whitespace around each ignored, duplicates dropped, order kept.
absl::StatusOr<std::vector<std::string>> ParseCapabilitiesHeader(std::string_view header);

// RFC 9110 token (header field names).
bool IsHttpToken(std::string_view s);
// Canonical 8-4-4-4-12 hex UUID (either case).
bool IsUuid(std::string_view s);

// "https://user:pass@host/p" -> "https://user:***@host/p"; a URL without
// credentials is returned unchanged. Never fails: an unparsable string has
// everything between "://" and the last '@' before the path masked.
std::string MaskUrlCredentials(std::string_view url);
inline constexpr std::string_view kMaskedValue = "***";

}  // namespace octo
