// The SSRF guard's address classifier, CIDR allow-list and URL host literal
// parser (services/common/address_guard.h): every blocked range at its
// boundaries, the embedded-IPv4 forms, and every IPv4 spelling.
#include "services/common/address_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace octo {
namespace {

IpAddress Ip(const std::string& text) {
  std::optional<IpAddress> ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(IpAddress{});
}

std::string RangeOf(const std::string& text) {
  std::optional<BlockedRange> r = ClassifyAddress(Ip(text));
  return r.has_value() ? std::string(r->name) : "public";
}

struct Case {
  const char* address;
  const char* range;  // "public" when allowed
};

// Each range: its first and last address blocked, the neighbours outside it
// public (where they are public at all).
TEST(ClassifyAddress, Ipv4RangesAndTheirBoundaries) {
  const Case cases[] = {
      {"0.0.0.0", "unspecified"},
      {"0.0.0.1", "this-network"},
      {"0.255.255.255", "this-network"},
      {"1.0.0.0", "public"},
      {"9.255.255.255", "public"},
      {"10.0.0.0", "private"},
      {"10.255.255.1", "private"},
      {"10.255.255.255", "private"},
      {"11.0.0.0", "public"},
      {"100.63.255.255", "public"},
      {"100.64.0.0", "CGNAT shared"},
      {"100.127.255.255", "CGNAT shared"},
      {"100.128.0.0", "public"},
      {"100.100.100.200", "cloud metadata"},
      {"126.255.255.255", "public"},
      {"127.0.0.0", "loopback"},
      {"127.0.0.1", "loopback"},
      {"127.255.255.255", "loopback"},
      {"128.0.0.0", "public"},
      {"169.253.255.255", "public"},
      {"169.254.0.0", "link-local"},
      {"169.254.169.254", "cloud metadata"},
      {"169.254.169.253", "link-local"},
      {"169.254.255.255", "link-local"},
      {"169.255.0.0", "public"},
      {"168.63.129.16", "cloud metadata"},
      {"168.63.129.17", "public"},
      {"172.15.255.255", "public"},
      {"172.16.0.0", "private"},
      {"172.31.255.255", "private"},
      {"172.32.0.0", "public"},
      {"192.0.0.0", "IETF protocol assignment"},
      {"192.0.0.255", "IETF protocol assignment"},
      {"192.0.1.0", "public"},
      {"192.0.2.0", "documentation"},
      {"192.0.2.255", "documentation"},
      {"192.0.3.0", "public"},
      {"192.88.99.1", "6to4 relay anycast"},
      {"192.167.255.255", "public"},
      {"192.168.0.0", "private"},
      {"192.168.255.255", "private"},
      {"192.169.0.0", "public"},
      {"198.17.255.255", "public"},
      {"198.18.0.0", "benchmarking"},
      {"198.19.255.255", "benchmarking"},
      {"198.20.0.0", "public"},
      {"198.51.99.255", "public"},
      {"198.51.100.0", "documentation"},
      {"198.51.100.255", "documentation"},
      {"198.51.101.0", "public"},
      {"203.0.112.255", "public"},
      {"203.0.113.0", "documentation"},
      {"203.0.113.255", "documentation"},
      {"203.0.114.0", "public"},
      {"223.255.255.255", "public"},
      {"224.0.0.0", "multicast"},
      {"239.255.255.255", "multicast"},
      {"240.0.0.0", "reserved"},
      {"255.255.255.254", "reserved"},
      {"255.255.255.255", "broadcast"},
      {"8.8.8.8", "public"},
      {"93.184.216.34", "public"},
  };
  for (const Case& c : cases) EXPECT_EQ(RangeOf(c.address), c.range) << c.address;
}

TEST(ClassifyAddress, Ipv6RangesAndTheirBoundaries) {
  const Case cases[] = {
      {"::", "unspecified"},
      {"::1", "loopback"},
      {"::2", "IPv4-compatible (deprecated)"},
      {"::8.8.8.8", "IPv4-compatible (deprecated)"},
      {"100::", "discard-only"},
      {"100::ffff:ffff:ffff:ffff", "discard-only"},
      {"100:0:0:1::", "reserved"},
      {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
      {"2000::", "public"},
      {"2001::", "Teredo tunnel"},
      {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "Teredo tunnel"},
      {"2001:1::", "IETF protocol assignment"},
      {"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignment"},
      {"2001:200::", "public"},
      {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "public"},
      {"2001:db8::", "documentation"},
      {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
      {"2001:db9::", "public"},
      {"2001:4860:4860::8888", "public"},
      {"2606:4700:4700::1111", "public"},
      {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "public"},
      {"3fff::", "documentation"},
      {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
      {"3fff:1000::", "public"},
      {"4000::", "reserved"},
      {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
      {"fc00::", "private"},
      {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"},
      {"fd00:ec2::254", "cloud metadata"},
      {"fd00:ec2::253", "private"},
      {"fe80::", "link-local"},
      {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
      {"fec0::", "site-local (deprecated)"},
      {"ff00::", "multicast"},
      {"ff02::1", "multicast"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
      {"64:ff9b:1::1", "NAT64 local-use"},
  };
  for (const Case& c : cases) EXPECT_EQ(RangeOf(c.address), c.range) << c.address;
}

TEST(ClassifyAddress, EmbeddedIpv4FormsAreJudgedByTheirIpv4Address) {
  const Case cases[] = {
      // IPv4-mapped
      {"::ffff:127.0.0.1", "loopback"},
      {"::ffff:7f00:1", "loopback"},
      {"::ffff:10.0.0.1", "private"},
      {"::ffff:169.254.169.254", "cloud metadata"},
      {"::ffff:0.0.0.0", "unspecified"},
      {"::ffff:8.8.8.8", "public"},
      // NAT64 well-known prefix
      {"64:ff9b::127.0.0.1", "loopback"},
      {"64:ff9b::a9fe:a9fe", "cloud metadata"},
      {"64:ff9b::192.168.1.1", "private"},
      {"64:ff9b::8.8.8.8", "public"},
      // 6to4
      {"2002:7f00:1::", "loopback"},
      {"2002:a00:1::1", "private"},
      {"2002:808:808::1", "public"},
  };
  for (const Case& c : cases) EXPECT_EQ(RangeOf(c.address), c.range) << c.address;
  EXPECT_EQ(Ip("::ffff:127.0.0.1").EmbeddedV4(), Ip("127.0.0.1"));
  EXPECT_EQ(Ip("64:ff9b::a00:1").EmbeddedV4(), Ip("10.0.0.1"));
  EXPECT_EQ(Ip("2002:c000:204::").EmbeddedV4(), Ip("192.0.2.4"));
  EXPECT_FALSE(Ip("2001:db8::1").EmbeddedV4().has_value());
  EXPECT_FALSE(Ip("10.0.0.1").EmbeddedV4().has_value());
}

TEST(IpAddress, ParsesOnlyStrictLiterals) {
  for (const char* bad : {"", "127.1", "0177.0.0.1", "2130706433", "1.2.3.256", "[::1]", "fe80::1%eth0",
                          "localhost", "1.2.3.4 ", "::ffff:1.2.3"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << bad;
  }
  EXPECT_EQ(Ip("192.0.2.1").ToString(), "192.0.2.1");
  EXPECT_EQ(Ip("2001:DB8:0:0::1").ToString(), "2001:db8::1");
  EXPECT_TRUE(Ip("::1").v6);
  EXPECT_FALSE(Ip("1.2.3.4").v6);
}

TEST(IpAddress, FromSockaddrReadsBothFamilies) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, "10.1.2.3", &in.sin_addr);
  EXPECT_EQ(IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in), sizeof(in)), Ip("10.1.2.3"));
  EXPECT_FALSE(IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in), sizeof(in) - 1).has_value());
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
  EXPECT_EQ(IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in6), sizeof(in6)), Ip("::ffff:127.0.0.1"));
  sockaddr other{};
  other.sa_family = AF_UNIX;
  EXPECT_FALSE(IpAddress::FromSockaddr(&other, sizeof(other)).has_value());
  EXPECT_FALSE(IpAddress::FromSockaddr(nullptr, 0).has_value());
}

TEST(Cidr, ParsesContainsAndRefusesNonsense) {
  absl::StatusOr<Cidr> c = Cidr::Parse("10.0.0.0/8");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->Contains(Ip("10.255.255.255")));
  EXPECT_FALSE(c->Contains(Ip("11.0.0.0")));
  EXPECT_FALSE(c->Contains(Ip("::ffff:10.0.0.1")));  // families are not mixed here
  EXPECT_EQ(c->ToString(), "10.0.0.0/8");

  absl::StatusOr<Cidr> odd = Cidr::Parse("172.16.0.0/12");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->Contains(Ip("172.31.0.1")));
  EXPECT_FALSE(odd->Contains(Ip("172.32.0.1")));

  absl::StatusOr<Cidr> host = Cidr::Parse(" ::1 ");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->prefix, 128);
  EXPECT_TRUE(host->Contains(Ip("::1")));
  EXPECT_FALSE(host->Contains(Ip("::2")));

  absl::StatusOr<Cidr> all = Cidr::Parse("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Contains(Ip("255.1.2.3")));

  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.1/8",
                          "example.com/8", "10/8", "10.0.0.0/0008"}) {
    EXPECT_FALSE(Cidr::Parse(bad).ok()) << bad;
  }
  EXPECT_NE(Cidr::Parse("10.0.0.1/8").status().message().find("10.0.0.0/8"), std::string_view::npos);
}

TEST(DestinationPolicy, ProductionRefusesEveryBlockedRangeNamingIt) {
  const DestinationPolicy production;
  EXPECT_TRUE(production.Check(Ip("8.8.8.8")).ok());
  EXPECT_TRUE(production.Check(Ip("2606:4700:4700::1111")).ok());
  const absl::Status s = production.Check(Ip("10.255.255.1"));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "10.255.255.1 is a private address (10.0.0.0/8)");
  EXPECT_EQ(production.Check(Ip("::ffff:127.0.0.1")).message(),
            "::ffff:127.0.0.1 is a loopback address (127.0.0.0/8)");
  EXPECT_EQ(production.Check(Ip("169.254.169.254")).message(),
            "169.254.169.254 is a cloud metadata address (169.254.169.254/32)");
}

TEST(DestinationPolicy, AllowListOpensOnlyItsRanges) {
  absl::StatusOr<DestinationPolicy> p = DestinationPolicy::Parse("127.0.0.0/8, ::1/128,10.1.0.0/16");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->allowed().size(), 3u);
  EXPECT_TRUE(p->Check(Ip("127.0.0.1")).ok());
  EXPECT_TRUE(p->Check(Ip("127.255.0.9")).ok());
  EXPECT_TRUE(p->Check(Ip("::1")).ok());
  EXPECT_TRUE(p->Check(Ip("::ffff:127.0.0.1")).ok());  // the same destination
  EXPECT_TRUE(p->Check(Ip("10.1.200.3")).ok());
  EXPECT_FALSE(p->Check(Ip("10.2.0.1")).ok());
  EXPECT_FALSE(p->Check(Ip("169.254.169.254")).ok());
  EXPECT_FALSE(p->Check(Ip("192.168.0.1")).ok());
  EXPECT_TRUE(p->Check(Ip("8.8.8.8")).ok());

  absl::StatusOr<DestinationPolicy> empty = DestinationPolicy::Parse("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->allowed().empty());
  EXPECT_FALSE(empty->Check(Ip("127.0.0.1")).ok());

  absl::StatusOr<DestinationPolicy> bad = DestinationPolicy::Parse("127.0.0.0/8,localhost");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("localhost"), std::string_view::npos);
}

TEST(ParseUrlHostAddress, EverySpellingOfAnIpv4Address) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"127.0.0.1", "127.0.0.1"},
      {"127.0.0.1.", "127.0.0.1"},         // trailing dot
      {"2130706433", "127.0.0.1"},         // one decimal number
      {"0x7f000001", "127.0.0.1"},         // one hex number
      {"0X7F000001", "127.0.0.1"},
      {"017700000001", "127.0.0.1"},       // one octal number
      {"0177.0.0.1", "127.0.0.1"},         // octal part
      {"0177.0000.0000.0001", "127.0.0.1"},
      {"0x7f.0.0.1", "127.0.0.1"},         // hex part
      {"0x7f.0x0.0x0.0x1", "127.0.0.1"},
      {"127.1", "127.0.0.1"},              // short forms
      {"127.0.1", "127.0.0.1"},
      {"10.16777215", "10.255.255.255"},
      {"0", "0.0.0.0"},
      {"0x", "0.0.0.0"},
      {"169.254.43518", "169.254.169.254"},
      {"0xa9fea9fe", "169.254.169.254"},
      {"3232235777", "192.168.1.1"},
      {"8.8.8.8", "8.8.8.8"},
  };
  for (const auto& [host, want] : cases) {
    absl::StatusOr<std::optional<IpAddress>> got = ParseUrlHostAddress(host);
    ASSERT_TRUE(got.ok()) << host << ": " << got.status();
    ASSERT_TRUE(got->has_value()) << host;
    EXPECT_EQ((*got)->ToString(), want) << host;
  }
}

TEST(ParseUrlHostAddress, BracketedIpv6) {
  for (const auto& [host, want] : std::vector<std::pair<std::string, std::string>>{
           {"[::1]", "::1"},
           {"[::ffff:127.0.0.1]", "::ffff:127.0.0.1"},
           {"[::FFFF:7F00:1]", "::ffff:127.0.0.1"},
           {"[64:ff9b::10.0.0.1]", "64:ff9b::a00:1"},
           {"[2001:db8::1]", "2001:db8::1"}}) {
    absl::StatusOr<std::optional<IpAddress>> got = ParseUrlHostAddress(host);
    ASSERT_TRUE(got.ok() && got->has_value()) << host;
    EXPECT_EQ((*got)->ToString(), want) << host;
  }
}

TEST(ParseUrlHostAddress, NamesAreNotAddressesAndBadNumbersAreErrors) {
  for (const char* name : {"example.com", "localhost", "hooks.example.com.", "1.2.3.example", "0x7f.example",
                           "a1", "127.0.0.1.nip.io", "xn--bcher-kva.example"}) {
    absl::StatusOr<std::optional<IpAddress>> got = ParseUrlHostAddress(name);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_FALSE(got->has_value()) << name;
  }
  for (const char* bad : {"1.2.3.256", "256.1.1.1", "1.2.3.4.5", "4294967296", "127.16777216", "0x1g.0.0.1",
                          "08.0.0.1", "1..2.3", "99999999999999999999999", "[::1", "[127.0.0.1]", "[]",
                          "[fe80::1%25eth0]", "example.123"}) {
    EXPECT_EQ(ParseUrlHostAddress(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace octo
