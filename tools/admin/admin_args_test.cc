#include "tools/admin/admin_args.h"
#include "tools/admin/token_flag.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace octo::admin {
namespace {

constexpr char kDefaultTarget[] = "127.0.0.1:50051";

absl::StatusOr<AdminInvocation> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "octo-admin");
  return ParseAdminArgs(args, kDefaultTarget);
}

// The usage error message, or "" when parsing succeeded.
std::string ErrorOf(std::vector<std::string> args) {
  absl::StatusOr<AdminInvocation> inv = Parse(std::move(args));
  if (inv.ok()) return "";
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(inv.status().message());
}

TEST(AdminArgsTest, TokenFileFlagInEitherFormWherever) {
  using V = std::vector<std::string>;
  V args = {"--token_file", "/t/admin", "supplier", "list"};
  EXPECT_EQ(admin::TakeTokenFileFlag(args, "/env"), "/t/admin");
  EXPECT_EQ(args, (V{"supplier", "list"}));
  args = {"supplier", "list", "--token-file=/t/a2"};
  EXPECT_EQ(admin::TakeTokenFileFlag(args, "/env"), "/t/a2");
  EXPECT_EQ(args, (V{"supplier", "list"}));
  args = {"health"};
  EXPECT_EQ(admin::TakeTokenFileFlag(args, "/env"), "/env");
  EXPECT_EQ(args, (V{"health"}));
  args = {"health", "--token_file"};  // no value: empty, refused later naming the flag
  EXPECT_EQ(admin::TakeTokenFileFlag(args, "/env"), "");
  EXPECT_EQ(args, (V{"health"}));
  args = {"--token_files=/x", "health"};  // another flag: left to the grammar
  EXPECT_EQ(admin::TakeTokenFileFlag(args, ""), "");
  EXPECT_EQ(args.size(), 2u);
  EXPECT_NE(AdminUsage().find("--token_file=PATH"), std::string::npos);
}

TEST(AdminArgsTest, HelpAndVersion) {
  EXPECT_EQ(Parse({"--help"})->command, AdminCommand::kHelp);
  EXPECT_EQ(Parse({"-h"})->command, AdminCommand::kHelp);
  EXPECT_EQ(Parse({"help"})->command, AdminCommand::kHelp);
  // --help wins over an otherwise incomplete command.
  EXPECT_EQ(Parse({"supplier", "create", "--help"})->command, AdminCommand::kHelp);
  EXPECT_EQ(Parse({"--version"})->command, AdminCommand::kVersion);
  EXPECT_NE(AdminUsage().find("key revoke KEY_ID"), std::string::npos);
}

TEST(AdminArgsTest, NoCommandIsAUsageError) {
  EXPECT_NE(ErrorOf({}).find("no command"), std::string::npos);
}

TEST(AdminArgsTest, TargetDefaultsAndOverrides) {
  absl::StatusOr<AdminInvocation> inv = Parse({"supplier", "list"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, AdminCommand::kSupplierList);
  EXPECT_EQ(inv->target, kDefaultTarget);
  EXPECT_EQ(inv->timeout, absl::Seconds(10));
  EXPECT_EQ(inv->output, OutputFormat::kJson);

  // Global flags before or after the command words, with = or a space.
  inv = Parse({"--target=127.0.0.1:6000", "supplier", "list", "--timeout", "500ms"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->target, "127.0.0.1:6000");
  EXPECT_EQ(inv->timeout, absl::Milliseconds(500));

  inv = Parse({"supplier", "list", "--timeout=3"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->timeout, absl::Seconds(3));

  EXPECT_NE(ErrorOf({"supplier", "list", "--timeout=soon"}).find("--timeout"), std::string::npos);
  EXPECT_NE(ErrorOf({"supplier", "list", "--timeout=0"}).find("positive"), std::string::npos);
  EXPECT_NE(ErrorOf({"supplier", "list", "--target="}).find("--target"), std::string::npos);
}

TEST(AdminArgsTest, SupplierCreate) {
  absl::StatusOr<AdminInvocation> inv =
      Parse({"supplier", "create", "--name=Demo Tours", "--endpoint", "https://demo.example/octo",
             "--email=ops@demo.example", "--telephone=+44 20 0000 0000"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, AdminCommand::kSupplierCreate);
  EXPECT_EQ(inv->create_supplier.name(), "Demo Tours");
  EXPECT_EQ(inv->create_supplier.endpoint(), "https://demo.example/octo");
  EXPECT_EQ(inv->create_supplier.contact().email(), "ops@demo.example");
  EXPECT_EQ(inv->create_supplier.contact().telephone(), "+44 20 0000 0000");
  EXPECT_EQ(inv->create_supplier.contact().website(), "");

  EXPECT_NE(ErrorOf({"supplier", "create", "--name=X"}).find("--endpoint"), std::string::npos);
  EXPECT_NE(ErrorOf({"supplier", "create", "--endpoint=https://x", "--name="}).find("--name"),
            std::string::npos);
}

TEST(AdminArgsTest, SupplierGetNeedsExactlyOneId) {
  absl::StatusOr<AdminInvocation> inv = Parse({"supplier", "get", "abc"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->get_supplier.supplier_id(), "abc");
  EXPECT_NE(ErrorOf({"supplier", "get"}).find("SUPPLIER_ID"), std::string::npos);
  EXPECT_NE(ErrorOf({"supplier", "get", "a", "b"}).find("unexpected argument 'b'"),
            std::string::npos);
}

TEST(AdminArgsTest, SupplierUpdateSetsOnlyGivenFields) {
  absl::StatusOr<AdminInvocation> inv = Parse({"supplier", "update", "s1", "--email="});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, AdminCommand::kSupplierUpdate);
  EXPECT_EQ(inv->update_supplier.supplier_id(), "s1");
  EXPECT_FALSE(inv->update_supplier.has_name());
  EXPECT_FALSE(inv->update_supplier.has_endpoint());
  EXPECT_TRUE(inv->update_supplier.has_contact());
  // An empty value clears the field: it is recorded as given.
  EXPECT_EQ(inv->update_contact_fields, std::set<std::string>{"email"});

  inv = Parse({"supplier", "update", "s1", "--name", "New name"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->update_supplier.name(), "New name");
  EXPECT_FALSE(inv->update_supplier.has_contact());
  EXPECT_TRUE(inv->update_contact_fields.empty());

  EXPECT_NE(ErrorOf({"supplier", "update", "s1"}).find("at least one"), std::string::npos);
}

TEST(AdminArgsTest, ConnectionCreateAcceptsDashOrUnderscore) {
  for (const char* flag : {"--max-webhooks=7", "--max_webhooks=7"}) {
    absl::StatusOr<AdminInvocation> inv =
        Parse({"connection", "create", "--supplier=s1", "--name=Reseller", flag});
    ASSERT_TRUE(inv.ok()) << inv.status();
    EXPECT_EQ(inv->create_connection.supplier_id(), "s1");
    EXPECT_EQ(inv->create_connection.name(), "Reseller");
    EXPECT_EQ(inv->create_connection.max_webhooks(), 7);
  }
  absl::StatusOr<AdminInvocation> inv =
      Parse({"connections", "create", "--supplier=s1", "--name=R"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->create_connection.max_webhooks(), 0);  // the service default

  for (const char* bad :
       {"--max-webhooks=-1", "--max-webhooks=many", "--max-webhooks=99999999999"}) {
    EXPECT_NE(ErrorOf({"connection", "create", "--supplier=s1", "--name=R", bad})
                  .find("non-negative integer"),
              std::string::npos)
        << bad;
  }
  EXPECT_NE(ErrorOf({"connection", "list"}).find("--supplier"), std::string::npos);
}

TEST(AdminArgsTest, Keys) {
  absl::StatusOr<AdminInvocation> inv =
      Parse({"key", "create", "--connection=c1", "--name=ci", "--output=key"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, AdminCommand::kKeyCreate);
  EXPECT_EQ(inv->create_api_key.connection_id(), "c1");
  EXPECT_EQ(inv->create_api_key.name(), "ci");
  EXPECT_EQ(inv->output, OutputFormat::kKey);

  inv = Parse({"keys", "list", "--connection", "c1", "--output=id"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, AdminCommand::kKeyList);
  EXPECT_EQ(inv->list_api_keys.connection_id(), "c1");
  EXPECT_EQ(inv->output, OutputFormat::kId);

  inv = Parse({"key", "revoke", "k1"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->revoke_api_key.api_key_id(), "k1");

  // --output=key only makes sense where there is a key.
  EXPECT_NE(ErrorOf({"key", "list", "--connection=c1", "--output=key"}).find("--output"),
            std::string::npos);
}

TEST(AdminArgsTest, Health) {
  absl::StatusOr<AdminInvocation> inv = Parse({"health"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, AdminCommand::kHealth);
  EXPECT_EQ(inv->health.service(), "");
  inv = Parse({"health", "--service=octo.webhooks.v1.AdminService"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->health.service(), "octo.webhooks.v1.AdminService");
}

TEST(AdminArgsTest, UsageErrors) {
  EXPECT_NE(ErrorOf({"frobnicate"}).find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_NE(ErrorOf({"supplier"}).find("create, list, get, update"), std::string::npos);
  EXPECT_NE(ErrorOf({"supplier", "delete", "x"}).find("unknown command 'supplier delete'"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"supplier", "list", "--name=x"}).find("unknown flag --name"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"supplier", "list", "-v"}).find("unknown flag -v"), std::string::npos);
  EXPECT_NE(ErrorOf({"key", "create", "--connection"}).find("needs a value"), std::string::npos);
  EXPECT_NE(ErrorOf({"key", "list", "--connection=a", "--connection=b"}).find("more than once"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"supplier", "list", "--help=yes"}).find("takes no value"), std::string::npos);
}

TEST(AdminArgsTest, DoubleDashEndsFlags) {
  // An id that starts with '-' can be passed after "--".
  absl::StatusOr<AdminInvocation> inv = Parse({"key", "revoke", "--", "-odd-id"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->revoke_api_key.api_key_id(), "-odd-id");
}

}  // namespace
}  // namespace octo::admin
