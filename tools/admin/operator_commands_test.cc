// octo-admin's operator, webhook and delivery command grammar (no server).
#include "tools/admin/operator_commands.h"

#include <gtest/gtest.h>

#include "tools/admin/response_ids.h"
#include "tools/admin/webhook_requests.h"

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

TEST(OperatorCommands, OrderedStandsAloneOrTakesABooleanAndUpdateSetsOnlyWhatIsGiven) {
  // A bare --ordered is true and never swallows the next argument.
  auto created = Parse({"webhook", "create", "--ordered", "--connection=c", "--url=https://x.test", "--event=booking_update"});
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<webhooks::v1::CreateWebhookRequest> create = CreateWebhookRequestFrom(*created);
  ASSERT_TRUE(create.ok()) << create.status();
  EXPECT_TRUE(create->has_ordered() && create->ordered());
  auto plain = Parse({"webhook", "create", "--connection=c", "--url=https://x.test", "--event=booking_update"});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(CreateWebhookRequestFrom(*plain)->has_ordered());

  auto off = Parse({"webhook", "update", "w1", "--connection=c", "--ordered", "false", "--url=https://y.test"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->id, "w1");
  absl::StatusOr<webhooks::v1::UpdateWebhookRequest> update = UpdateWebhookRequestFrom(*off);
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_EQ(update->webhook_id(), "w1");
  EXPECT_TRUE(update->has_ordered());
  EXPECT_FALSE(update->ordered());
  EXPECT_EQ(update->url(), "https://y.test");
  EXPECT_FALSE(update->has_event());
  EXPECT_FALSE(update->has_retry_on_error());
  EXPECT_FALSE(update->has_active());
  EXPECT_FALSE(update->has_headers());
  auto on = Parse({"webhook", "update", "w1", "--connection=c", "--ordered=true", "--active=no", "--header=A: 1"});
  ASSERT_TRUE(on.ok()) << on.status();
  update = UpdateWebhookRequestFrom(*on);
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_TRUE(update->ordered());
  EXPECT_TRUE(update->has_active() && !update->active());
  EXPECT_EQ(update->headers().values().at("A"), "1");
  EXPECT_FALSE(update->has_url());

  // Nothing to change, a bad boolean, a missing id: usage errors.
  auto nothing = Parse({"webhook", "update", "w1", "--connection=c"});
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(UpdateWebhookRequestFrom(*nothing).status()));
  auto bad = Parse({"webhook", "update", "w1", "--connection=c", "--ordered=maybe"});
  ASSERT_TRUE(bad.ok());
  EXPECT_NE(UpdateWebhookRequestFrom(*bad).status().message().find("--ordered must be true or false"),
            std::string::npos);
  EXPECT_FALSE(Parse({"webhook", "update", "--connection=c", "--ordered"}).ok());
  EXPECT_FALSE(Parse({"webhook", "update", "w1", "--connection=c", "--capabilities=a"}).ok());
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
