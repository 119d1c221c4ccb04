#pragma once
// Randomness, hashing and encodings (OpenSSL underneath).
#include <cstddef>
#include <string>
#include <string_view>

namespace octo::crypto {

// Cryptographically secure random bytes; aborts if the CSPRNG fails.
std::string RandomBytes(std::size_t count);

std::string Base64Encode(std::string_view bytes);      // standard alphabet, padded
std::string Base64UrlEncode(std::string_view bytes);   // URL-safe alphabet, unpadded
std::string HexEncode(std::string_view bytes);

std::string Sha256(std::string_view data);  // 32 raw bytes
std::string HmacSha256(std::string_view key, std::string_view data);  // 32 raw bytes

// Constant-time comparison of equal-length secrets.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Standard Webhooks signing secret: "whsec_" + base64(32 random bytes).
std::string NewSigningSecret();

// Bearer API key: "octo_" + base64url(32 random bytes).
std::string NewApiKey();

}  // namespace octo::crypto
