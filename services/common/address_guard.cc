#include "services/common/address_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/strings.h"

namespace octo {
namespace {

// The special-purpose ranges (IANA IPv4/IPv6 Special-Purpose Address
// Registries, RFC 6890 and successors), most specific first: the first
// match names the range in messages. IPv4-mapped, NAT64 and 6to4 IPv6
// addresses never reach this table: the IPv4 address they carry is looked up.
struct RangeSpec {
  const char* name;
  const char* cidr;
};
constexpr RangeSpec kBlockedRanges[] = {
    // Cloud instance metadata services: credentials of the machine itself.
    {"cloud metadata", "169.254.169.254/32"},  // AWS, GCP, Azure, OpenStack, ...
    {"cloud metadata", "168.63.129.16/32"},    // Azure WireServer (a public address)
    {"cloud metadata", "100.100.100.200/32"},  // Alibaba Cloud
    {"cloud metadata", "fd00:ec2::254/128"},   // AWS over IPv6
    // IPv4
    {"unspecified", "0.0.0.0/32"},
    {"this-network", "0.0.0.0/8"},
    {"private", "10.0.0.0/8"},
    {"CGNAT shared", "100.64.0.0/10"},
    {"loopback", "127.0.0.0/8"},
    {"link-local", "169.254.0.0/16"},
    {"private", "172.16.0.0/12"},
    {"IETF protocol assignment", "192.0.0.0/24"},
    {"documentation", "192.0.2.0/24"},
    {"6to4 relay anycast", "192.88.99.0/24"},
    {"private", "192.168.0.0/16"},
    {"benchmarking", "198.18.0.0/15"},
    {"documentation", "198.51.100.0/24"},
    {"documentation", "203.0.113.0/24"},
    {"multicast", "224.0.0.0/4"},
    {"broadcast", "255.255.255.255/32"},
    {"reserved", "240.0.0.0/4"},
    // IPv6
    {"unspecified", "::/128"},
    {"loopback", "::1/128"},
    {"NAT64 local-use", "64:ff9b:1::/48"},
    {"IPv4-compatible (deprecated)", "::/96"},
    {"discard-only", "100::/64"},
    {"Teredo tunnel", "2001::/32"},
    {"documentation", "2001:db8::/32"},
    {"IETF protocol assignment", "2001::/23"},
    {"documentation", "3fff::/20"},
    {"private", "fc00::/7"},
    {"link-local", "fe80::/10"},
    {"site-local (deprecated)", "fec0::/10"},
    {"multicast", "ff00::/8"},
    // Everything outside 2000::/3 is unassigned or special: not a unicast
    // address on the internet.
    {"reserved", "::/3"},
    {"reserved", "4000::/2"},
    {"reserved", "8000::/1"},
};

struct CompiledRange {
  BlockedRange range;
  Cidr cidr;
};

const std::vector<CompiledRange>& CompiledRanges() {
  static const std::vector<CompiledRange> kCompiled = [] {
    std::vector<CompiledRange> out;
    for (const RangeSpec& spec : kBlockedRanges) {
      absl::StatusOr<Cidr> cidr = Cidr::Parse(spec.cidr);
      // The table above is constant: a bad entry is a programming error,
      // caught by the unit tests on the first call.
      if (cidr.ok()) out.push_back({BlockedRange{spec.name, spec.cidr}, *cidr});
    }
    return out;
  }();
  return kCompiled;
}

bool HasPrefix(const IpAddress& ip, std::initializer_list<uint8_t> prefix) {
  return std::equal(prefix.begin(), prefix.end(), ip.bytes.begin());
}

IpAddress V4FromBytes(const uint8_t* b) {
  IpAddress out;
  std::copy(b, b + 4, out.bytes.begin());
  return out;
}

// One part of a URL IPv4 host per WHATWG "IPv4 number parser": 0x/0X hex
// (empty after the prefix is 0), a leading 0 octal, else decimal.
std::optional<uint64_t> ParseIpv4Number(std::string_view part) {
  if (part.empty()) return std::nullopt;
  int base = 10;
  if (part.size() >= 2 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X')) {
    base = 16;
    part.remove_prefix(2);
  } else if (part.size() >= 2 && part[0] == '0') {
    base = 8;
    part.remove_prefix(1);
  }
  if (part.empty()) return 0;
  uint64_t value = 0;
  for (char c : part) {
    int digit = -1;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (base == 16 && absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      digit = absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    }
    if (digit < 0 || digit >= base) return std::nullopt;
    if (value > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(digit)) / base) {
      return std::numeric_limits<uint64_t>::max();  // far too large anyway
    }
    value = value * base + static_cast<uint64_t>(digit);
  }
  return value;
}

// WHATWG "ends in a number": the last label is digits, or 0x + hex digits.
bool EndsInNumber(std::string_view host) {
  const auto dot = host.rfind('.');
  const std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (last.empty()) return false;
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) return true;
  if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
    return std::all_of(last.begin() + 2, last.end(),
                       [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); });
  }
  return false;
}

}  // namespace

IpAddress IpAddress::V4(uint32_t host_order) {
  IpAddress out;
  out.bytes[0] = static_cast<uint8_t>(host_order >> 24);
  out.bytes[1] = static_cast<uint8_t>(host_order >> 16);
  out.bytes[2] = static_cast<uint8_t>(host_order >> 8);
  out.bytes[3] = static_cast<uint8_t>(host_order);
  return out;
}

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  const std::string z(text);  // inet_pton needs a NUL
  IpAddress out;
  if (z.find(':') != std::string::npos) {
    out.v6 = true;
    if (inet_pton(AF_INET6, z.c_str(), out.bytes.data()) != 1) return std::nullopt;
    return out;
  }
  // inet_pton(AF_INET) takes exactly four decimal parts: the strict form.
  if (inet_pton(AF_INET, z.c_str(), out.bytes.data()) != 1) return std::nullopt;
  return out;
}

std::optional<IpAddress> IpAddress::FromSockaddr(const sockaddr* addr, socklen_t length) {
  if (addr == nullptr) return std::nullopt;
  IpAddress out;
  if (addr->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    std::memcpy(out.bytes.data(), &in->sin_addr, 4);
    return out;
  }
  if (addr->sa_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    out.v6 = true;
    std::memcpy(out.bytes.data(), &in6->sin6_addr, 16);
    return out;
  }
  return std::nullopt;
}

std::string IpAddress::ToString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buffer, sizeof(buffer)) == nullptr) return "?";
  return buffer;
}

std::optional<IpAddress> IpAddress::EmbeddedV4() const {
  if (!v6) return std::nullopt;
  // ::ffff:a.b.c.d (IPv4-mapped) and 64:ff9b::a.b.c.d (NAT64, RFC 6052).
  if (HasPrefix(*this, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}) ||
      HasPrefix(*this, {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0})) {
    return V4FromBytes(bytes.data() + 12);
  }
  // 2002:aabb:ccdd::/48 (6to4, RFC 3056): the relay forwards to a.b.c.d.
  if (HasPrefix(*this, {0x20, 0x02})) return V4FromBytes(bytes.data() + 2);
  return std::nullopt;
}

absl::StatusOr<Cidr> Cidr::Parse(std::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(AbslView(text));
  const std::string_view t(trimmed.data(), trimmed.size());
  const auto slash = t.find('/');
  std::optional<IpAddress> ip = IpAddress::Parse(t.substr(0, slash));
  if (!ip.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("'", trimmed, "' is not an IP address or CIDR block"));
  }
  const int max_prefix = ip->v6 ? 128 : 32;
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = t.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        !absl::SimpleAtoi(AbslView(digits), &prefix) || prefix > max_prefix) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", trimmed, "': the prefix length must be 0..", max_prefix));
    }
  }
  Cidr cidr;
  cidr.base = *ip;
  cidr.prefix = prefix;
  for (int bit = prefix; bit < max_prefix; ++bit) {
    cidr.base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  if (!(cidr.base == *ip)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", trimmed, "' has bits set after the prefix; did you mean ", cidr.ToString(), "?"));
  }
  return cidr;
}

bool Cidr::Contains(const IpAddress& ip) const {
  if (ip.v6 != base.v6) return false;
  const int full = prefix / 8;
  if (!std::equal(base.bytes.begin(), base.bytes.begin() + full, ip.bytes.begin())) return false;
  if (prefix % 8 == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff00u >> (prefix % 8));
  return (ip.bytes[full] & mask) == base.bytes[full];
}

std::string Cidr::ToString() const { return absl::StrCat(base.ToString(), "/", prefix); }

std::optional<BlockedRange> ClassifyAddress(const IpAddress& ip) {
  if (std::optional<IpAddress> v4 = ip.EmbeddedV4(); v4.has_value()) return ClassifyAddress(*v4);
  for (const CompiledRange& r : CompiledRanges()) {
    if (r.cidr.Contains(ip)) return r.range;
  }
  return std::nullopt;
}

absl::StatusOr<DestinationPolicy> DestinationPolicy::Parse(std::string_view allow_list) {
  std::vector<Cidr> allowed;
  for (absl::string_view item : absl::StrSplit(AbslView(allow_list), ',', absl::SkipWhitespace())) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(std::string_view(item.data(), item.size()));
    if (!cidr.ok()) return cidr.status();
    allowed.push_back(*cidr);
  }
  return DestinationPolicy(std::move(allowed));
}

absl::Status DestinationPolicy::Check(const IpAddress& ip) const {
  const std::optional<BlockedRange> blocked = ClassifyAddress(ip);
  if (!blocked.has_value()) return absl::OkStatus();
  const std::optional<IpAddress> v4 = ip.EmbeddedV4();
  for (const Cidr& cidr : allowed_) {
    if (cidr.Contains(ip) || (v4.has_value() && cidr.Contains(*v4))) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(ip.ToString(), " is a ", AbslView(blocked->name), " address (",
                                                  AbslView(blocked->cidr), ")"));
}

absl::StatusOr<std::optional<IpAddress>> ParseUrlHostAddress(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return absl::InvalidArgumentError("unterminated IPv6 address");
    std::optional<IpAddress> ip = IpAddress::Parse(host.substr(1, host.size() - 2));
    if (!ip.has_value() || !ip->v6) return absl::InvalidArgumentError("invalid IPv6 address");
    return ip;
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || !EndsInNumber(host)) return std::optional<IpAddress>();  // a host name
  // An IPv4 address in the WHATWG URL standard's (and inet_aton's) forms:
  // 1 to 4 parts; every part but the last is one byte, the last fills the
  // remaining bytes ("127.1" = 127.0.0.1, "2130706433" = 127.0.0.1).
  std::vector<std::string_view> parts;
  for (absl::string_view part : absl::StrSplit(AbslView(host), '.')) parts.emplace_back(part.data(), part.size());
  if (parts.size() > 4) return absl::InvalidArgumentError("invalid IPv4 address (more than 4 parts)");
  uint64_t value = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::optional<uint64_t> n = ParseIpv4Number(parts[i]);
    if (!n.has_value()) return absl::InvalidArgumentError("invalid IPv4 address");
    const bool last = i + 1 == parts.size();
    const int bytes_left = last ? static_cast<int>(5 - parts.size()) : 1;
    if (*n >= (uint64_t{1} << (8 * bytes_left))) {
      return absl::InvalidArgumentError("invalid IPv4 address (a part is out of range)");
    }
    value = last ? (value << (8 * bytes_left)) | *n : (value << 8) | *n;
  }
  return std::optional<IpAddress>(IpAddress::V4(static_cast<uint32_t>(value)));
}

}  // namespace octo
