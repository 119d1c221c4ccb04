#pragma once
// Standard Webhooks signatures (https://www.standardwebhooks.com/) and the
// Basic credentials of a webhook URL.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace octo::payload {

// Standard base64 (RFC 4648 section 4); padding optional, nothing else
// tolerated (no whitespace, no URL-safe alphabet). nullopt on bad input.
std::optional<std::string> Base64Decode(std::string_view text);

// "whsec_<base64>" (or bare base64, as the public libraries also accept) ->
// the raw HMAC key. INVALID_ARGUMENT when it is not valid base64 or empty.
absl::StatusOr<std::string> DecodeSigningSecret(std::string_view secret);

// "v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>", one per
// secret, in the order given, separated by single spaces (two during a
// rotation). INVALID_ARGUMENT when no secret is given or one does not decode.
absl::StatusOr<std::string> SignatureHeader(std::string_view webhook_id, int64_t timestamp, std::string_view body,
                                            const std::vector<std::string>& secrets);

// True when one of the space-separated "v1,<sig>" entries of `header` is the
// signature of (id, timestamp, body) under `secret` (constant-time compare).
// For receivers written for the tests; the timestamp tolerance is theirs.
bool VerifySignatureHeader(std::string_view header, std::string_view webhook_id, int64_t timestamp,
                           std::string_view body, std::string_view secret);

// RFC 3986 percent-decoding; a '%' not followed by two hex digits is kept
// as it is.
std::string PercentDecode(std::string_view text);

struct UrlAuth {
  std::string url;                           // the URL without "user:pass@"
  std::optional<std::string> authorization;  // "Basic <base64(user:pass)>"
};
// "https://us%40er:p%3Ass@host/p" -> {"https://host/p", "Basic base64("us@er:p:ss")"}.
// User and password are percent-decoded before encoding; a missing password
// is empty ("user@host" -> base64("user:")). A URL without credentials is
// returned unchanged with no header.
UrlAuth BasicAuthFromUrl(std::string_view url);

}  // namespace octo::payload
