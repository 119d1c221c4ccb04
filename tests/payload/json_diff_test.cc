#include "services/delivery/payload/json_diff.h"

#include <gtest/gtest.h>

#include "services/delivery/payload/json_pointer.h"
#include "tests/payload/test_util.h"

namespace octo::payload {
namespace {

using testing::Compact;
using testing::Json;

std::string DiffText(std::string_view before, std::string_view after) {
  return Compact(ComputeDiff(Json(before), Json(after)));
}

// Applies ops in sequence (a minimal JSON Patch for add/remove/replace).
void Apply(boost::json::value& doc, const boost::json::array& ops) {
  for (const auto& op_value : ops) {
    const auto& op = op_value.as_object();
    const std::string kind(op.at("op").as_string());
    auto tokens = ParsePointer(std::string_view(op.at("path").as_string()));
    ASSERT_TRUE(tokens.has_value());
    if (tokens->empty()) {
      ASSERT_EQ(kind, "replace");
      doc = op.at("value");
      continue;
    }
    boost::json::value* parent = &doc;
    for (std::size_t i = 0; i + 1 < tokens->size(); ++i) {
      const std::string& t = (*tokens)[i];
      parent = parent->is_object() ? &parent->as_object().at(t) : &parent->as_array().at(std::stoul(t));
    }
    const std::string& last = tokens->back();
    if (parent->is_object()) {
      auto& o = parent->as_object();
      if (kind == "remove") {
        ASSERT_EQ(o.at(last), op.at("was"));
        o.erase(last);
      } else {
        if (kind == "replace") {
          ASSERT_EQ(o.at(last), op.at("was"));
        }
        o[last] = op.at("value");
      }
    } else {
      auto& a = parent->as_array();
      const std::size_t index = std::stoul(last);
      if (kind == "remove") {
        ASSERT_EQ(a.at(index), op.at("was"));
        a.erase(a.begin() + static_cast<std::ptrdiff_t>(index));
      } else if (kind == "add") {
        ASSERT_LE(index, a.size());
        a.insert(a.begin() + static_cast<std::ptrdiff_t>(index), op.at("value"));
      } else {
        ASSERT_EQ(a.at(index), op.at("was"));
        a.at(index) = op.at("value");
      }
    }
  }
}

TEST(ComputeDiffTest, IdenticalIsEmpty) {
  EXPECT_EQ(DiffText(R"({"a":1,"b":[1,{"c":null}]})", R"({"a":1,"b":[1,{"c":null}]})"), "[]");
  EXPECT_EQ(DiffText("{}", "{}"), "[]");
  EXPECT_EQ(DiffText("[]", "[]"), "[]");
  EXPECT_EQ(DiffText("null", "null"), "[]");
}

TEST(ComputeDiffTest, KeyOrderAloneIsNoChange) { EXPECT_EQ(DiffText(R"({"a":1,"b":2})", R"({"b":2,"a":1})"), "[]"); }

TEST(ComputeDiffTest, Seed003StatusReplaceCarriesWas) {
  EXPECT_EQ(DiffText(R"({"uuid":"b1","status":"ON_HOLD"})", R"({"uuid":"b1","status":"CONFIRMED"})"),
            R"([{"op":"replace","path":"/status","was":"ON_HOLD","value":"CONFIRMED"}])");
}

TEST(ComputeDiffTest, Seed003OrderRemovesBookingAndDeliveryOption) {
  const std::string before = R"({"id":"o1","bookings":[{"uuid":"b1","status":"CANCELLED"}],)"
                             R"("voucher":{"deliveryOptions":[{"deliveryFormat":"PDF_URL","deliveryValue":"a"},)"
                             R"({"deliveryFormat":"QRCODE","deliveryValue":"b"}]}})";
  const std::string after = R"({"id":"o1","bookings":[],)"
                            R"("voucher":{"deliveryOptions":[{"deliveryFormat":"PDF_URL","deliveryValue":"a"}]}})";
  EXPECT_EQ(
      DiffText(before, after),
      R"([{"op":"remove","path":"/bookings/0","was":{"uuid":"b1","status":"CANCELLED"}},)"
      R"({"op":"remove","path":"/voucher/deliveryOptions/1","was":{"deliveryFormat":"QRCODE","deliveryValue":"b"}}])");
}

TEST(ComputeDiffTest, AddAndRemoveMembers) {
  EXPECT_EQ(DiffText(R"({"a":1,"gone":true,"b":2})", R"({"new":"x","a":1,"b":2})"),
            R"([{"op":"add","path":"/new","value":"x"},{"op":"remove","path":"/gone","was":true}])");
}

TEST(ComputeDiffTest, ArrayAddsAscendingRemovesDescending) {
  EXPECT_EQ(DiffText(R"({"x":[1]})", R"({"x":[1,2,3]})"),
            R"([{"op":"add","path":"/x/1","value":2},{"op":"add","path":"/x/2","value":3}])");
  EXPECT_EQ(DiffText(R"({"x":[1,2,3]})", R"({"x":[9]})"),
            R"([{"op":"replace","path":"/x/0","was":1,"value":9},)"
            R"({"op":"remove","path":"/x/2","was":3},{"op":"remove","path":"/x/1","was":2}])");
}

TEST(ComputeDiffTest, EscapesTildeAndSlashInKeys) {
  EXPECT_EQ(DiffText(R"({"a/b":1,"m~n":{"~/":1}})", R"({"a/b":2,"m~n":{"~/":3}})"),
            R"([{"op":"replace","path":"/a~1b","was":1,"value":2},)"
            R"({"op":"replace","path":"/m~0n/~0~1","was":1,"value":3}])");
  EXPECT_EQ(EscapePointerToken("~1"), "~01");
}

TEST(ComputeDiffTest, NestedArrays) {
  EXPECT_EQ(DiffText(R"({"m":[[1,2],[3]]})", R"({"m":[[1,3],[3,4]]})"),
            R"([{"op":"replace","path":"/m/0/1","was":2,"value":3},{"op":"add","path":"/m/1/1","value":4}])");
  EXPECT_EQ(DiffText(R"([[{"a":1}]])", R"([[{"a":2}],[]])"),
            R"([{"op":"replace","path":"/0/0/a","was":1,"value":2},{"op":"add","path":"/1","value":[]}])");
}

TEST(ComputeDiffTest, TypeChangesReplaceTheWholeValue) {
  EXPECT_EQ(DiffText(R"({"a":{"b":1}})", R"({"a":[1]})"),
            R"([{"op":"replace","path":"/a","was":{"b":1},"value":[1]}])");
  EXPECT_EQ(DiffText(R"({"a":null})", R"({"a":{"b":1}})"),
            R"([{"op":"replace","path":"/a","was":null,"value":{"b":1}}])");
  EXPECT_EQ(DiffText(R"({"a":1})", R"({"a":"1"})"), R"([{"op":"replace","path":"/a","was":1,"value":"1"}])");
  EXPECT_EQ(DiffText(R"({"a":1})", R"({"a":1.5})"), R"([{"op":"replace","path":"/a","was":1,"value":1.5}])");
  EXPECT_EQ(DiffText(R"({"a":false})", R"({"a":0})"), R"([{"op":"replace","path":"/a","was":false,"value":0}])");
  // The same integer parsed as int64 or uint64 is equal.
  EXPECT_EQ(Compact(ComputeDiff(boost::json::value(std::int64_t{5}), boost::json::value(std::uint64_t{5}))), "[]");
}

TEST(ComputeDiffTest, RootReplaceHasEmptyPath) {
  EXPECT_EQ(DiffText("1", "2"), R"([{"op":"replace","path":"","was":1,"value":2}])");
  EXPECT_EQ(DiffText("{}", "[]"), R"([{"op":"replace","path":"","was":{},"value":[]}])");
}

TEST(ComputeDiffTest, OpsApplyInSequenceToReproduceAfter) {
  const auto before =
      Json(R"({"uuid":"b1","status":"ON_HOLD","notes":null,"unitItems":[{"uuid":"u1","pricing":{"retail":10}},)"
           R"({"uuid":"u2"},{"uuid":"u3"},{"uuid":"u4"}],"contact":{"locales":["en","de"],"fullName":"A"},)"
           R"("old":{"x":1},"a/b":[1,[2,3]]})");
  const auto after =
      Json(R"({"uuid":"b1","status":"CONFIRMED","notes":"hi","unitItems":[{"uuid":"u1","pricing":{"retail":12}},)"
           R"({"uuid":"u2b"}],"contact":{"locales":["de"],"fullName":"A","email":"a@b"},)"
           R"("a/b":[1,[2],{"n":1}],"added":[1]})");
  const boost::json::array ops = ComputeDiff(before, after);
  boost::json::value doc = before;
  Apply(doc, ops);
  EXPECT_EQ(doc, after) << Compact(ops);
  EXPECT_EQ(Compact(ComputeDiff(after, after)), "[]");
}

TEST(ParsePointerTest, ParsesAndRejects) {
  EXPECT_EQ(ParsePointer(""), std::vector<std::string>{});
  EXPECT_EQ(ParsePointer("/"), std::vector<std::string>{""});
  EXPECT_EQ(ParsePointer("/a~1b/0/~0"), (std::vector<std::string>{"a/b", "0", "~"}));
  EXPECT_EQ(ParsePointer("a"), std::nullopt);
  EXPECT_EQ(ParsePointer("/a~2"), std::nullopt);
  EXPECT_EQ(ParsePointer("/a~"), std::nullopt);
}

}  // namespace
}  // namespace octo::payload
