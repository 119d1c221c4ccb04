// octo-admin's operator, webhook and delivery command grammar (no server).
#include "tools/admin/operator_commands.h"

#include <gtest/gtest.h>

#include "tools/admin/response_ids.h"

namespace octo::admin {
namespace {

absl::StatusOr<OperatorInvocation> Parse(std::vector<std::string> words) {
  words.insert(words.begin(), "octo-admin");
  return ParseOperatorArgs(words, "127.0.0.1:50051");
}

TEST(OperatorCommands, RecognisesItsResources) {
  EXPECT_TRUE(IsOperatorCommand({"octo-admin", "operator", "create"}));
  EXPECT_TRUE(IsOperatorCommand({"octo-admin", "--target=x:1", "webhooks", "list"}));
  EXPECT_TRUE(IsOperatorCommand({"octo-admin", "--target", "x:1", "delivery", "show"}));
  EXPECT_FALSE(IsOperatorCommand({"octo-admin", "supplier", "list"}));
  EXPECT_FALSE(IsOperatorCommand({"octo-admin", "--help"}));
}

TEST(OperatorCommands, ParsesFlagsIdsAndRepeatedHeaders) {
  auto inv = Parse({"webhook", "create", "--connection=c", "--url", "https://x.test", "--event=booking_update",
                    "--header=A: 1", "--header=B: 2", "--target=h:2"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->resource, "webhook");
  EXPECT_EQ(inv->verb, "create");
  EXPECT_EQ(inv->target, "h:2");
  EXPECT_EQ(inv->flags.size(), 5u);
  // Values keep their underscores; only flag names treat '_' as '-'.
  EXPECT_EQ(inv->flags[2], (std::pair<std::string, std::string>{"event", "booking_update"}));
  auto spelled = Parse({"webhook", "create", "--connection=c", "--url=https://x.test/a_b", "--event", "order_update",
                        "--retry_on_error=false"});
  ASSERT_TRUE(spelled.ok()) << spelled.status();
  EXPECT_EQ(spelled->flags[1].second, "https://x.test/a_b");
  EXPECT_EQ(spelled->flags[2].second, "order_update");
  EXPECT_EQ(spelled->flags[3].first, "retry-on-error");
  auto show = Parse({"deliveries", "redeliver", "d1", "--connection=c", "--webhook=w"});
  ASSERT_TRUE(show.ok()) << show.status();
  EXPECT_EQ(show->resource, "delivery");
  EXPECT_EQ(show->id, "d1");
}

TEST(OperatorCommands, UsageErrors) {
  EXPECT_FALSE(Parse({"operator", "create", "--supplier=s"}).ok());               // --name missing
  EXPECT_FALSE(Parse({"webhook", "show", "--connection=c"}).ok());                // id missing
  EXPECT_FALSE(Parse({"webhook", "list", "--connection=c", "--bogus=1"}).ok());  // unknown flag
  EXPECT_FALSE(Parse({"webhook", "list", "--connection=c", "--connection=d"}).ok());
  EXPECT_FALSE(Parse({"webhook", "explode", "--connection=c"}).ok());
  EXPECT_FALSE(Parse({"operator", "create", "--supplier=s", "--name=n", "--output=yaml"}).ok());
}

TEST(ResponseIds, OwnIdHeldMessagesIdOrEveryListItemsId) {
  webhooks::v1::Webhook one;
  one.set_id("w1");
  EXPECT_EQ(IdsOf(one), std::vector<std::string>{"w1"});
  webhooks::v1::CreateWebhookResponse created;
  created.mutable_webhook()->set_id("w2");
  created.set_secret("whsec_x");
  EXPECT_EQ(IdsOf(created), std::vector<std::string>{"w2"});
  webhooks::v1::ListWebhooksResponse list;
  EXPECT_EQ(IdsOf(list), std::vector<std::string>{});
  list.add_webhooks()->set_id("a");
  list.add_webhooks()->set_id("b");
  list.set_next_page_token("next");
  EXPECT_EQ(IdsOf(list), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace octo::admin
