#include "services/delivery/payload/signing.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "services/common/crypto.h"
#include "services/common/strings.h"

namespace octo::payload {
namespace {

constexpr std::string_view kSecretPrefix = "whsec_";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Sign(std::string_view key, std::string_view webhook_id, int64_t timestamp, std::string_view body) {
  const std::string content = absl::StrCat(AbslView(webhook_id), ".", timestamp, ".", AbslView(body));
  return crypto::Base64Encode(crypto::HmacSha256(key, content));
}

}  // namespace

std::optional<std::string> Base64Decode(std::string_view text) {
  // Padding: at most two '=', only at the end, and then the length is a
  // multiple of 4.
  std::size_t data_length = text.size();
  while (data_length > 0 && text[data_length - 1] == '=') --data_length;
  const std::size_t padding = text.size() - data_length;
  if (padding > 2) return std::nullopt;
  if (padding > 0 && text.size() % 4 != 0) return std::nullopt;
  if (data_length % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(data_length * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < data_length; ++i) {
    const int v = Base64Value(text[i]);
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  // Leftover bits of a final partial group are ignored (as most decoders do).
  if (padding > 0 && (data_length % 4) + padding != 4) return std::nullopt;
  return out;
}

absl::StatusOr<std::string> DecodeSigningSecret(std::string_view secret) {
  if (secret.substr(0, kSecretPrefix.size()) == kSecretPrefix) secret.remove_prefix(kSecretPrefix.size());
  std::optional<std::string> key = Base64Decode(secret);
  if (!key || key->empty()) {
    return absl::InvalidArgumentError("signing secret: not \"whsec_\" followed by base64");
  }
  return *std::move(key);
}

absl::StatusOr<std::string> SignatureHeader(std::string_view webhook_id, int64_t timestamp, std::string_view body,
                                            const std::vector<std::string>& secrets) {
  if (secrets.empty()) return absl::InvalidArgumentError("signing secret: none given");
  std::string header;
  for (const std::string& secret : secrets) {
    absl::StatusOr<std::string> key = DecodeSigningSecret(secret);
    if (!key.ok()) return key.status();
    if (!header.empty()) header += ' ';
    header += "v1,";
    header += Sign(*key, webhook_id, timestamp, body);
  }
  return header;
}

bool VerifySignatureHeader(std::string_view header, std::string_view webhook_id, int64_t timestamp,
                           std::string_view body, std::string_view secret) {
  absl::StatusOr<std::string> key = DecodeSigningSecret(secret);
  if (!key.ok()) return false;
  const std::string expected = Sign(*key, webhook_id, timestamp, body);
  bool found = false;
  std::size_t start = 0;
  while (start <= header.size()) {
    std::size_t end = header.find(' ', start);
    if (end == std::string_view::npos) end = header.size();
    const std::string_view entry = header.substr(start, end - start);
    if (entry.substr(0, 3) == "v1,") {
      const std::string_view signature = entry.substr(3);
      if (signature.size() == expected.size() && crypto::ConstantTimeEquals(signature, expected)) found = true;
    }
    start = end + 1;
  }
  return found;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 && HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

UrlAuth BasicAuthFromUrl(std::string_view url) {
  UrlAuth result{std::string(url), std::nullopt};
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return result;
  const std::size_t authority_start = scheme_end + 3;
  const std::size_t authority_end = std::min(url.find_first_of("/?#", authority_start), url.size());
  const std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return result;
  const std::string_view userinfo = authority.substr(0, at);
  const std::size_t colon = userinfo.find(':');
  const std::string user = PercentDecode(userinfo.substr(0, colon));
  const std::string password =
      colon == std::string_view::npos ? std::string() : PercentDecode(userinfo.substr(colon + 1));
  result.url = absl::StrCat(AbslView(url.substr(0, authority_start)), AbslView(url.substr(authority_start + at + 1)));
  result.authorization = absl::StrCat("Basic ", crypto::Base64Encode(absl::StrCat(user, ":", password)));
  return result;
}

}  // namespace octo::payload
