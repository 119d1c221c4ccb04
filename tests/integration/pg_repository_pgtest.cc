// PgRepository against a real PostgreSQL (OCTO_TEST_PG).
#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "services/common/crypto.h"
#include "tests/integration/pg_fixture.h"

namespace octo::testing {
namespace {

using ::octo::subscription::ApiKeyRecord;
using ::octo::subscription::ConnectionRecord;
using ::octo::subscription::ContactRecord;
using ::octo::subscription::DecodePageToken;
using ::octo::subscription::EncodePageToken;
using ::octo::subscription::NewApiKey;
using ::octo::subscription::NewSupplier;
using ::octo::subscription::NewWebhook;
using ::octo::subscription::SupplierPatch;
using ::octo::subscription::SupplierRecord;
using ::octo::subscription::WebhookPage;
using ::octo::subscription::WebhookPatch;
using ::octo::subscription::WebhookRecord;
using ::octo::subscription::WebhookStatus;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kMissingUuid[] = "00000000-0000-4000-8000-000000000000";

WebhookPatch UrlPatch(std::string url) {
  WebhookPatch p;
  p.url = std::move(url);
  return p;
}

WebhookPatch EventPatch(std::string event) {
  WebhookPatch p;
  p.event = std::move(event);
  return p;
}

WebhookPatch HeadersPatch(std::map<std::string, std::string> headers) {
  WebhookPatch p;
  p.headers = std::move(headers);
  return p;
}

class RepositoryTest : public PgRepositoryTest {
 protected:
  std::string MakeSupplier(const std::string& name = "Edinburgh Tours") {
    auto s = repo_->CreateSupplier(NewSupplier{name, "https://octo.example.com/v1", {}});
    EXPECT_THAT(s, IsOk());
    return s.ok() ? s->id : "";
  }

  std::string MakeConnection(int max_webhooks = 100, const std::string& name = "Viator") {
    const std::string supplier = MakeSupplier();
    auto c = repo_->CreateConnection(supplier, name, max_webhooks);
    EXPECT_THAT(c, IsOk());
    return c.ok() ? c->id : "";
  }

  static NewWebhook Webhook(const std::string& connection_id,
                            const std::string& url = "https://hooks.example.com/a") {
    NewWebhook w;
    w.connection_id = connection_id;
    w.event = "booking_update";
    w.url = url;
    w.secret = crypto::NewSigningSecret();
    return w;
  }
};

// ------------------------------------------------------------- suppliers --

TEST_F(RepositoryTest, SupplierCreateGetListUpdate) {
  ContactRecord contact{"https://tours.example.com", "ops@tours.example.com", "+44 131 000 0000",
                        "1 Royal Mile\nEdinburgh"};
  auto created =
      repo_->CreateSupplier(NewSupplier{"Edinburgh Tours", "https://octo.example.com/v1", contact});
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created->name, "Edinburgh Tours");
  EXPECT_EQ(created->contact.address, "1 Royal Mile\nEdinburgh");
  EXPECT_EQ(created->create_time, created->update_time);

  auto got = repo_->GetSupplier(created->id);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->endpoint, "https://octo.example.com/v1");
  EXPECT_EQ(got->contact.email, "ops@tours.example.com");
  EXPECT_EQ(got->contact.telephone, "+44 131 000 0000");
  EXPECT_EQ(got->contact.website, "https://tours.example.com");

  auto second = repo_->CreateSupplier(NewSupplier{"Second", "http://second.example.com", {}});
  ASSERT_THAT(second, IsOk());
  auto list = repo_->ListSuppliers();
  ASSERT_THAT(list, IsOk());
  ASSERT_THAT(*list, SizeIs(2));
  EXPECT_EQ((*list)[0].id, created->id);  // oldest first
  EXPECT_EQ((*list)[1].id, second->id);

  SupplierPatch rename;
  rename.name = "Edinburgh Tours Ltd";
  auto renamed = repo_->UpdateSupplier(created->id, rename);
  ASSERT_THAT(renamed, IsOk());
  EXPECT_EQ(renamed->name, "Edinburgh Tours Ltd");
  EXPECT_EQ(renamed->endpoint, "https://octo.example.com/v1");  // unset: kept
  EXPECT_EQ(renamed->contact.email, "ops@tours.example.com");
  EXPECT_GE(renamed->update_time, created->update_time);

  SupplierPatch recontact;
  recontact.contact = ContactRecord{"", "new@tours.example.com", "", ""};
  auto updated = repo_->UpdateSupplier(created->id, recontact);
  ASSERT_THAT(updated, IsOk());
  EXPECT_EQ(updated->contact.email, "new@tours.example.com");
  EXPECT_EQ(updated->contact.website, "");  // the contact is replaced whole
  EXPECT_EQ(updated->name, "Edinburgh Tours Ltd");
}

TEST_F(RepositoryTest, SupplierMissingOrMalformedIdIsNotFound) {
  EXPECT_THAT(repo_->GetSupplier(kMissingUuid), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(repo_->GetSupplier("not-a-uuid"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(repo_->UpdateSupplier(kMissingUuid, SupplierPatch{}),
              StatusIs(absl::StatusCode::kNotFound));
}

// ----------------------------------------------------------- connections --

TEST_F(RepositoryTest, ConnectionCreateListAndRules) {
  const std::string supplier = MakeSupplier();
  auto a = repo_->CreateConnection(supplier, "Viator", 10);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->supplier_id, supplier);
  EXPECT_EQ(a->max_webhooks, 10);
  auto b = repo_->CreateConnection(supplier, "GetYourGuide", 20);
  ASSERT_THAT(b, IsOk());

  EXPECT_THAT(repo_->CreateConnection(supplier, "Viator", 10),
              StatusIs(absl::StatusCode::kAlreadyExists, StartsWith("name:")));
  EXPECT_THAT(repo_->CreateConnection(kMissingUuid, "Viator", 10),
              StatusIs(absl::StatusCode::kNotFound, StartsWith("supplierId:")));

  auto list = repo_->ListConnections(supplier);
  ASSERT_THAT(list, IsOk());
  ASSERT_THAT(*list, SizeIs(2));
  EXPECT_EQ((*list)[0].id, a->id);
  EXPECT_EQ((*list)[1].id, b->id);
  EXPECT_THAT(repo_->ListConnections(kMissingUuid), StatusIs(absl::StatusCode::kNotFound));

  auto got = repo_->GetConnection(a->id);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->name, "Viator");
  // Another supplier's list does not show them.
  auto other = repo_->ListConnections(MakeSupplier("Other"));
  ASSERT_THAT(other, IsOk());
  EXPECT_THAT(*other, IsEmpty());
}

// -------------------------------------------------------------- API keys --

TEST_F(RepositoryTest, ApiKeyLifecycleAndAuthentication) {
  const std::string connection = MakeConnection();
  const std::string key = crypto::NewApiKey();
  auto created =
      repo_->CreateApiKey(NewApiKey{connection, "ci", key.substr(0, 12), crypto::Sha256(key)});
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created->prefix, key.substr(0, 12));
  EXPECT_FALSE(created->revoke_time.has_value());

  auto owner = repo_->AuthenticateKeyHash(crypto::Sha256(key));
  ASSERT_THAT(owner, IsOk());
  EXPECT_EQ(owner->api_key_id, created->id);
  EXPECT_EQ(owner->connection_id, connection);
  auto conn = repo_->GetConnection(connection);
  ASSERT_THAT(conn, IsOk());
  EXPECT_EQ(owner->supplier_id, conn->supplier_id);

  // Only the hash is stored.
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM api_keys WHERE key_hash = decode('",
                               crypto::HexEncode(crypto::Sha256(key)), "', 'hex')")),
            1);
  {
    auto raw = Raw();
    pqxx::work txn(*raw);
    const auto row = txn.exec1("SELECT row_to_json(k)::text FROM api_keys k");
    EXPECT_THAT(row[0].as<std::string>(), Not(HasSubstr(key.substr(12))));
  }

  auto revoked = repo_->RevokeApiKey(created->id);
  ASSERT_THAT(revoked, IsOk());
  ASSERT_TRUE(revoked->revoke_time.has_value());
  auto again = repo_->RevokeApiKey(created->id);  // idempotent, time kept
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->revoke_time, revoked->revoke_time);

  EXPECT_THAT(repo_->AuthenticateKeyHash(crypto::Sha256(key)),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(repo_->AuthenticateKeyHash(crypto::Sha256("octo_unknown")),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(repo_->AuthenticateKeyHash("short"), StatusIs(absl::StatusCode::kUnauthenticated));

  auto list = repo_->ListApiKeys(connection);
  ASSERT_THAT(list, IsOk());
  ASSERT_THAT(*list, SizeIs(1));
  EXPECT_TRUE((*list)[0].revoke_time.has_value());

  EXPECT_THAT(repo_->RevokeApiKey(kMissingUuid), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(repo_->ListApiKeys(kMissingUuid), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(
      repo_->CreateApiKey(NewApiKey{kMissingUuid, "x", "octo_abcdefg", crypto::Sha256("k")}),
      StatusIs(absl::StatusCode::kNotFound, StartsWith("connectionId:")));
}

// -------------------------------------------------------------- webhooks --

TEST_F(RepositoryTest, WebhookRoundTripsEveryField) {
  const std::string connection = MakeConnection();
  NewWebhook w = Webhook(connection, "https://user:pa%40ss@hooks.example.com/octo?x=1");
  w.event = "availability_update";
  w.retry_on_error = false;
  w.use_contact_language = false;
  w.headers = {{"X-Api-Token", "s3cr3t \"quoted\" \\ value"}, {"X-Tenant", "ü-unicode"}};
  w.capabilities = {"octo/pricing", "octo/content"};

  auto created = repo_->CreateWebhook(w);
  ASSERT_THAT(created, IsOk());
  EXPECT_THAT(created->id, SizeIs(36));
  EXPECT_EQ(created->status, WebhookStatus::kEnabled);
  EXPECT_EQ(created->secret, w.secret);

  auto got = repo_->GetWebhook(connection, created->id);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->connection_id, connection);
  EXPECT_EQ(got->event, "availability_update");
  EXPECT_EQ(got->url, w.url);  // the repository stores and returns it unmasked
  EXPECT_FALSE(got->retry_on_error);
  EXPECT_FALSE(got->use_contact_language);
  EXPECT_EQ(got->headers, w.headers);
  EXPECT_THAT(got->capabilities, ElementsAre("octo/pricing", "octo/content"));
  EXPECT_EQ(got->secret, w.secret);
  EXPECT_EQ(got->create_time, created->create_time);
  EXPECT_FALSE(got->disable_time.has_value());
}

TEST_F(RepositoryTest, WebhookColumnDefaultsAreTrue) {
  const std::string connection = MakeConnection();
  auto raw = Raw();
  pqxx::work txn(*raw);
  const auto row = txn.exec_params1(
      "INSERT INTO webhooks (connection_id, event, url, secret) VALUES ($1, 'order_update', "
      "'https://a.example', $2) "
      "RETURNING retry_on_error, use_contact_language, headers::text, capabilities::text, status",
      connection, crypto::NewSigningSecret());
  EXPECT_TRUE(row[0].as<bool>());
  EXPECT_TRUE(row[1].as<bool>());
  EXPECT_EQ(row[2].as<std::string>(), "{}");
  EXPECT_EQ(row[3].as<std::string>(), "[]");
  EXPECT_EQ(row[4].as<std::string>(), "enabled");
}

TEST_F(RepositoryTest, NonUuidWebhookIdIsNotFoundWithoutTouchingTheDatabase) {
  const std::string connection = MakeConnection();
  // Hold every pooled connection: a repository call that needed the database
  // would wait for the pool and fail UNAVAILABLE instead.
  std::vector<PgPool::Lease> held;
  for (int i = 0; i < PoolSize(); ++i) {
    auto lease = pool_->Acquire();
    ASSERT_THAT(lease.status(), IsOk());
    held.push_back(*std::move(lease));
  }
  const auto start = std::chrono::steady_clock::now();
  for (const char* id : {"", "1", "not-a-uuid", "00000000-0000-4000-8000-00000000000g",
                         "'; DROP TABLE webhooks; --"}) {
    SCOPED_TRACE(id);
    EXPECT_THAT(repo_->GetWebhook(connection, id), StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(repo_->UpdateWebhook(connection, id, UrlPatch("https://x.example")),
                StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(repo_->DeleteWebhook(connection, id), StatusIs(absl::StatusCode::kNotFound));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(RepositoryTest, MissingWebhookIsNotFound) {
  const std::string connection = MakeConnection();
  EXPECT_THAT(repo_->GetWebhook(connection, kMissingUuid),
              StatusIs(absl::StatusCode::kNotFound, StartsWith("webhookId:")));
  EXPECT_THAT(repo_->DeleteWebhook(connection, kMissingUuid),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(repo_->UpdateWebhook(connection, kMissingUuid, EventPatch("order_update")),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(repo_->CreateWebhook(Webhook(kMissingUuid)),
              StatusIs(absl::StatusCode::kNotFound, StartsWith("connectionId:")));
}

TEST_F(RepositoryTest, AnotherConnectionsWebhookAnswersExactlyLikeAMissingOne) {
  const std::string mine = MakeConnection(100, "mine");
  const std::string theirs = MakeConnection(100, "theirs");
  auto webhook = repo_->CreateWebhook(Webhook(theirs));
  ASSERT_THAT(webhook, IsOk());

  const absl::Status missing = repo_->GetWebhook(mine, kMissingUuid).status();
  const absl::Status foreign = repo_->GetWebhook(mine, webhook->id).status();
  EXPECT_THAT(foreign, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(foreign, missing);
  EXPECT_EQ(repo_->UpdateWebhook(mine, webhook->id, UrlPatch("https://evil.example")).status(),
            repo_->UpdateWebhook(mine, kMissingUuid, UrlPatch("https://evil.example")).status());
  EXPECT_EQ(repo_->DeleteWebhook(mine, webhook->id).status(),
            repo_->DeleteWebhook(mine, kMissingUuid).status());

  auto list = repo_->ListWebhooks(mine, 100, "");
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(list->webhooks, IsEmpty());

  // Untouched by the other connection's attempts.
  auto still = repo_->GetWebhook(theirs, webhook->id);
  ASSERT_THAT(still, IsOk());
  EXPECT_EQ(still->url, "https://hooks.example.com/a");
  EXPECT_EQ(still->update_time, webhook->update_time);
}

std::vector<std::string> Ids(const std::vector<WebhookRecord>& webhooks) {
  std::vector<std::string> ids;
  for (const auto& w : webhooks) ids.push_back(w.id);
  return ids;
}

TEST_F(RepositoryTest, ListPaginatesOldestFirstWithOpaqueTokens) {
  const std::string connection = MakeConnection();
  const std::string other = MakeConnection(100, "other");
  std::vector<std::string> created;
  for (int i = 0; i < 7; ++i) {
    auto w =
        repo_->CreateWebhook(Webhook(connection, absl::StrCat("https://hooks.example.com/", i)));
    ASSERT_THAT(w, IsOk());
    created.push_back(w->id);
    ASSERT_THAT(repo_->CreateWebhook(Webhook(other)), IsOk());  // interleaved noise
  }

  std::vector<std::string> seen;
  std::string token;
  std::vector<std::size_t> page_sizes;
  do {
    auto page = repo_->ListWebhooks(connection, 3, token);
    ASSERT_THAT(page, IsOk());
    page_sizes.push_back(page->webhooks.size());
    for (const auto& w : page->webhooks) {
      EXPECT_EQ(w.connection_id, connection);
      seen.push_back(w.id);
    }
    token = page->next_page_token;
  } while (!token.empty() && page_sizes.size() < 10);
  EXPECT_THAT(page_sizes, ElementsAre(3, 3, 1));
  EXPECT_EQ(seen, created);

  // An exact multiple of the page size ends without an empty extra page.
  auto six = repo_->ListWebhooks(connection, 7, "");
  ASSERT_THAT(six, IsOk());
  EXPECT_THAT(six->webhooks, SizeIs(7));
  EXPECT_EQ(six->next_page_token, "");

  auto all = repo_->ListWebhooks(connection, 1000, "");
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(Ids(all->webhooks), created);
}

TEST_F(RepositoryTest, PaginationContinuesAfterTheLastSeenWebhookIsDeleted) {
  const std::string connection = MakeConnection();
  std::vector<std::string> created;
  for (int i = 0; i < 4; ++i) {
    auto w = repo_->CreateWebhook(Webhook(connection));
    ASSERT_THAT(w, IsOk());
    created.push_back(w->id);
  }
  auto first = repo_->ListWebhooks(connection, 2, "");
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(repo_->DeleteWebhook(connection, first->webhooks.back().id), IsOk());
  auto second = repo_->ListWebhooks(connection, 2, first->next_page_token);
  ASSERT_THAT(second, IsOk());
  EXPECT_THAT(Ids(second->webhooks), ElementsAre(created[2], created[3]));
}

TEST_F(RepositoryTest, BadPageTokensAreInvalidArgument) {
  const std::string connection = MakeConnection();
  auto w = repo_->CreateWebhook(Webhook(connection));
  ASSERT_THAT(w, IsOk());
  const std::string good = EncodePageToken({absl::ToUnixMicros(w->create_time), w->id});
  ASSERT_THAT(DecodePageToken(good), IsOk());
  EXPECT_EQ(DecodePageToken(good)->id, w->id);

  std::string tampered = good;
  tampered[0] = tampered[0] == 'A' ? 'B' : 'A';  // the version byte
  for (const std::string& token : {std::string("garbage!"), std::string("AAAA"), tampered,
                                   good + "AA", std::string(100, 'A'), std::string("%%%")}) {
    SCOPED_TRACE(token);
    EXPECT_THAT(repo_->ListWebhooks(connection, 10, token),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("pageToken:")));
  }
  EXPECT_THAT(repo_->ListWebhooks(connection, 0, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(repo_->ListWebhooks(connection, 1001, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RepositoryTest, UpdateChangesOnlyTheGivenFields) {
  const std::string connection = MakeConnection();
  NewWebhook w = Webhook(connection);
  w.headers = {{"X-A", "1"}, {"X-B", "2"}};
  w.capabilities = {"octo/pricing"};
  auto created = repo_->CreateWebhook(w);
  ASSERT_THAT(created, IsOk());

  auto same = repo_->UpdateWebhook(connection, created->id, WebhookPatch{});
  ASSERT_THAT(same, IsOk());
  EXPECT_EQ(same->update_time, created->update_time);

  WebhookPatch move = UrlPatch("https://new.example.com/hook");
  move.retry_on_error = false;
  auto moved = repo_->UpdateWebhook(connection, created->id, move);
  ASSERT_THAT(moved, IsOk());
  EXPECT_EQ(moved->url, "https://new.example.com/hook");
  EXPECT_FALSE(moved->retry_on_error);
  EXPECT_EQ(moved->event, "booking_update");
  EXPECT_TRUE(moved->use_contact_language);
  EXPECT_EQ(moved->headers, w.headers);
  EXPECT_EQ(moved->secret, w.secret);
  EXPECT_EQ(moved->create_time, created->create_time);
  EXPECT_GT(moved->update_time, created->update_time);

  WebhookPatch reheader = HeadersPatch({{"X-C", "3"}});
  reheader.event = "product_update";
  reheader.use_contact_language = false;
  auto reheadered = repo_->UpdateWebhook(connection, created->id, reheader);
  ASSERT_THAT(reheadered, IsOk());
  EXPECT_EQ(reheadered->event, "product_update");
  EXPECT_FALSE(reheadered->use_contact_language);
  EXPECT_FALSE(reheadered->retry_on_error);  // kept from the previous update
  EXPECT_EQ(reheadered->headers, (std::map<std::string, std::string>{{"X-C", "3"}}));
  EXPECT_THAT(reheadered->capabilities, ElementsAre("octo/pricing"));

  auto cleared = repo_->UpdateWebhook(connection, created->id, HeadersPatch({}));
  ASSERT_THAT(cleared, IsOk());
  EXPECT_THAT(cleared->headers, IsEmpty());

  // The schema has the last word on values that slipped past validation.
  EXPECT_THAT(repo_->UpdateWebhook(connection, created->id, EventPatch("not_an_event")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(repo_->UpdateWebhook(connection, created->id, UrlPatch("ftp://x.example")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RepositoryTest, DeleteAnswersWithTheDeletedWebhook) {
  const std::string connection = MakeConnection();
  auto created = repo_->CreateWebhook(Webhook(connection));
  ASSERT_THAT(created, IsOk());
  auto deleted = repo_->DeleteWebhook(connection, created->id);
  ASSERT_THAT(deleted, IsOk());
  EXPECT_EQ(deleted->id, created->id);
  EXPECT_EQ(deleted->url, created->url);
  EXPECT_THAT(repo_->GetWebhook(connection, created->id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(repo_->DeleteWebhook(connection, created->id), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RepositoryTest, DeletingAConnectionCascades) {
  const std::string connection = MakeConnection();
  ASSERT_THAT(repo_->CreateWebhook(Webhook(connection)), IsOk());
  ASSERT_THAT(repo_->CreateApiKey(NewApiKey{connection, "k", "octo_abcdefg", crypto::Sha256("k")}),
              IsOk());
  {
    auto raw = Raw();
    pqxx::work txn(*raw);
    txn.exec_params("DELETE FROM connections WHERE id = $1", connection);
    txn.commit();
  }
  EXPECT_EQ(Count("SELECT count(*) FROM webhooks"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM api_keys"), 0);
}

// ------------------------------------------------------------------- cap --

TEST_F(RepositoryTest, CapIsEnforcedPerConnection) {
  const std::string small = MakeConnection(3, "small");
  const std::string other = MakeConnection(3, "other");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto w = repo_->CreateWebhook(Webhook(small));
    ASSERT_THAT(w, IsOk());
    ids.push_back(w->id);
  }
  EXPECT_THAT(repo_->CreateWebhook(Webhook(small)), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(repo_->CreateWebhook(Webhook(other)), IsOk());  // its own budget

  // Updates of a webhook at the cap are not inserts.
  EXPECT_THAT(repo_->UpdateWebhook(small, ids[0], EventPatch("order_update")), IsOk());

  ASSERT_THAT(repo_->DeleteWebhook(small, ids[0]), IsOk());
  EXPECT_THAT(repo_->CreateWebhook(Webhook(small)), IsOk());
  EXPECT_EQ(
      Count(absl::StrCat("SELECT count(*) FROM webhooks WHERE connection_id = '", small, "'")), 3);
}

TEST_F(RepositoryTest, CapIsEnforcedByTheDatabaseForRawInserts) {
  const std::string connection = MakeConnection(1);
  auto raw = Raw();
  const std::string insert =
      "INSERT INTO webhooks (connection_id, event, url, secret) VALUES ($1, 'order_update', "
      "'https://a.example', $2)";
  {
    pqxx::work txn(*raw);
    txn.exec_params(insert, connection, crypto::NewSigningSecret());
    txn.commit();
  }
  pqxx::work txn(*raw);
  try {
    txn.exec_params(insert, connection, crypto::NewSigningSecret());
    ADD_FAILURE() << "second insert past the cap succeeded";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "OW001");
  }
}

class RepositoryConcurrencyTest : public RepositoryTest {
 protected:
  int PoolSize() const override { return 8; }
};

TEST_F(RepositoryConcurrencyTest, ConcurrentCreatesNeverOvershootTheCap) {
  constexpr int kCap = 5;
  constexpr int kThreads = 8;
  constexpr int kAttemptsPerThread = 4;
  const std::string connection = MakeConnection(kCap);
  std::atomic<int> ok{0};
  std::atomic<int> exhausted{0};
  std::atomic<int> other{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kAttemptsPerThread; ++i) {
        const absl::Status s = repo_->CreateWebhook(Webhook(connection)).status();
        if (s.ok()) {
          ++ok;
        } else if (s.code() == absl::StatusCode::kResourceExhausted) {
          ++exhausted;
        } else {
          ++other;
        }
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kCap);
  EXPECT_EQ(exhausted.load(), kThreads * kAttemptsPerThread - kCap);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM webhooks"), kCap);
}

// Two connections with concurrent creates under the cap: all succeed (the
// lock is per connection, not global).
TEST_F(RepositoryConcurrencyTest, ConcurrentCreatesBelowTheCapAllSucceed) {
  const std::string a = MakeConnection(100, "a");
  const std::string b = MakeConnection(100, "b");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        if (!repo_->CreateWebhook(Webhook(t % 2 == 0 ? a : b)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM webhooks"), 30);
}

// -------------------------------------------------- constraints (raw SQL) --

struct BadRow {
  const char* name;
  const char* sql;       // $1 = a connection id, $2 = its supplier id
  const char* sqlstate;  // expected
};

class ConstraintTest : public RepositoryTest, public ::testing::WithParamInterface<BadRow> {};

constexpr char kSecret[] = "'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='";

#define OCTO_WEBHOOK_INSERT(columns, values)                                                      \
  "INSERT INTO webhooks (connection_id, event, url, secret" columns ") VALUES ($1::uuid, " values \
  ")"

const BadRow kBadRows[] = {
    {"UnknownEvent", OCTO_WEBHOOK_INSERT("", "'booking_created', 'https://a.example', %s"),
     "23514"},
    {"EmptyUrl", OCTO_WEBHOOK_INSERT("", "'order_update', '', %s"), "23514"},
    {"FtpUrl", OCTO_WEBHOOK_INSERT("", "'order_update', 'ftp://a.example/x', %s"), "23514"},
    {"RelativeUrl", OCTO_WEBHOOK_INSERT("", "'order_update', '/hooks', %s"), "23514"},
    {"UrlWithSpace", OCTO_WEBHOOK_INSERT("", "'order_update', 'https://a.example/a b', %s"),
     "23514"},
    {"UrlTooLong",
     OCTO_WEBHOOK_INSERT("", "'order_update', 'https://a.example/' || repeat('x', 2048), %s"),
     "23514"},
    {"SecretWithoutPrefix",
     OCTO_WEBHOOK_INSERT("", "'order_update', 'https://a.example', 'plain-secret'"), "23514"},
    {"HeadersNotAnObject",
     OCTO_WEBHOOK_INSERT(", headers", "'order_update', 'https://a.example', %s, '[\"X-A\"]'"),
     "23514"},
    {"HeaderValueNotAString",
     OCTO_WEBHOOK_INSERT(", headers", "'order_update', 'https://a.example', %s, '{\"X-A\": 1}'"),
     "23514"},
    {"CapabilitiesNotAnArray",
     OCTO_WEBHOOK_INSERT(", capabilities", "'order_update', 'https://a.example', %s, '{}'"),
     "23514"},
    {"CapabilityNotAString",
     OCTO_WEBHOOK_INSERT(", capabilities", "'order_update', 'https://a.example', %s, '[1]'"),
     "23514"},
    {"UnknownStatus",
     OCTO_WEBHOOK_INSERT(", status", "'order_update', 'https://a.example', %s, 'paused'"), "23514"},
    {"DisabledWithoutTime",
     OCTO_WEBHOOK_INSERT(", status", "'order_update', 'https://a.example', %s, 'disabled'"),
     "23514"},
    {"NullEvent", OCTO_WEBHOOK_INSERT("", "NULL, 'https://a.example', %s"), "23502"},
    {"WebhookOfMissingConnection",
     "INSERT INTO webhooks (connection_id, event, url, secret) VALUES "
     "('00000000-0000-4000-8000-000000000000', 'order_update', 'https://a.example', %s)",
     "23503"},
    {"ApiKeyHashNot32Bytes",
     "INSERT INTO api_keys (connection_id, prefix, key_hash) VALUES ($1::uuid, 'octo_abc', "
     "'\\x0102')",
     "23514"},
    {"ApiKeyDuplicateHash",
     "INSERT INTO api_keys (connection_id, prefix, key_hash) VALUES "
     "($1::uuid, 'octo_a', decode(repeat('ab', 32), 'hex')), ($1::uuid, 'octo_b', "
     "decode(repeat('ab', 32), 'hex'))",
     "23505"},
    {"ApiKeyEmptyPrefix",
     "INSERT INTO api_keys (connection_id, prefix, key_hash) VALUES ($1::uuid, '', "
     "decode(repeat('ab', 32), 'hex'))",
     "23514"},
    {"ConnectionZeroCap",
     "INSERT INTO connections (supplier_id, name, max_webhooks) VALUES ($2::uuid, 'zero', 0)",
     "23514"},
    {"ConnectionEmptyName",
     "INSERT INTO connections (supplier_id, name, max_webhooks) VALUES ($2::uuid, '', 10)",
     "23514"},
    {"ConnectionDuplicateName",
     "INSERT INTO connections (supplier_id, name, max_webhooks) VALUES ($2::uuid, 'Viator', 10)",
     "23505"},
    {"SupplierEmptyName", "INSERT INTO suppliers (name, endpoint) VALUES ('', 'https://a.example')",
     "23514"},
    {"SupplierEndpointNotHttp",
     "INSERT INTO suppliers (name, endpoint) VALUES ('s', 'mailto:a@b.c')", "23514"},
    {"SupplierContactUnknownKey",
     "INSERT INTO suppliers (name, endpoint, contact) VALUES ('s', 'https://a.example', '{\"fax\": "
     "\"1\"}')",
     "23514"},
    {"SupplierContactNotAString",
     "INSERT INTO suppliers (name, endpoint, contact) VALUES ('s', 'https://a.example', "
     "'{\"email\": 1}')",
     "23514"},
};

TEST_P(ConstraintTest, DatabaseRejectsTheRow) {
  const std::string connection = MakeConnection(100, "Viator");
  auto conn = repo_->GetConnection(connection);
  ASSERT_THAT(conn, IsOk());
  std::string sql = GetParam().sql;
  if (const auto at = sql.find("%s"); at != std::string::npos) sql.replace(at, 2, kSecret);
  const bool uses_connection = sql.find("$1") != std::string::npos;
  const bool uses_supplier = sql.find("$2") != std::string::npos;

  const long long before = Count(
      "SELECT (SELECT count(*) FROM webhooks) + (SELECT count(*) FROM api_keys) + "
      "(SELECT count(*) FROM connections) + (SELECT count(*) FROM suppliers)");
  auto raw = Raw();
  pqxx::work txn(*raw);
  try {
    if (uses_connection && uses_supplier) {
      txn.exec_params(sql, connection, conn->supplier_id);
    } else if (uses_supplier) {
      sql.replace(sql.find("$2"), 2, "$1");  // the only parameter
      txn.exec_params(sql, conn->supplier_id);
    } else if (uses_connection) {
      txn.exec_params(sql, connection);
    } else {
      txn.exec(sql);
    }
    txn.commit();
    ADD_FAILURE() << "the database accepted: " << sql;
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), GetParam().sqlstate) << e.what();
  }
  const long long after = Count(
      "SELECT (SELECT count(*) FROM webhooks) + (SELECT count(*) FROM api_keys) + "
      "(SELECT count(*) FROM connections) + (SELECT count(*) FROM suppliers)");
  EXPECT_EQ(after, before);
}

INSTANTIATE_TEST_SUITE_P(BadRows, ConstraintTest, ::testing::ValuesIn(kBadRows),
                         [](const ::testing::TestParamInfo<BadRow>& info) {
                           return std::string(info.param.name);
                         });

// A valid row by raw SQL passes the same constraints (the bad rows above
// fail for their one defect, not for the template).
TEST_F(RepositoryTest, ConstraintTemplateRowIsValid) {
  const std::string connection = MakeConnection();
  std::string sql = OCTO_WEBHOOK_INSERT(
      ", headers, capabilities",
      "'order_update', 'https://a.example/x?y=1', %s, '{\"X-A\": \"1\"}', '[\"octo/pricing\"]'");
  sql.replace(sql.find("%s"), 2, kSecret);
  auto raw = Raw();
  pqxx::work txn(*raw);
  EXPECT_NO_THROW(txn.exec_params(sql, connection));
}

}  // namespace
}  // namespace octo::testing
