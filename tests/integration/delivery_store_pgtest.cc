// DeliveryService.Enqueue in-process on 127.0.0.1:0 against a real
// PostgreSQL: what is stored (event, snapshot, deliveries) in one transaction,
// validation, idempotency under concurrency, computed and supplied diffs,
// connection scoping, and the schema's own constraints.
#include <functional>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/validation.h"
#include "tests/integration/delivery_fixture.h"

namespace octo::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kMissingUuid[] = "00000000-0000-4000-8000-000000000000";

// ------------------------------------------------------------- storing --

TEST_F(DeliveryTest, EnqueueStoresEventSnapshotAndOneDeliveryPerWebhook) {
  const std::string w1 = NewWebhook(connection_a_);
  const std::string w2 = NewWebhook(connection_b_);
  // Spacing and key order as the publisher wrote them: kept byte for byte.
  const std::string resource = R"({"uuid": "b-1",  "status":"ON_HOLD", "price": 1.50})";
  pb::PublishEventRequest event = Booking("key-1", resource);
  (*event.mutable_localized_resource_json())["de"] = R"({"uuid":"b-1","status":"ON_HOLD"})";
  (*event.mutable_localized_resource_json())["en-GB"] = R"({ "uuid":"b-1" })";

  pb::PublishEventResponse result;
  ASSERT_THAT(EnqueueOne(event, &result), GrpcIsOk());
  EXPECT_TRUE(IsUuid(result.event_id()));
  EXPECT_EQ(result.delivery_count(), 2);
  EXPECT_FALSE(result.duplicate());

  const std::string id = result.event_id();
  EXPECT_EQ(Text("SELECT resource::text FROM events WHERE id = '" + id + "'"), resource);
  EXPECT_EQ(Text("SELECT localized::text FROM events WHERE id = '" + id + "'"),
            R"({"de":{"uuid":"b-1","status":"ON_HOLD"},"en-GB":{ "uuid":"b-1" }})");
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE id = '" + id + "'"), "[]");
  EXPECT_EQ(Text("SELECT concat_ws('|', supplier_id, idempotency_key, connection_id, event, "
                 "resource_kind, resource_key, diff_supplied::text, product_id, option_id, "
                 "delivery_count, (occurred_at = '2026-01-02T03:04:05Z')::text) FROM events"),
            absl::StrCat(supplier_id_, "|key-1|booking_update|booking|b-1|false|2|true"));
  EXPECT_EQ(Text("SELECT resource::text FROM resource_snapshots WHERE resource_key = 'b-1'"),
            resource);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries WHERE event_id = '" + id +
                  "' AND state = 'pending' AND attempt_count = 0 AND next_attempt_at <= now() "
                  "AND lease_expires_at IS NULL AND completed_at IS NULL"),
            2);
  EXPECT_EQ(
      Count("SELECT count(*) FROM deliveries WHERE webhook_id IN ('" + w1 + "', '" + w2 + "')"), 2);
}

// The JSON documents travel to PostgreSQL as text[] elements beside the
// recordset of the other fields (enqueue_recordset.h, JsonArray): every
// character the array literal quotes or escapes ("{},\ and spaces), JSON
// escapes, non-ASCII text and the text "NULL" come back byte for byte, and
// each event of a batch keeps its own documents and its snapshot its own.
TEST_F(DeliveryTest, DocumentsAreStoredByteForByteWhateverTheyHold) {
  NewWebhook(connection_a_);
  const std::vector<std::string> resources = {
      R"({"uuid":"b-1", "note":"a \"quoted\" {brace}, \\ back\\slash","x":"NULL"})",
      R"({"uuid":"b-2","text":"caf\u00e9 \n \t","raw":"café ✓ 😀","e":[{},[],null]})",
      R"({ "uuid" : "b-3" , "s":"\\\"" })",
  };
  pb::EnqueueRequest request;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    pb::PublishEventRequest e = Booking(absl::StrCat("doc-", i), resources[i]);
    (*e.mutable_localized_resource_json())["de"] =
        absl::StrCat(R"({"uuid":"b-)", i + 1, R"(","note":"\"de\" {,}"})");
    *request.add_events() = ToEnqueue(e);
  }
  // A supplied diff with the same characters, on the last event.
  const std::string diff = R"([{"op":"replace","path":"/s","value":"\\\"{,}","was":"NULL"}])";
  *request.mutable_events(2) = [&] {
    pb::PublishEventRequest e = Booking("doc-2", resources[2]);
    e.set_diff_json(diff);
    return ToEnqueue(e);
  }();
  pb::EnqueueResponse response;
  ASSERT_THAT(Enqueue(request, &response), GrpcIsOk());
  ASSERT_THAT(response.results(), SizeIs(3));
  for (std::size_t i = 0; i < resources.size(); ++i) {
    const std::string id = response.results(static_cast<int>(i)).event_id();
    const std::string key = absl::StrCat("b-", i + 1);
    EXPECT_EQ(Text("SELECT resource::text FROM events WHERE id = '" + id + "'"), resources[i]);
    EXPECT_EQ(Text("SELECT resource::text FROM resource_snapshots WHERE resource_key = '" + key +
                   "'"),
              resources[i]);
    if (i < 2) {
      EXPECT_EQ(Text("SELECT localized::text FROM events WHERE id = '" + id + "'"),
                absl::StrCat(R"({"de":{"uuid":")", key, R"(","note":"\"de\" {,}"}})"));
      EXPECT_EQ(Text("SELECT diff::text FROM events WHERE id = '" + id + "'"), "[]");
    }
  }
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'doc-2'"), diff);
}

// Event and delivery ids are time-ordered (UUID version 7, migration 0015):
// the milliseconds of their creation first, so that new rows append to the
// right edge of the id indexes whatever the size of the history.
TEST_F(DeliveryTest, EventAndDeliveryIdsAreVersion7AndSortByCreationTime) {
  NewWebhook(connection_a_);
  std::vector<std::string> events;
  for (int i = 0; i < 3; ++i) {
    pb::PublishEventResponse result;
    ASSERT_THAT(EnqueueOne(Booking(absl::StrCat("v7-", i), R"({"uuid":"b-v7"})"), &result), GrpcIsOk());
    events.push_back(result.event_id());
    absl::SleepFor(absl::Milliseconds(3));
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i][14], '7') << events[i];
    if (i > 0) {
      EXPECT_LT(events[i - 1], events[i]);
    }
  }
  // Delivery ids come from the column default; the ids' first 48 bits are
  // the creation time's milliseconds (within the transaction's span).
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries WHERE substr(id::text, 15, 1) <> '7'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id"
                  " WHERE ('x' || lpad(replace(left(d.id::text, 13), '-', ''), 16, '0'))::bit(64)::bigint"
                  "   BETWEEN floor(extract(epoch FROM d.created_at) * 1000) - 5"
                  "       AND floor(extract(epoch FROM d.created_at) * 1000) + 5000"
                  "   AND ('x' || lpad(replace(left(e.id::text, 13), '-', ''), 16, '0'))::bit(64)::bigint"
                  "   BETWEEN floor(extract(epoch FROM e.created_at) * 1000) - 5000"
                  "       AND floor(extract(epoch FROM e.created_at) * 1000) + 5000"),
            3);
  EXPECT_EQ(Count("SELECT count(*) FROM (SELECT id FROM deliveries ORDER BY created_at) d"
                  " WHERE substr(id::text, 20, 1) NOT IN ('8', '9', 'a', 'b')"),
            0);
  // The SQL generator: version 7, RFC variant, distinct, increasing with time.
  EXPECT_EQ(Count("SELECT count(DISTINCT u) FROM (SELECT octo_uuid_v7() AS u FROM generate_series(1, 1000)) s"
                  " WHERE substr(u::text, 15, 1) = '7' AND substr(u::text, 20, 1) IN ('8', '9', 'a', 'b')"),
            1000);
  EXPECT_EQ(Count("SELECT count(*) FROM (SELECT octo_uuid_v7() AS a, pg_sleep(0.002), octo_uuid_v7() AS b) s"
                  " WHERE a < b"),
            1);
}

TEST_F(DeliveryTest, EmptyRequestStoresNothing) {
  pb::EnqueueResponse response;
  EXPECT_THAT(Enqueue(pb::EnqueueRequest(), &response), GrpcIsOk());
  EXPECT_EQ(response.results_size(), 0);
  EXPECT_EQ(StoredRows(), 0);
}

TEST_F(DeliveryTest, BatchAnswersInOrderAndNotifiesOnce) {
  const std::string w = NewWebhook(connection_a_);
  auto listener = Raw();
  {
    pqxx::nontransaction txn(*listener);
    txn.exec("LISTEN octo_deliveries");
  }
  pb::EnqueueRequest request;
  *request.add_events() = ToEnqueue(Booking("k1", R"({"uuid":"b-1"})"));
  pb::PublishEventRequest unwanted = Booking("k2", R"({"id":"o-2"})");
  unwanted.set_event("order_update");  // no webhook wants it
  *request.add_events() = ToEnqueue(unwanted);
  *request.add_events() = ToEnqueue(Booking("k3", R"({"uuid":"b-3"})"));
  pb::EnqueueResponse response;
  ASSERT_THAT(Enqueue(request, &response), GrpcIsOk());
  ASSERT_THAT(response.results(), SizeIs(3));
  EXPECT_EQ(response.results(0).delivery_count(), 1);
  EXPECT_EQ(response.results(1).delivery_count(), 0);  // stored all the same
  EXPECT_EQ(response.results(2).delivery_count(), 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Text(absl::StrCat("SELECT idempotency_key FROM events WHERE id = '",
                                response.results(i).event_id(), "'")),
              absl::StrCat("k", i + 1));
  }
  EXPECT_EQ(Count("SELECT count(*) FROM resource_snapshots"), 3);
  EXPECT_EQ(listener->await_notification(5, 0), 1);
}

TEST_F(DeliveryTest, NoNotificationWithoutDeliveries) {
  auto listener = Raw();
  {
    pqxx::nontransaction txn(*listener);
    txn.exec("LISTEN octo_deliveries");
  }
  pb::PublishEventResponse result;
  ASSERT_THAT(EnqueueOne(Booking("k1", R"({"uuid":"b-1"})"), &result), GrpcIsOk());
  EXPECT_EQ(result.delivery_count(), 0);
  EXPECT_EQ(listener->await_notification(0, 300000), 0);
}

TEST_F(DeliveryTest, AvailabilityKeyAndIdsBesideTheResource) {
  const std::string w = NewWebhook(connection_a_, "availability_update");
  pb::PublishEventRequest e = Booking("k1", R"({"id":"2026-06-01T09:00:00+01:00","vacancies":3})");
  e.set_event("availability_update");
  e.set_product_id("tour/1");
  e.set_option_id("DEFAULT");
  pb::PublishEventResponse result;
  ASSERT_THAT(EnqueueOne(e, &result), GrpcIsOk());
  EXPECT_EQ(result.delivery_count(), 1);
  EXPECT_EQ(Text("SELECT concat_ws('|', resource_kind, resource_key, product_id, option_id) "
                 "FROM events"),
            "availability|tour~11/DEFAULT/2026-06-01T09:00:00+01:00|tour/1|DEFAULT");
}

TEST_F(DeliveryTest, ExplicitResourceKeyOverridesTheDerivedOne) {
  pb::PublishEventRequest e = Booking("k1", R"({"status":"CONFIRMED"})");  // no uuid
  e.set_resource_key("booking-42");
  pb::PublishEventResponse result;
  ASSERT_THAT(EnqueueOne(e, &result), GrpcIsOk());
  EXPECT_EQ(Text("SELECT resource_key FROM resource_snapshots"), "booking-42");
}

// ------------------------------------------------------------ validation --

struct BadEvent {
  std::string name;
  std::function<void(pb::EnqueueEvent&)> mutate;
  std::string message;  // expected in the status message
};

void PrintTo(const BadEvent& b, std::ostream* os) { *os << b.name; }

class EnqueueValidationTest : public DeliveryTest,
                              public ::testing::WithParamInterface<BadEvent> {};

TEST_P(EnqueueValidationTest, RejectsTheBatchAndStoresNothing) {
  const std::string w = NewWebhook(connection_a_);
  pb::EnqueueRequest request;
  // A valid event first: the invalid second one must reject it too.
  *request.add_events() = ToEnqueue(Booking("good", R"({"uuid":"b-0"})"));
  pb::EnqueueEvent bad = ToEnqueue(Booking("bad", R"({"uuid":"b-1"})"));
  GetParam().mutate(bad);
  *request.add_events() = bad;
  pb::EnqueueResponse response;
  EXPECT_THAT(Enqueue(request, &response),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, GetParam().message));
  EXPECT_EQ(response.results_size(), 0);
  EXPECT_EQ(StoredRows(), 0);
}

std::string Repeat(char c, std::size_t n) { return std::string(n, c); }

INSTANTIATE_TEST_SUITE_P(
    Invalid, EnqueueValidationTest,
    ::testing::Values(
        BadEvent{"NoEvent", [](pb::EnqueueEvent& e) { e.clear_event(); }, "events[1].event: required"},
        BadEvent{"NoKey", [](pb::EnqueueEvent& e) { e.mutable_event()->clear_idempotency_key(); },
                 "events[1].event.idempotency_key: required"},
        BadEvent{"LongKey",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_idempotency_key(Repeat('k', 201)); },
                 "events[1].event.idempotency_key: at most 200 bytes"},
        BadEvent{"KeyWithNewline",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_idempotency_key("a\nb"); },
                 "idempotency_key: must not contain control characters"},
        BadEvent{"NoSupplier", [](pb::EnqueueEvent& e) { e.mutable_event()->clear_supplier_id(); },
                 "events[1].event.supplier_id: required"},
        BadEvent{"SupplierNotUuid",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_supplier_id("acme"); },
                 "supplier_id: must be a UUID"},
        BadEvent{"ConnectionNotUuid",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_connection_id("c1"); },
                 "connection_id: must be a UUID"},
        BadEvent{"UnknownEvent",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_event("booking_created"); },
                 "event: must be one of"},
        BadEvent{"WebhookTestIsNotPublishable",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_event("webhook_test"); },
                 "event: must be one of"},
        BadEvent{"NoResource", [](pb::EnqueueEvent& e) { e.mutable_event()->clear_resource_json(); },
                 "resource_json: required"},
        BadEvent{"ResourceNotJson",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_resource_json("{\"uuid\":"); },
                 "events[1].event.resource_json: not valid JSON"},
        BadEvent{"ResourceTrailingGarbage",
                 [](pb::EnqueueEvent& e) {
                   e.mutable_event()->set_resource_json(R"({"uuid":"b"} x)");
                 },
                 "resource_json: not valid JSON"},
        BadEvent{"ResourceArray",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_resource_json("[1]"); },
                 "resource_json: must be a JSON object"},
        BadEvent{"ResourceTooLarge",
                 [](pb::EnqueueEvent& e) {
                   e.mutable_event()->set_resource_json(
                       absl::StrCat(R"({"uuid":"b","pad":")", Repeat('x', 1 << 20), "\"}"));
                 },
                 "resource_json: at most 1048576 bytes"},
        BadEvent{"BookingWithoutUuid",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_resource_json(R"({"id":"b"})"); },
                 "resource_json: booking: the resource has no uuid"},
        BadEvent{"AvailabilityWithoutProductId",
                 [](pb::EnqueueEvent& e) {
                   e.mutable_event()->set_event("availability_update");
                   e.mutable_event()->set_resource_json(R"({"id":"slot"})");
                   e.mutable_event()->set_option_id("DEFAULT");
                 },
                 "product_id: required"},
        BadEvent{"ProductIdOnABooking",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_product_id("p"); },
                 "product_id: only for availability_update"},
        BadEvent{"ResourceKeyWithControlCharacters",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_resource_key("a\tb"); },
                 "resource_key: must not contain control characters"},
        BadEvent{"LocalizedBadTag",
                 [](pb::EnqueueEvent& e) {
                   (*e.mutable_event()->mutable_localized_resource_json())["e"] = "{}";
                 },
                 "localized_resource_json: keys must be BCP 47 language tags"},
        BadEvent{"LocalizedTagWithEmptySubtag",
                 [](pb::EnqueueEvent& e) {
                   (*e.mutable_event()->mutable_localized_resource_json())["en--GB"] = "{}";
                 },
                 "localized_resource_json: keys must be BCP 47 language tags"},
        BadEvent{"LocalizedUnderscoreTag",
                 [](pb::EnqueueEvent& e) {
                   (*e.mutable_event()->mutable_localized_resource_json())["en_GB"] = "{}";
                 },
                 "localized_resource_json: keys must be BCP 47 language tags"},
        BadEvent{"LocalizedNotObject",
                 [](pb::EnqueueEvent& e) {
                   (*e.mutable_event()->mutable_localized_resource_json())["de"] = "\"x\"";
                 },
                 "localized_resource_json[de]: must be a JSON object"},
        BadEvent{"LocalizedNotJson",
                 [](pb::EnqueueEvent& e) {
                   (*e.mutable_event()->mutable_localized_resource_json())["de"] = "{";
                 },
                 "localized_resource_json[de]: not valid JSON"},
        BadEvent{"LocalizedSameLanguageTwice",
                 [](pb::EnqueueEvent& e) {
                   auto& m = *e.mutable_event()->mutable_localized_resource_json();
                   m["en-GB"] = "{}";
                   m["en-gb"] = "{}";
                 },
                 "the same language as"},
        BadEvent{"TooManyLocalized",
                 [](pb::EnqueueEvent& e) {
                   auto& m = *e.mutable_event()->mutable_localized_resource_json();
                   for (int i = 0; i < 51; ++i) m[absl::StrCat("en-x", i)] = "{}";
                 },
                 "localized_resource_json: at most 50 variants"},
        BadEvent{"DiffNotJson",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_diff_json("[{"); },
                 "diff_json: not valid JSON"},
        BadEvent{"DiffNotArray",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_diff_json("{}"); },
                 "diff_json: must be a JSON array"},
        BadEvent{"DiffOpNotObject",
                 [](pb::EnqueueEvent& e) { e.mutable_event()->set_diff_json("[1]"); },
                 "diff_json[0]: must be an object"},
        BadEvent{"DiffUnknownOp",
                 [](pb::EnqueueEvent& e) {
                   e.mutable_event()->set_diff_json(R"([{"op":"move","path":"/a","from":"/b"}])");
                 },
                 "diff_json[0]: \"op\" must be"},
        BadEvent{"DiffBadPath",
                 [](pb::EnqueueEvent& e) {
                   e.mutable_event()->set_diff_json(R"([{"op":"remove","path":"status"}])");
                 },
                 "diff_json[0]: \"path\" must be a JSON pointer"},
        BadEvent{"DiffAddWithoutValue",
                 [](pb::EnqueueEvent& e) {
                   e.mutable_event()->set_diff_json(
                       R"([{"op":"remove","path":"/a"},{"op":"add","path":"/b"}])");
                 },
                 "diff_json[1]: \"add\" needs a \"value\""},
        BadEvent{"NoOccurredAt", [](pb::EnqueueEvent& e) { e.mutable_event()->clear_occurred_at(); },
                 "occurred_at: required"},
        BadEvent{"OccurredAtBadNanos",
                 [](pb::EnqueueEvent& e) { *e.mutable_event()->mutable_occurred_at() = At(0, -1); },
                 "occurred_at: not a valid timestamp"},
        BadEvent{"OccurredAtYear10000",
                 [](pb::EnqueueEvent& e) {
                   e.mutable_event()->mutable_occurred_at()->set_seconds(253402300800LL);
                 },
                 "occurred_at: not a valid timestamp"}),
    [](const ::testing::TestParamInfo<BadEvent>& info) { return info.param.name; });

TEST_F(DeliveryTest, RejectsMoreThan500Events) {
  pb::EnqueueRequest request;
  for (int i = 0; i < 501; ++i) {
    *request.add_events() = ToEnqueue(Booking(absl::StrCat("k", i), R"({"uuid":"b"})"));
  }
  pb::EnqueueResponse response;
  EXPECT_THAT(Enqueue(request, &response),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, "events: at most 500"));
  EXPECT_EQ(StoredRows(), 0);
}

TEST_F(DeliveryTest, UnknownSupplierOrForeignConnectionIsNotFoundAndStoresNothing) {
  const std::string other_supplier = NewSupplier("Other Tours");
  auto foreign = repo_->CreateConnection(other_supplier, "Foreign", 10);
  ASSERT_THAT(foreign, IsOk());
  struct Case {
    std::string supplier;
    std::string connection;
    std::string message;
  };
  for (const Case& c : {Case{kMissingUuid, "", "events[1].supplier_id: no such supplier"},
                        Case{supplier_id_, kMissingUuid, "events[1].connection_id: no such"},
                        Case{supplier_id_, foreign->id, "events[1].connection_id: no such"}}) {
    pb::EnqueueRequest request;
    *request.add_events() = ToEnqueue(Booking("ok", R"({"uuid":"b-0"})"));
    pb::PublishEventRequest e = Booking("k", R"({"uuid":"b-1"})");
    e.set_supplier_id(c.supplier);
    e.set_connection_id(c.connection);
    *request.add_events() = ToEnqueue(e);
    pb::EnqueueResponse response;
    EXPECT_THAT(Enqueue(request, &response), GrpcStatusIs(grpc::StatusCode::NOT_FOUND, c.message));
    EXPECT_EQ(StoredRows(), 0);
  }
}

TEST_F(DeliveryTest, UppercaseIdsAreTheSameIds) {
  const std::string w = NewWebhook(connection_a_);
  pb::PublishEventRequest e = Booking("k", R"({"uuid":"b-1"})");
  e.set_supplier_id(absl::AsciiStrToUpper(supplier_id_));
  e.set_connection_id(absl::AsciiStrToUpper(connection_a_));
  pb::PublishEventResponse result;
  ASSERT_THAT(EnqueueOne(e, &result), GrpcIsOk());
  EXPECT_EQ(result.delivery_count(), 1);
}

// ----------------------------------------------------------- idempotency --

TEST_F(DeliveryTest, SameKeyAgainCreatesNothingAndAnswersTheOriginal) {
  NewWebhook(connection_a_);
  pb::PublishEventResponse first;
  ASSERT_THAT(EnqueueOne(Booking("k", R"({"uuid":"b-1","status":"ON_HOLD"})"), &first),
              GrpcIsOk());
  ASSERT_EQ(first.delivery_count(), 1);
  // Another resource, a webhook more, later: still the same event.
  NewWebhook(connection_b_);
  pb::PublishEventRequest again = Booking("k", R"({"uuid":"b-1","status":"CONFIRMED"})");
  *again.mutable_occurred_at() = At(60);
  pb::PublishEventResponse second;
  ASSERT_THAT(EnqueueOne(again, &second), GrpcIsOk());
  EXPECT_EQ(second.event_id(), first.event_id());
  EXPECT_EQ(second.delivery_count(), 1);
  EXPECT_TRUE(second.duplicate());
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 1);
  // The snapshot was not touched by the duplicate.
  EXPECT_EQ(Text("SELECT resource->>'status' FROM resource_snapshots"), "ON_HOLD");

  // The key is per supplier: another supplier may use it.
  pb::PublishEventRequest elsewhere = Booking("k", R"({"uuid":"b-1"})");
  elsewhere.set_supplier_id(NewSupplier("Other Tours"));
  pb::PublishEventResponse third;
  ASSERT_THAT(EnqueueOne(elsewhere, &third), GrpcIsOk());
  EXPECT_FALSE(third.duplicate());
  EXPECT_NE(third.event_id(), first.event_id());
}

TEST_F(DeliveryTest, SameKeyTwiceInOneBatch) {
  const std::string w = NewWebhook(connection_a_);
  pb::EnqueueRequest request;
  *request.add_events() = ToEnqueue(Booking("k", R"({"uuid":"b-1"})"));
  *request.add_events() = ToEnqueue(Booking("k", R"({"uuid":"b-1"})"));
  pb::EnqueueResponse response;
  ASSERT_THAT(Enqueue(request, &response), GrpcIsOk());
  ASSERT_THAT(response.results(), SizeIs(2));
  EXPECT_FALSE(response.results(0).duplicate());
  EXPECT_TRUE(response.results(1).duplicate());
  EXPECT_EQ(response.results(1).event_id(), response.results(0).event_id());
  EXPECT_EQ(response.results(1).delivery_count(), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 1);
}

TEST_F(DeliveryTest, ConcurrentDuplicatesStoreOnceAndAllAnswerTheSame) {
  NewWebhook(connection_a_);
  NewWebhook(connection_b_);
  constexpr int kPublishers = 8;
  std::vector<pb::PublishEventResponse> results(kPublishers);
  std::vector<grpc::Status> statuses(kPublishers);
  std::latch start(kPublishers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPublishers; ++i) {
    threads.emplace_back([&, i] {
      // Each publisher also stores an event of its own in the same batch, so
      // the duplicate is one of several rows of each transaction.
      pb::EnqueueRequest request;
      *request.add_events() = ToEnqueue(
          Booking(absl::StrCat("own-", i), absl::StrCat(R"({"uuid":"own-)", i, "\"}")));
      *request.add_events() =
          ToEnqueue(Booking("shared", R"({"uuid":"b-1","status":"CONFIRMED"})"));
      pb::EnqueueResponse response;
      start.arrive_and_wait();
      statuses[i] = Enqueue(request, &response);
      if (response.results_size() == 2) results[i] = response.results(1);
    });
  }
  for (auto& t : threads) t.join();
  int firsts = 0;
  for (int i = 0; i < kPublishers; ++i) {
    ASSERT_THAT(statuses[i], GrpcIsOk()) << "publisher " << i;
    EXPECT_EQ(results[i].event_id(), results[0].event_id());
    EXPECT_EQ(results[i].delivery_count(), 2);
    if (!results[i].duplicate()) ++firsts;
  }
  EXPECT_EQ(firsts, 1);
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE idempotency_key = 'shared'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id "
                  "WHERE e.idempotency_key = 'shared'"),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM events"), kPublishers + 1);
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'shared'"), "[]");
}

// Batches that write the same resources in opposite orders would deadlock on
// the snapshot rows (each costing PostgreSQL's deadlock_timeout, 1 s); the
// store takes its locks in one order, so they serialise and every publisher
// gets its answer (a deadlock would still be retried).
TEST_F(DeliveryTest, OpposingBatchesSerialiseWithoutDeadlocks) {
  const std::string w = NewWebhook(connection_a_);
  pb::PublishEventResponse r;
  ASSERT_THAT(EnqueueOne(Booking("x0", R"({"uuid":"x","n":0})"), &r), GrpcIsOk());
  ASSERT_THAT(EnqueueOne(Booking("y0", R"({"uuid":"y","n":0})"), &r), GrpcIsOk());
  constexpr int kThreads = 4;
  constexpr int kRounds = 15;
  std::vector<grpc::Status> statuses(kThreads * kRounds);
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        pb::EnqueueRequest request;
        for (const char* id :
             t % 2 == 0 ? std::vector<const char*>{"x", "y"} : std::vector<const char*>{"y", "x"}) {
          pb::PublishEventRequest e =
              Booking(absl::StrCat(id, "-", t, "-", round),
                      absl::StrCat(R"({"uuid":")", id, R"(","n":)", t * 100 + round, "}"));
          *e.mutable_occurred_at() = At(1 + round);
          *request.add_events() = ToEnqueue(e);
        }
        pb::EnqueueResponse response;
        statuses[t * kRounds + round] = Enqueue(request, &response);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const grpc::Status& s : statuses) EXPECT_THAT(s, GrpcIsOk());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 2 + 2 * kThreads * kRounds);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 2 + 2 * kThreads * kRounds);
  // Every computed diff is against a state some event had: "n" replaced.
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE json_array_length(diff) > 1"), 0);
}

// ----------------------------------------------------------------- diffs --

TEST_F(DeliveryTest, ComputedDiffsAgainstThePreviousState) {
  const std::string w = NewWebhook(connection_a_);
  const auto diff_of = [&](const std::string& key) {
    return Text("SELECT diff::text FROM events WHERE idempotency_key = '" + key + "'");
  };
  pb::PublishEventResponse r;
  ASSERT_THAT(
      EnqueueOne(Booking("e1", R"({"uuid":"b-1","status":"ON_HOLD","notes":null})"), &r),
      GrpcIsOk());
  EXPECT_EQ(diff_of("e1"), "[]");  // first event of the resource

  pb::PublishEventRequest e2 =
      Booking("e2", R"({"uuid":"b-1","status":"CONFIRMED","notes":null,"voucher":{"a/b":1}})");
  *e2.mutable_occurred_at() = At(10);
  ASSERT_THAT(EnqueueOne(e2, &r), GrpcIsOk());
  EXPECT_EQ(diff_of("e2"),
            R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"},)"
            R"({"op":"add","path":"/voucher","value":{"a/b":1}}])");

  pb::PublishEventRequest e3 = Booking("e3", R"({"uuid":"b-1","status":"CONFIRMED"})");
  *e3.mutable_occurred_at() = At(20);
  ASSERT_THAT(EnqueueOne(e3, &r), GrpcIsOk());
  EXPECT_EQ(diff_of("e3"), R"([{"op":"remove","path":"/notes","was":null},)"
                           R"({"op":"remove","path":"/voucher","was":{"a/b":1}}])");
  EXPECT_EQ(Text("SELECT diff_supplied::text FROM events WHERE idempotency_key = 'e3'"), "false");

  // Another booking has its own history.
  ASSERT_THAT(EnqueueOne(Booking("other", R"({"uuid":"b-2","status":"CONFIRMED"})"), &r),
              GrpcIsOk());
  EXPECT_EQ(diff_of("other"), "[]");
}

TEST_F(DeliveryTest, SuppliedDiffIsKeptAndTheSnapshotStillAdvances) {
  pb::PublishEventResponse r;
  ASSERT_THAT(EnqueueOne(Booking("e1", R"({"uuid":"b-1","status":"ON_HOLD"})"), &r),
              GrpcIsOk());
  const std::string supplied =
      R"([ {"path":"/status", "op":"replace", "value":"CONFIRMED", "was":"ON_HOLD"} ])";
  pb::PublishEventRequest e2 = Booking("e2", R"({"uuid":"b-1","status":"CONFIRMED"})");
  e2.set_diff_json(supplied);
  *e2.mutable_occurred_at() = At(10);
  ASSERT_THAT(EnqueueOne(e2, &r), GrpcIsOk());
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'e2'"), supplied);
  EXPECT_EQ(Text("SELECT diff_supplied::text FROM events WHERE idempotency_key = 'e2'"), "true");
  // The next computed diff starts from e2's state.
  pb::PublishEventRequest e3 = Booking("e3", R"({"uuid":"b-1","status":"CANCELLED"})");
  *e3.mutable_occurred_at() = At(20);
  ASSERT_THAT(EnqueueOne(e3, &r), GrpcIsOk());
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'e3'"),
            R"([{"op":"replace","path":"/status","was":"CONFIRMED","value":"CANCELLED"}])");

  // A supplied empty diff is kept too, and a first event may bring one.
  pb::PublishEventRequest first = Booking("f1", R"({"uuid":"b-9"})");
  first.set_diff_json("[]");
  ASSERT_THAT(EnqueueOne(first, &r), GrpcIsOk());
  EXPECT_EQ(Text("SELECT resource::text FROM resource_snapshots WHERE resource_key = 'b-9'"),
            R"({"uuid":"b-9"})");
}

TEST_F(DeliveryTest, AnOlderEventDoesNotReplaceTheSnapshot) {
  pb::PublishEventResponse r;
  pb::PublishEventRequest newer = Booking("new", R"({"uuid":"b-1","status":"CONFIRMED"})");
  *newer.mutable_occurred_at() = At(100);
  ASSERT_THAT(EnqueueOne(newer, &r), GrpcIsOk());
  pb::PublishEventRequest older = Booking("old", R"({"uuid":"b-1","status":"ON_HOLD"})");
  *older.mutable_occurred_at() = At(50);
  ASSERT_THAT(EnqueueOne(older, &r), GrpcIsOk());
  // Diffed against the latest known state, which stays.
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'old'"),
            R"([{"op":"replace","path":"/status","was":"CONFIRMED","value":"ON_HOLD"}])");
  EXPECT_EQ(Text("SELECT resource->>'status' FROM resource_snapshots"), "CONFIRMED");
  // An older supplied-diff event does not replace it either.
  pb::PublishEventRequest older_supplied = Booking("old2", R"({"uuid":"b-1","status":"X"})");
  older_supplied.set_diff_json("[]");
  *older_supplied.mutable_occurred_at() = At(60);
  ASSERT_THAT(EnqueueOne(older_supplied, &r), GrpcIsOk());
  EXPECT_EQ(Text("SELECT resource->>'status' FROM resource_snapshots"), "CONFIRMED");
}

TEST_F(DeliveryTest, LaterEventsOfABatchDiffAgainstEarlierOnes) {
  pb::EnqueueRequest request;
  pb::PublishEventRequest e1 = Booking("e1", R"({"uuid":"b-1","status":"ON_HOLD"})");
  pb::PublishEventRequest e2 = Booking("e2", R"({"uuid":"b-1","status":"CONFIRMED"})");
  *e2.mutable_occurred_at() = At(1);
  *request.add_events() = ToEnqueue(e1);
  *request.add_events() = ToEnqueue(e2);
  pb::EnqueueResponse response;
  ASSERT_THAT(Enqueue(request, &response), GrpcIsOk());
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'e2'"),
            R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}])");
}

// One set-based batch mixing everything: a key stored before, a key twice,
// two resources, an older event between newer ones. Diffs chain per
// resource in request order; answers keep request order.
TEST_F(DeliveryTest, MixedBatchChainsDiffsPerResourceInRequestOrder) {
  const std::string w = NewWebhook(connection_a_);
  pb::PublishEventResponse stored;
  pb::PublishEventRequest a = Booking("a", R"({"uuid":"b-1","status":"A"})");
  *a.mutable_occurred_at() = At(10);
  ASSERT_THAT(EnqueueOne(a, &stored), GrpcIsOk());

  pb::PublishEventRequest b = Booking("b", R"({"uuid":"b-1","status":"B"})");
  *b.mutable_occurred_at() = At(20);
  pb::PublishEventRequest c = Booking("c", R"({"uuid":"b-2","status":"X"})");
  pb::PublishEventRequest d = Booking("d", R"({"uuid":"b-1","status":"D"})");
  *d.mutable_occurred_at() = At(15);  // older than b: diffed, does not replace
  pb::PublishEventRequest e = Booking("e", R"({"uuid":"b-1","status":"E"})");
  *e.mutable_occurred_at() = At(30);
  pb::EnqueueRequest request;
  for (const pb::PublishEventRequest* event : {&a, &b, &c, &b, &d, &e}) {
    *request.add_events() = ToEnqueue(*event);
  }
  pb::EnqueueResponse response;
  ASSERT_THAT(Enqueue(request, &response), GrpcIsOk());
  ASSERT_THAT(response.results(), SizeIs(6));
  const std::vector<bool> duplicate = {true, false, false, true, false, false};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(response.results(i).duplicate(), duplicate[i]) << i;
    EXPECT_EQ(response.results(i).delivery_count(), 1) << i;
  }
  EXPECT_EQ(response.results(0).event_id(), stored.event_id());
  EXPECT_EQ(response.results(3).event_id(), response.results(1).event_id());
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'b'"),
            R"([{"op":"replace","path":"/status","was":"A","value":"B"}])");
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'c'"), "[]");
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'd'"),
            R"([{"op":"replace","path":"/status","was":"B","value":"D"}])");
  EXPECT_EQ(Text("SELECT diff::text FROM events WHERE idempotency_key = 'e'"),
            R"([{"op":"replace","path":"/status","was":"B","value":"E"}])");
  EXPECT_EQ(Text("SELECT resource->>'status' FROM resource_snapshots WHERE resource_key = 'b-1'"), "E");
  EXPECT_EQ(Text("SELECT resource->>'status' FROM resource_snapshots WHERE resource_key = 'b-2'"), "X");
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 5);
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 5);
}

// ------------------------------------------------------------- webhooks --

TEST_F(DeliveryTest, ConnectionScopedEventsGoOnlyToThatConnection) {
  const std::string a = NewWebhook(connection_a_);
  const std::string b = NewWebhook(connection_b_);
  pb::PublishEventRequest scoped = Booking("scoped", R"({"uuid":"b-1"})");
  scoped.set_connection_id(connection_a_);
  pb::PublishEventResponse r;
  // b's webhook wants booking_update too, but the event is a's only.
  ASSERT_THAT(EnqueueOne(scoped, &r), GrpcIsOk());
  EXPECT_EQ(r.delivery_count(), 1);
  EXPECT_EQ(Text("SELECT webhook_id::text FROM deliveries"), a);
  EXPECT_EQ(Text("SELECT connection_id::text FROM events"), connection_a_);

  ASSERT_THAT(EnqueueOne(Booking("all", R"({"uuid":"b-2"})"), &r), GrpcIsOk());
  EXPECT_EQ(r.delivery_count(), 2);
}

TEST_F(DeliveryTest, WebhooksThatCannotReceiveTheEventAreSkipped) {
  const std::string wanted = NewWebhook(connection_a_);
  const std::string deleted = NewWebhook(connection_a_);
  ASSERT_THAT(repo_->DeleteWebhook(connection_a_, deleted), IsOk());
  NewWebhook(connection_a_, "order_update");
  const std::string disabled = NewWebhook(connection_b_);
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec(
        "UPDATE webhooks SET status = 'disabled', disabled_at = now(), "
        "disabled_reason = 'test' WHERE id = '" +
        disabled + "'");
    txn.commit();
  }
  const std::string other_supplier = NewSupplier("Other Tours");
  auto foreign_connection = repo_->CreateConnection(other_supplier, "Foreign", 10);
  ASSERT_THAT(foreign_connection, IsOk());
  NewWebhook(foreign_connection->id);

  // Deleted, another event, disabled, another supplier's: none receives it.
  pb::PublishEventResponse r;
  ASSERT_THAT(EnqueueOne(Booking("k", R"({"uuid":"b-1"})"), &r), GrpcIsOk());
  EXPECT_EQ(r.delivery_count(), 1);
  EXPECT_EQ(Text("SELECT webhook_id::text FROM deliveries"), wanted);
  EXPECT_EQ(Count("SELECT delivery_count FROM events"), 1);
}

TEST_F(DeliveryTest, DeletingAWebhookDeletesItsDeliveries) {
  const std::string keep = NewWebhook(connection_a_);
  const std::string gone = NewWebhook(connection_b_);
  pb::PublishEventResponse r;
  ASSERT_THAT(EnqueueOne(Booking("k", R"({"uuid":"b-1"})"), &r), GrpcIsOk());
  {
    auto conn = Raw();
    pqxx::work txn(*conn);
    txn.exec(
        "INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at, "
        "duration_ms, http_status, delivery_created_at) SELECT id, 1, now(), 12.5, 500, created_at FROM deliveries");
    txn.commit();
  }
  ASSERT_THAT(repo_->DeleteWebhook(connection_b_, gone), IsOk());
  EXPECT_EQ(Count("SELECT count(*) FROM deliveries"), 1);
  EXPECT_EQ(Text("SELECT webhook_id::text FROM deliveries"), keep);
  EXPECT_EQ(Count("SELECT count(*) FROM delivery_attempts"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);  // the event stays
}

// ------------------------------------------------------- schema checks --

// The constraints of 0002 hold whoever writes: a few rows the service never
// writes, straight into the tables.
class DeliverySchemaTest : public DeliveryTest {
 protected:
  // Runs `sql` (after the fixture's $S supplier and $E event substitution)
  // and returns the SQLSTATE, or "" on success.
  std::string Exec(std::string sql) {
    for (auto [from, to] : {std::pair<std::string, std::string>{"$S", supplier_id_},
                            {"$E", event_id_},
                            {"$W", webhook_id_}}) {
      for (std::size_t at; (at = sql.find(from)) != std::string::npos;) sql.replace(at, 2, to);
    }
    auto conn = Raw();
    try {
      pqxx::work txn(*conn);
      txn.exec(sql);
      txn.commit();
      return "";
    } catch (const pqxx::sql_error& e) {
      return e.sqlstate();
    }
  }

  void SetUp() override {
    DeliveryTest::SetUp();
    if (HasFatalFailure()) return;
    webhook_id_ = NewWebhook(connection_a_);
    pb::PublishEventResponse r;
    ASSERT_THAT(EnqueueOne(Booking("k", R"({"uuid":"b-1"})"), &r), GrpcIsOk());
    event_id_ = r.event_id();
  }

  std::string event_id_;
  std::string webhook_id_;
};

constexpr char kEventColumns[] =
    "INSERT INTO events (supplier_id, idempotency_key, event, resource_kind, resource_key, "
    "resource, occurred_at";

TEST_F(DeliverySchemaTest, EventsRefuseInconsistentRows) {
  int n = 0;
  // Each row under a key of its own, so that only the rule under test fails.
  const auto insert = [&](const std::string& extra_columns, const std::string& values) {
    return Exec(
        absl::StrCat(kEventColumns, extra_columns, ") VALUES ('$S', 'k", ++n, "', ", values, ")"));
  };
  EXPECT_EQ(insert("", "'booking_update', 'booking', 'b', '{}', now()"), "");
  // The same key again is not refused here (migration 0013: no unique key
  // across partitions): the enqueue's lock and look-up keep a key stored
  // once (DeliveryTest's duplicate tests).
  EXPECT_EQ(insert("", "'order_update', 'booking', 'b', '{}', now()"), "23514");
  EXPECT_EQ(insert("", "'booking_update', 'booking', 'b', '[]', now()"), "23514");
  EXPECT_EQ(insert("", "'booking_update', 'booking', '', '{}', now()"), "23514");
  EXPECT_EQ(insert("", "'booking_update', 'booking', 'b', '{', now()"), "22P02");
  EXPECT_EQ(insert(", localized", "'booking_update', 'booking', 'b', '{}', now(), '{\"x\":{}}'"),
            "23514");
  EXPECT_EQ(insert(", localized", "'booking_update', 'booking', 'b', '{}', now(), '{\"de\":[]}'"),
            "23514");
  EXPECT_EQ(insert(", diff", "'booking_update', 'booking', 'b', '{}', now(), '[{\"op\":\"x\"}]'"),
            "23514");
  EXPECT_EQ(insert(", diff", "'booking_update', 'booking', 'b', '{}', now(), '[{\"op\":\"add\"}]'"),
            "23514");
  // Migration 0017 answers the two common documents without a query: the
  // empty object is no diff and the empty array no localizations, and
  // other spellings of them still pass through the full rules.
  EXPECT_EQ(insert(", localized", "'booking_update', 'booking', 'b', '{}', now(), '[]'"), "23514");
  EXPECT_EQ(insert(", diff", "'booking_update', 'booking', 'b', '{}', now(), '{}'"), "23514");
  EXPECT_EQ(insert(", localized, diff",
                   "'booking_update', 'booking', 'b', '{}', now(), ' { } ', ' [ ] '"),
            "");
  EXPECT_EQ(insert(", localized, diff",
                   "'booking_update', 'booking', 'b', '{}', now(), '{\"de\":{}}', "
                   "'[{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]'"),
            "");
  EXPECT_EQ(insert("", "'availability_update', 'availability', 'a', '{}', now()"), "23514");
  EXPECT_EQ(
      insert(", product_id, option_id", "'booking_update', 'booking', 'b', '{}', now(), 'p', 'o'"),
      "23514");
  EXPECT_EQ(
      insert(", connection_id", "'booking_update', 'booking', 'b', '{}', now(), gen_random_uuid()"),
      "23503");
  EXPECT_EQ(Exec(absl::StrCat(kEventColumns,
                              ") VALUES ('$S', repeat('k', 201), 'booking_update', "
                              "'booking', 'b', '{}', now())")),
            "23514");
}

TEST_F(DeliverySchemaTest, DeliveriesAndAttemptsRefuseInconsistentRows) {
  // A delivery's created_at is its event's (migration 0013: the partition key).
  EXPECT_EQ(Exec("INSERT INTO deliveries (event_id, webhook_id, created_at) SELECT id, '$W', created_at FROM events"
                 " WHERE id = '$E'"),
            "23505");
  EXPECT_EQ(Exec("UPDATE deliveries SET state = 'succeeded'"), "23514");  // no completed_at
  EXPECT_EQ(Exec("UPDATE deliveries SET state = 'succeeded', completed_at = now()"), "23514");
  EXPECT_EQ(Exec("UPDATE deliveries SET attempt_count = 1"), "23514");  // outcome missing
  EXPECT_EQ(Exec("UPDATE deliveries SET attempt_count = 1, last_http_status = 503, "
                 "last_error_class = 'timeout'"),
            "23514");
  EXPECT_EQ(Exec("UPDATE deliveries SET attempt_count = 1, last_http_status = 99"), "23514");
  EXPECT_EQ(Exec("UPDATE deliveries SET state = 'sent', completed_at = now()"), "23514");
  EXPECT_EQ(Exec("UPDATE deliveries SET state = 'succeeded', completed_at = now(), "
                 "attempt_count = 1, last_http_status = 204"),
            "");
  const std::string attempt =
      "INSERT INTO delivery_attempts (delivery_created_at, delivery_id, attempt_number, started_at, duration_ms, "
      "http_status, error_class, response_snippet) SELECT created_at, id, ";
  EXPECT_EQ(Exec(attempt + "1, now(), 1.5, 204, NULL, '' FROM deliveries"), "");
  EXPECT_EQ(Exec(attempt + "1, now(), 1.5, 204, NULL, '' FROM deliveries"), "23505");
  EXPECT_EQ(Exec(attempt + "0, now(), 1, 204, NULL, '' FROM deliveries"), "23514");
  EXPECT_EQ(Exec(attempt + "2, now(), 1, NULL, NULL, '' FROM deliveries"), "23514");
  EXPECT_EQ(Exec(attempt + "2, now(), 1, 500, 'timeout', '' FROM deliveries"), "23514");
  EXPECT_EQ(Exec(attempt + "2, now(), 1, NULL, 'nxdomain', '' FROM deliveries"), "23514");
  EXPECT_EQ(Exec(attempt + "2, now(), -1, NULL, 'dns', '' FROM deliveries"), "23514");
  EXPECT_EQ(Exec(attempt + "2, now(), 'NaN'::float8, NULL, 'dns', '' FROM deliveries"), "23514");
  EXPECT_EQ(Exec(attempt + "2, now(), 1, NULL, 'dns', repeat('x', 4097) FROM deliveries"), "23514");
  EXPECT_EQ(Exec(attempt + "2, now(), 1, NULL, 'dns', repeat('é', 4096) FROM deliveries"), "");
}

TEST_F(DeliverySchemaTest, DeletingTheConnectionDeletesItsEvents) {
  pb::PublishEventRequest scoped = Booking("scoped", R"({"uuid":"b-2"})");
  scoped.set_connection_id(connection_b_);
  pb::PublishEventResponse r;
  ASSERT_THAT(EnqueueOne(scoped, &r), GrpcIsOk());
  EXPECT_EQ(Exec("DELETE FROM connections WHERE id = '" + connection_b_ + "'"), "");
  EXPECT_EQ(Count("SELECT count(*) FROM events"), 1);  // the unscoped one stays
}

}  // namespace
}  // namespace octo::testing
