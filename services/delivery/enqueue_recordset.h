#pragma once
// The JSON array of rows that a json_to_recordset() parameter of the enqueue
// statements reads (enqueue_sql.h). Strings are escaped by the project's JSON
// writer (payload::AppendJsonString); JSON values the service validated
// before (ValidateEvent, or its own payload::SerializeCompact output) are
// passed through as they are, so PostgreSQL parses them once.
#include <cstdint>
#include <string>
#include <string_view>

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
  // A JSON value (validated before: ValidateEvent, or our own output) as it
  // is, without escaping: json_to_recordset hands a `json` column the
  // value's text unchanged, so it is parsed once, not unescaped and parsed
  // again. Whitespace around the value is insignificant and dropped.
  Recordset& Json(std::string_view name, std::string_view json) {
    Key(name);
    const absl::string_view trimmed = absl::StripAsciiWhitespace(AbslView(json));
    text_.append(trimmed.data(), trimmed.size());
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

}  // namespace octo::delivery::enqueue
