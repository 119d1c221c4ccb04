// Fuzz target: webhook URL validation (services/common/validation.h), and a
// differential against libcurl, which is what delivers to the URL.
//
// For every url ValidateWebhookUrl accepts, libcurl's URL API (curl_url,
// the parser behind CURLOPT_URL, with the flags DestinationKey uses) must
// accept it too and read the same scheme, the same host (an IP literal: the
// same address, whatever its spelling) and the same port. A url whose host
// libcurl reads differently could pass the SSRF check for one host and be
// delivered to another; where the two disagree, our validation must refuse.
// For a url ValidateWebhookDestination also accepts under the production
// policy, the host libcurl connects to must not be a blocked address or a
// localhost name. And MaskUrlCredentials never leaves a password libcurl
// would read.
#include <curl/curl.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "services/common/address_guard.h"
#include "services/common/strings.h"
#include "services/common/validation.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view url, std::string_view ours = {},
                       std::string_view curls = {}) {
  fprintf(stderr, "invariant broken: %s\nurl: %.*s\nours: %.*s\nlibcurl: %.*s\n", what,
          static_cast<int>(url.size()), url.data(), static_cast<int>(ours.size()), ours.data(),
          static_cast<int>(curls.size()), curls.data());
  abort();
}

struct CurlParts {
  std::string scheme, host, port, password;
};

std::optional<std::string> Get(CURLU* u, CURLUPart part, unsigned flags = 0) {
  char* value = nullptr;
  if (curl_url_get(u, part, &value, flags) != CURLUE_OK) return std::nullopt;
  std::string out(value);
  curl_free(value);
  return out;
}

std::optional<CurlParts> CurlRead(const std::string& url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), curl_url_cleanup);
  if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return std::nullopt;
  CurlParts parts;
  std::optional<std::string> scheme = Get(u.get(), CURLUPART_SCHEME);
  std::optional<std::string> host = Get(u.get(), CURLUPART_HOST);
  std::optional<std::string> port = Get(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (!scheme || !host || !port) return std::nullopt;
  parts.scheme = *scheme;
  parts.host = *host;
  parts.port = *port;
  parts.password = Get(u.get(), CURLUPART_PASSWORD).value_or("");
  return parts;
}

// The host compared as libcurl connects to it: an IP literal by address,
// a name case-insensitively.
bool SameHost(std::string_view ours, std::string_view curls) {
  const absl::StatusOr<std::optional<octo::IpAddress>> a = octo::ParseUrlHostAddress(ours);
  const absl::StatusOr<std::optional<octo::IpAddress>> b = octo::ParseUrlHostAddress(curls);
  if (a.ok() && b.ok() && a->has_value() && b->has_value()) return **a == **b;
  return absl::EqualsIgnoreCase(octo::AbslView(ours), octo::AbslView(curls));
}

void CheckAgainstCurl(const std::string& url) {
  const absl::StatusOr<octo::WebhookUrlParts> ours = octo::SplitWebhookUrl(url);
  if (!ours.ok()) Fail("accepted but not split", url);
  const std::optional<CurlParts> curls = CurlRead(url);
  if (!curls.has_value()) Fail("accepted, but libcurl refuses it", url);
  if (ours->scheme != absl::AsciiStrToLower(curls->scheme)) {
    Fail("another scheme", url, ours->scheme, curls->scheme);
  }
  if (!SameHost(ours->host, curls->host)) Fail("another host", url, ours->host, curls->host);
  int our_port = ours->scheme == "https" ? 443 : 80;
  if (!ours->port.empty() && !absl::SimpleAtoi(octo::AbslView(ours->port), &our_port)) Fail("port", url);
  int curl_port = 0;
  if (!absl::SimpleAtoi(curls->port, &curl_port) || curl_port != our_port) {
    Fail("another port", url, ours->port, curls->port);
  }

  static const octo::DestinationPolicy production;
  if (octo::ValidateWebhookDestination(url, production).ok()) {
    const absl::StatusOr<std::optional<octo::IpAddress>> ip =
        octo::ParseUrlHostAddress(curls->host);
    if (ip.ok() && ip->has_value() && !production.Check(**ip).ok()) {
      Fail("a blocked address passed the destination check", url, ours->host, curls->host);
    }
    std::string name = absl::AsciiStrToLower(curls->host);
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name == "localhost" || absl::EndsWith(name, ".localhost")) {
      Fail("a localhost name passed the destination check", url, ours->host, curls->host);
    }
  }

  if (!curls->password.empty()) {
    const std::optional<CurlParts> masked = CurlRead(octo::MaskUrlCredentials(url));
    if (!masked.has_value() || (!masked->password.empty() && masked->password != "***")) {
      Fail("MaskUrlCredentials leaves the password", url, octo::MaskUrlCredentials(url));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string url(reinterpret_cast<const char*>(data), size);
  (void)octo::MaskUrlCredentials(url);
  if (absl::StatusOr<std::optional<octo::IpAddress>> ip = octo::ParseUrlHostAddress(url);
      ip.ok() && ip->has_value()) {
    // A literal the guard reads is an address it can classify and print.
    (void)octo::ClassifyAddress(**ip);
    if ((**ip).ToString().empty()) Fail("an address without text", url);
  }
  const absl::Status valid = octo::ValidateWebhookUrl(url);
  if (!valid.ok()) {
    if (valid.code() != absl::StatusCode::kInvalidArgument ||
        !absl::StartsWith(valid.message(), "url: ")) {
      Fail("a refusal without INVALID_ARGUMENT \"url: ...\"", url);
    }
    return 0;
  }
  // Embedded NULs never pass the character check, so c_str() is the url.
  CheckAgainstCurl(url);
  return 0;
}
