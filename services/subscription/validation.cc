#include "services/subscription/validation.h"

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/common/strings.h"
#include "services/common/validation.h"

namespace octo::subscription {
namespace {

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(AbslView(field), ": ", AbslView(problem)));
}

// Code points in valid UTF-8 (protobuf guarantees validity of string fields).
std::size_t Utf8Chars(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool HasControlChar(std::string_view s, bool allow_newline) {
  return std::any_of(s.begin(), s.end(), [&](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    if (allow_newline && c == '\n') return false;
    return c < 0x20 || c == 0x7f;
  });
}

}  // namespace

absl::Status ValidateName(std::string_view field, std::string_view name, bool allow_empty) {
  if (name.empty()) return allow_empty ? absl::OkStatus() : Invalid(field, "is required");
  if (Utf8Chars(name) > kMaxNameChars) return Invalid(field, "must be at most 200 characters");
  if (HasControlChar(name, false)) return Invalid(field, "must not contain control characters");
  if (absl::StripAsciiWhitespace(AbslView(name)).empty())
    return Invalid(field, "must not be blank");
  return absl::OkStatus();
}

absl::Status ValidateEndpoint(std::string_view field, std::string_view url) {
  if (url.empty()) return Invalid(field, "is required");
  // The webhook URL rules (absolute http/https, bounded, a valid host), with
  // the field name swapped in.
  if (absl::Status s = ValidateWebhookUrl(url); !s.ok()) {
    std::string_view message(s.message().data(), s.message().size());
    if (message.substr(0, 5) == "url: ") message.remove_prefix(5);
    return Invalid(field, message);
  }
  if (MaskUrlCredentials(url) != url) return Invalid(field, "must not contain credentials");
  return absl::OkStatus();
}

absl::Status ValidateContact(const ContactRecord& contact) {
  if (!contact.website.empty()) {
    if (absl::Status s = ValidateEndpoint("contact.website", contact.website); !s.ok()) return s;
  }
  if (!contact.email.empty()) {
    const std::string_view email = contact.email;
    const auto at = email.rfind('@');
    if (email.size() > kMaxEmailBytes || at == std::string_view::npos || at == 0 ||
        email.find('@') != at || email.substr(at + 1).find('.') == std::string_view::npos ||
        email.back() == '.' || email.substr(at + 1).front() == '.' ||
        std::any_of(email.begin(), email.end(),
                    [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
      return Invalid("contact.email", "must be an e-mail address like name@example.com");
    }
  }
  if (!contact.telephone.empty()) {
    const std::string_view t = contact.telephone;
    const bool ok =
        t.size() <= kMaxTelephoneBytes &&
        std::all_of(t.begin(), t.end(),
                    [](char c) {
                      return absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
                             std::string_view("+-(). ").find(c) != std::string_view::npos;
                    }) &&
        std::any_of(t.begin(), t.end(),
                    [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); });
    if (!ok) {
      return Invalid("contact.telephone",
                     "must be a telephone number of at most 50 digits, spaces and + - ( ) .");
    }
  }
  if (!contact.address.empty()) {
    if (Utf8Chars(contact.address) > kMaxAddressChars) {
      return Invalid("contact.address", "must be at most 500 characters");
    }
    if (HasControlChar(contact.address, true)) {
      return Invalid("contact.address", "must not contain control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateMaxWebhooks(int max_webhooks) {
  if (max_webhooks < 0 || max_webhooks > kMaxWebhooksLimit) {
    return Invalid("maxWebhooks", "must be between 1 and 100000 (0 means the service default)");
  }
  return absl::OkStatus();
}

absl::Status ValidateRateLimit(double requests_per_second) {
  // NaN fails every comparison: refused too.
  // At least one request in 1000 s: slower rates are not a useful limit
  // (and 1/rate must stay a finite interval).
  if (!(requests_per_second == 0 || (requests_per_second >= 0.001 && requests_per_second <= 100000))) {
    return Invalid("rateLimitPerSecond",
                   "must be a number of requests per second from 0.001 up to 100000 (0 means no limit)");
  }
  return absl::OkStatus();
}

absl::Status ValidateMaxConcurrency(int max_concurrency) {
  if (max_concurrency < 0 || max_concurrency > 10000) {
    return Invalid("maxConcurrency", "must be between 1 and 10000 (0 means no limit)");
  }
  return absl::OkStatus();
}

absl::Status ValidateUuid(std::string_view field, std::string_view id) {
  if (id.empty()) return Invalid(field, "is required");
  if (!IsUuid(id)) return Invalid(field, "must be a UUID");
  return absl::OkStatus();
}

}  // namespace octo::subscription
