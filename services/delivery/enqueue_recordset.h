#pragma once
// The parameters of the enqueue statements (enqueue_sql.h): the JSON array
// of rows that a json_to_recordset() reads, its strings escaped by the
// project's JSON writer (payload::AppendJsonString), and the binary text[]
// arrays that carry the JSON documents (resources, localizations, diffs)
// beside it.
// Those documents were validated before (ValidateEvent, or our own
// payload::SerializeCompact output); PostgreSQL parses each once, when it
// casts the element to json.
#include <cstdint>
#include <string>
#include <string_view>

#include <pqxx/binarystring>

#include "absl/strings/strip.h"
#include "services/common/strings.h"
#include "services/delivery/payload/json_text.h"

namespace octo::delivery::enqueue {

// The JSON array of objects a json_to_recordset parameter reads, written
// directly (no DOM): Row() starts an object, then one call per field.
class Recordset {
 public:
  Recordset& Row() {
    text_ += rows_++ == 0 ? "[{" : "},{";
    first_field_ = true;
    return *this;
  }
  Recordset& Text(std::string_view name, std::string_view value) {
    Key(name);
    payload::AppendJsonString(value, text_);
    return *this;
  }
  // "" is SQL NULL (optional UUIDs and ids).
  Recordset& TextOrNull(std::string_view name, std::string_view value) {
    if (!value.empty()) return Text(name, value);
    Key(name);
    text_ += "null";
    return *this;
  }
  Recordset& Int(std::string_view name, std::int64_t value) {
    Key(name);
    text_ += std::to_string(value);
    return *this;
  }
  Recordset& Bool(std::string_view name, bool value) {
    Key(name);
    text_ += value ? "true" : "false";
    return *this;
  }
  bool empty() const { return rows_ == 0; }
  std::string Finish() {
    text_ += rows_ == 0 ? "[]" : "}]";
    return std::move(text_);
  }

 private:
  void Key(std::string_view name) {
    if (!first_field_) text_.push_back(',');
    first_field_ = false;
    payload::AppendJsonString(name, text_);
    text_.push_back(':');
  }
  std::string text_;
  std::size_t rows_ = 0;
  bool first_field_ = true;
};

// A text[] parameter of JSON documents, one element per row of the
// Recordset it goes with (the statement zips them by position with ROWS
// FROM). Not in the recordset: json_to_recordset would lex every document
// once more after the json parameter's own validation, and copy it (about
// a third of the insert's CPU for 2 KB resources). Sent in PostgreSQL's
// binary array form (array_recv: a header, then each element's length and
// bytes), so the server neither unquotes nor scans the elements: each is
// parsed once, by its cast to json. Whitespace around a document is
// insignificant and dropped.
class JsonArray {
 public:
  JsonArray& Add(std::string_view json) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(AbslView(json));
    AppendInt32(static_cast<std::uint32_t>(trimmed.size()));
    elements_.append(trimmed.data(), trimmed.size());
    ++size_;
    return *this;
  }
  // The binary parameter (libpqxx sends a binarystring in binary format).
  pqxx::binarystring Finish() const {
    constexpr std::uint32_t kTextOid = 25;
    std::string out;
    out.reserve(20 + elements_.size());
    const auto put = [&out](std::uint32_t v) {
      for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
    };
    put(size_ == 0 ? 0 : 1);  // dimensions (an empty array has none)
    put(0);                   // no NULL elements
    put(kTextOid);
    if (size_ > 0) {
      put(static_cast<std::uint32_t>(size_));
      put(1);  // lower bound
    }
    out += elements_;
    return pqxx::binarystring(out.data(), out.size());
  }

 private:
  void AppendInt32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) elements_.push_back(static_cast<char>(v >> shift));
  }
  std::string elements_;
  std::size_t size_ = 0;
};

}  // namespace octo::delivery::enqueue
