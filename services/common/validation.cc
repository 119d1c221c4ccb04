#include "services/common/validation.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/strings.h"

namespace octo {
namespace {

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(AbslView(field), ": ", AbslView(problem)));
}

bool IsTcharOrDelimiterFree(char c) {
  // RFC 9110 tchar.
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Host names (LDH labels, IDNs must arrive punycoded), IPv4 literals, or a
// bracketed IPv6 literal.
bool IsValidHost(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  if (host.front() == '[') {
    // An IPv6 address as inet_pton reads it, as libcurl does: "[1:2]" or
    // "[1.2.3.4]" would pass here and fail at every delivery.
    if (host.back() != ']' || host.size() < 4) return false;
    const std::optional<IpAddress> ip = IpAddress::Parse(host.substr(1, host.size() - 2));
    return ip.has_value() && ip->v6;
  }
  if (host.back() == '.') host.remove_suffix(1);  // a fully qualified name
  for (absl::string_view label : absl::StrSplit(AbslView(host), '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
  }
  return true;
}

// "application/json", any case, with at most a charset=utf-8 parameter:
// what every delivery is sent with anyway.
bool IsDeliveryContentType(std::string_view value) {
  std::vector<absl::string_view> parts = absl::StrSplit(AbslView(value), ';');
  if (parts.empty()) return false;  // a null view splits into nothing
  if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(parts[0]), "application/json")) return false;
  if (parts.size() == 1) return true;
  if (parts.size() > 2) return false;
  const absl::string_view param = absl::StripAsciiWhitespace(parts[1]);
  const std::size_t eq = param.find('=');
  if (eq == absl::string_view::npos) return false;
  absl::string_view charset = absl::StripAsciiWhitespace(param.substr(eq + 1));
  if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') {
    charset = charset.substr(1, charset.size() - 2);
  }
  return absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(param.substr(0, eq)), "charset") &&
         absl::EqualsIgnoreCase(charset, "utf-8");
}

bool IsReservedHeader(std::string_view name) {
  static const std::set<std::string, std::less<>> kReserved = {
      "host", "content-length", "transfer-encoding", "connection", "content-type",
      "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect"};
  const std::string lower = absl::AsciiStrToLower(AbslView(name));
  return kReserved.count(lower) > 0 || absl::StartsWith(lower, "webhook-");
}

bool IsValidCapabilityId(std::string_view id) {
  if (id.empty() || id.size() > kMaxCapabilityBytes) return false;
  const auto slash = id.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == id.size()) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

const std::vector<std::string>& WebhookEvents() {
  static const std::vector<std::string> kEvents = {"booking_update", "order_update", "availability_update",
                                                   "product_update"};
  return kEvents;
}

absl::StatusOr<WebhookUrlParts> SplitWebhookUrl(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return Invalid("url", "must be an absolute http or https URL");
  WebhookUrlParts parts;
  parts.scheme = absl::AsciiStrToLower(AbslView(url.substr(0, scheme_end)));
  std::string_view rest = url.substr(scheme_end + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    // RFC 3986 user information holds no '@'. Parsers differ on which '@'
    // ends it (WHATWG: the last, libcurl: refuses), so a second one would
    // make the host depend on who reads the url.
    if (authority.find('@') != at) return Invalid("url", "has an '@' in its user information (percent-encode it as %40)");
    authority = authority.substr(at + 1);
  }
  parts.host = authority;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Invalid("url", "has an unterminated IPv6 address");
    parts.host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Invalid("url", "has an invalid host");
      parts.port = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
    parts.host = authority.substr(0, colon);
    parts.port = authority.substr(colon + 1);
    parts.port_given = true;
  }
  return parts;
}

absl::Status ValidateWebhookUrl(std::string_view url) {
  if (url.empty()) return Invalid("url", "is required");
  if (url.size() > kMaxUrlBytes) return Invalid("url", absl::StrCat("must be at most ", kMaxUrlBytes, " bytes"));
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) {
      return Invalid("url", "must not contain spaces, control or non-ASCII characters (percent-encode them)");
    }
  }
  const auto scheme_end = url.find("://");
  const std::string scheme =
      absl::AsciiStrToLower(AbslView(url.substr(0, std::min(scheme_end, url.size()))));
  if (scheme_end == std::string_view::npos || (scheme != "http" && scheme != "https")) {
    return Invalid("url", "must be an absolute http or https URL");
  }
  absl::StatusOr<WebhookUrlParts> parts = SplitWebhookUrl(url);
  if (!parts.ok()) return parts.status();
  if (parts->host.empty()) return Invalid("url", "must have a host");
  if (!IsValidHost(parts->host)) return Invalid("url", "has an invalid host");
  const std::string_view port = parts->port;
  if (parts->port_given && port.empty()) return Invalid("url", "has an empty port");
  if (!port.empty()) {
    int n = 0;
    if (!std::all_of(port.begin(), port.end(), [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
        !absl::SimpleAtoi(AbslView(port), &n) || n < 1 || n > 65535) {
      return Invalid("url", "has an invalid port");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateWebhookDestination(std::string_view url, const DestinationPolicy& policy) {
  absl::StatusOr<WebhookUrlParts> parts = SplitWebhookUrl(url);
  if (!parts.ok()) return parts.status();
  const std::string_view host = parts->host;
  absl::StatusOr<std::optional<IpAddress>> literal = ParseUrlHostAddress(host);
  if (!literal.ok()) return Invalid("url", absl::StrCat("has an ", literal.status().message()));
  std::vector<IpAddress> addresses;
  if (literal->has_value()) {
    addresses.push_back(**literal);
  } else {
    // RFC 6761: "localhost" and every name under it are the loopback
    // addresses (libcurl resolves them so without asking DNS).
    std::string name = absl::AsciiStrToLower(AbslView(host));
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name == "localhost" || absl::EndsWith(name, ".localhost")) {
      addresses = {IpAddress::V4(0x7f000001), *IpAddress::Parse("::1")};
    }
  }
  for (const IpAddress& ip : addresses) {
    if (absl::Status s = policy.Check(ip); !s.ok()) {
      return Invalid("url", absl::StrCat("must not point at a non-public address: ", s.message(),
                                         "; webhooks are delivered over the internet only"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateWebhookEvent(std::string_view event) {
  if (event.empty()) return Invalid("event", "is required");
  const auto& events = WebhookEvents();
  if (std::find(events.begin(), events.end(), event) == events.end()) {
    return Invalid("event", "must be one of booking_update, order_update, availability_update, product_update");
  }
  return absl::OkStatus();
}

absl::Status ValidateWebhookHeaders(const std::map<std::string, std::string>& headers) {
  if (headers.size() > kMaxHeaderCount) {
    return Invalid("headers", absl::StrCat("at most ", kMaxHeaderCount, " headers are allowed"));
  }
  std::size_t total = 0;
  std::set<std::string> seen;
  for (const auto& [name, value] : headers) {
    // Name problems may quote the name (it is not secret); values never are.
    if (name.empty() || name.size() > kMaxHeaderNameBytes || !IsHttpToken(name)) {
      return Invalid("headers", "header names must be HTTP tokens (RFC 9110) of at most 256 bytes");
    }
    if (absl::EqualsIgnoreCase(AbslView(name), "content-type")) {
      // Seed dashboards suggest "Content-Type": "application/json": accepted
      // when it says what is sent anyway, refused otherwise.
      if (!IsDeliveryContentType(value)) {
        return Invalid("headers", absl::StrCat("'", name, "' can only be application/json (optionally with "
                                               "charset=utf-8): every delivery is a JSON body"));
      }
    } else if (IsReservedHeader(name)) {
      return Invalid("headers", absl::StrCat("'", name, "' is reserved and cannot be set"));
    }
    if (!seen.insert(absl::AsciiStrToLower(name)).second) {
      return Invalid("headers", absl::StrCat("'", name, "' is given twice (names are case-insensitive)"));
    }
    if (value.size() > kMaxHeaderValueBytes) {
      return Invalid("headers", absl::StrCat("the value of '", name, "' is longer than ", kMaxHeaderValueBytes, " bytes"));
    }
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return Invalid("headers", absl::StrCat("the value of '", name, "' contains CR, LF, NUL or another control character"));
      }
    }
    total += name.size() + value.size();
  }
  if (total > kMaxHeadersTotalBytes) {
    return Invalid("headers", absl::StrCat("names and values must total at most ", kMaxHeadersTotalBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCapabilities(const std::vector<std::string>& capabilities) {
  if (capabilities.size() > kMaxCapabilities) {
    return Invalid("capabilities", absl::StrCat("at most ", kMaxCapabilities, " capabilities are allowed"));
  }
  std::set<std::string_view> seen;
  for (const auto& id : capabilities) {
    if (!IsValidCapabilityId(id)) {
      return Invalid("capabilities", "each capability must look like 'octo/pricing' (vendor/name, at most 100 bytes)");
    }
    if (!seen.insert(id).second) return Invalid("capabilities", absl::StrCat("'", id, "' is given twice"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ParseCapabilitiesHeader(std::string_view header) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(AbslView(header), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    if (!IsValidCapabilityId(std::string_view(part.data(), part.size()))) {
      return absl::InvalidArgumentError(
          "Octo-Capabilities: each capability must look like 'octo/pricing' (vendor/name, at most 100 bytes)");
    }
    if (std::find(out.begin(), out.end(), part) == out.end()) out.emplace_back(part);
    if (out.size() > kMaxCapabilities) {
      return absl::InvalidArgumentError(absl::StrCat("Octo-Capabilities: at most ", kMaxCapabilities, " capabilities"));
    }
  }
  return out;
}

bool IsHttpToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTcharOrDelimiterFree);
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string MaskUrlCredentials(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  const std::size_t authority_start = scheme_end + 3;
  const std::size_t authority_end = std::min(url.find_first_of("/?#", authority_start), url.size());
  const std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  const std::string_view userinfo = authority.substr(0, at);
  const auto colon = userinfo.find(':');
  // With a password the user name is kept for recognition; a lone user part
  // is often a token itself, so it is masked whole.
  const std::string masked = colon == std::string_view::npos
                                 ? std::string(kMaskedValue)
                                 : absl::StrCat(AbslView(userinfo.substr(0, colon)), ":", AbslView(kMaskedValue));
  return absl::StrCat(AbslView(url.substr(0, authority_start)), masked, AbslView(url.substr(authority_start + at)));
}

}  // namespace octo
