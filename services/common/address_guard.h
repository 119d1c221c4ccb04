#pragma once
// SSRF protection: which destination addresses a
// webhook may be sent to.
//
// Production policy: every address is allowed except the special-purpose
// ranges a request from inside our network must never reach (loopback,
// private, link-local, CGNAT, multicast, unspecified, broadcast,
// documentation, benchmarking, reserved, cloud metadata, ...; the table is
// in address_guard.cc and docs/delivery.md). IPv4-mapped (::ffff:0:0/96),
// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4
// address they carry. Self-hosters may allow CIDRs explicitly (e.g.
// "127.0.0.0/8,::1/128" for everything on one machine).
//
// The delivery service applies the policy to every address it connects to
// (curl_transport.cc, at socket-open time, so DNS rebinding cannot slip
// through); the subscription service applies it early to URL hosts that are
// IP literals in any spelling a resolver accepts (ParseUrlHostAddress).
//
// Example:
//   absl::StatusOr<DestinationPolicy> policy = DestinationPolicy::Parse("127.0.0.0/8,::1/128");
//   std::optional<IpAddress> ip = IpAddress::Parse("10.1.2.3");
//   absl::Status s = policy->Check(*ip);  // PERMISSION_DENIED "10.1.2.3 is a private address (10.0.0.0/8)"
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace octo {

// An IPv4 or IPv6 address (bytes in network order; IPv4 uses the first 4).
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};

  static IpAddress V4(uint32_t host_order);
  // Strict literals only: dotted-quad IPv4 ("10.0.0.1") or IPv6 text
  // ("::1", "::ffff:127.0.0.1"), without brackets or zone. nullopt otherwise.
  static std::optional<IpAddress> Parse(std::string_view text);
  // From a socket address (AF_INET or AF_INET6); nullopt for other families
  // or a short length.
  static std::optional<IpAddress> FromSockaddr(const sockaddr* addr, socklen_t length);

  // "10.0.0.1", "::1" (inet_ntop).
  std::string ToString() const;
  // The IPv4 address an IPv6 address carries for routing purposes: the
  // IPv4-mapped (::ffff:a.b.c.d), NAT64 well-known prefix (64:ff9b::a.b.c.d)
  // and 6to4 (2002:aabb:ccdd::) forms. nullopt for IPv4 and other IPv6.
  std::optional<IpAddress> EmbeddedV4() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// An address block: "10.0.0.0/8", "::1/128"; a bare address is a /32 or /128.
struct Cidr {
  IpAddress base;  // host bits cleared
  int prefix = 0;

  // INVALID_ARGUMENT for anything but address[/prefix] with a prefix in
  // range. Host bits set below the prefix are refused too ("10.0.0.1/8"),
  // since they usually mean a typo.
  static absl::StatusOr<Cidr> Parse(std::string_view text);
  bool Contains(const IpAddress& ip) const;
  std::string ToString() const;
};

// Why an address is refused: a short name of its range and the range.
struct BlockedRange {
  std::string_view name;  // "loopback", "private", "cloud metadata", ...
  std::string_view cidr;  // "127.0.0.0/8"
};

// The special-purpose range `ip` belongs to (for IPv4-mapped, NAT64 and 6to4
// forms: the range of the IPv4 address carried), or nullopt for an address
// that may be reached on the public internet.
std::optional<BlockedRange> ClassifyAddress(const IpAddress& ip);

class DestinationPolicy {
 public:
  // Production: nothing allowed beyond public addresses.
  DestinationPolicy() = default;
  explicit DestinationPolicy(std::vector<Cidr> allowed) : allowed_(std::move(allowed)) {}
  // A comma-separated CIDR list ("" = production). INVALID_ARGUMENT naming
  // the bad item.
  static absl::StatusOr<DestinationPolicy> Parse(std::string_view allow_list);

  // OK when `ip` is public or inside an allowed CIDR (an IPv4-mapped or NAT64
  // address also when the IPv4 address it carries is); else PERMISSION_DENIED
  // "<ip> is a <range name> address (<cidr>)".
  absl::Status Check(const IpAddress& ip) const;

  const std::vector<Cidr>& allowed() const { return allowed_; }

 private:
  std::vector<Cidr> allowed_;
};

// The address a URL host denotes when it is an IP literal in any spelling
// that URL parsers or resolvers (WHATWG, libcurl, inet_aton) turn into one:
// "[::ffff:127.0.0.1]", "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1",
// "127.1", with an optional trailing dot. nullopt for a host name. The host
// is as it appears in the URL (brackets kept, no port); INVALID_ARGUMENT
// for a host that looks numeric but is not a valid address ("1.2.3.256",
// "0x1g.0.0.1", a bracketed text that is not IPv6).
absl::StatusOr<std::optional<IpAddress>> ParseUrlHostAddress(std::string_view host);

}  // namespace octo
