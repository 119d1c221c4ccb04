// Inputs tests/fuzz found that broke a gateway parser's promise, each with
// what the parser now does.
#include <string>

#include <gtest/gtest.h>

#include "gateway/dashboard_json.h"

namespace octo::gateway {
namespace {

// A query value with bytes outside printable ASCII used to be copied into a
// protobuf string field: not UTF-8, it failed at the service as an internal
// error instead of a 400 here.
TEST(ParserFuzzFindings, WebhookFilterRefusesBytesOutsidePrintableAscii) {
  using namespace std::string_literals;  // the input holds NUL bytes
  const std::string target =
      "/dash/webhooks?connectionId=00000000-0000-4000-8000-000h\xf3K\x9d\x05\x7f\x00\x00\x31"
      "&event=order_update&status=enabled"s;
  const auto filter = ParseWebhookFilter(target);
  EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(filter.status().message(), "connectionId: not a valid value");
  EXPECT_FALSE(ParseWebhookFilter("/x?event=caf\xc3\xa9").ok());
  EXPECT_FALSE(ParseWebhookFilter("/x?event=a\tb").ok());
  EXPECT_TRUE(ParseWebhookFilter("/x?connectionId=c0000000-0000-4000-8000-00000000000a").ok());
}

}  // namespace
}  // namespace octo::gateway
