#include "gateway/operations_json.h"

#include <cstdint>
#include <map>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gateway/json_body.h"
#include "gateway/octo_error.h"
#include "gateway/string_views.h"
#include "gateway/webhook_json.h"

namespace octo::gateway {
namespace {

namespace json = boost::json;
namespace v1 = octo::webhooks::v1;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding ("+" stays "+": these values never hold spaces).
absl::StatusOr<std::string> PercentDecode(absl::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return absl::InvalidArgumentError("a truncated %-escape");
    const int hi = HexValue(s[i + 1]);
    const int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("an invalid %-escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The query string's parameters; INVALID_ARGUMENT for a malformed, unknown
// or repeated one.
absl::StatusOr<std::map<std::string, std::string>> ParseQuery(
    std::string_view target, std::initializer_list<std::string_view> known) {
  std::map<std::string, std::string> out;
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  const absl::string_view query = AbslView(target.substr(q + 1));
  if (query.empty()) return out;
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    absl::StatusOr<std::string> name = PercentDecode(pair.substr(0, eq));
    absl::StatusOr<std::string> value = PercentDecode(
        eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1));
    if (!name.ok() || !value.ok()) {
      return absl::InvalidArgumentError("The query string has an invalid %-escape");
    }
    bool is_known = false;
    for (std::string_view k : known) is_known = is_known || *name == k;
    if (!is_known) {
      return absl::InvalidArgumentError(
          absl::StrCat("Unknown query parameter '", PrintableAscii(*name, 64), "'"));
    }
    if (!out.emplace(*name, *value).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("Query parameter '", *name, "' must be given at most once"));
    }
  }
  return out;
}

absl::StatusOr<json::object> ParseObject(std::string_view body) {
  absl::StatusOr<json::value> parsed = ParseJsonBody(body);
  if (!parsed.ok()) return parsed.status();
  json::value doc = *std::move(parsed);
  if (!doc.is_object()) return absl::InvalidArgumentError("The request body must be a JSON object");
  return std::move(doc.as_object());
}

absl::Status UnknownMember(std::string_view key) {
  return absl::InvalidArgumentError(
      absl::StrCat("Unknown field '", TruncateUtf8(key, 64), "' in the request body"));
}

// An integer JSON value in [min, max].
absl::StatusOr<int64_t> IntegerMember(const json::value& v, std::string_view name, int64_t min,
                                      int64_t max) {
  int64_t n = 0;
  if (v.is_int64()) {
    n = v.get_int64();
  } else if (v.is_uint64()) {
    n = v.get_uint64() > static_cast<uint64_t>(max) ? max + 1 : static_cast<int64_t>(v.get_uint64());
  } else {
    return absl::InvalidArgumentError(absl::StrCat(AbslView(name), ": must be an integer"));
  }
  if (n < min || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(name), ": must be between ", min, " and ", max));
  }
  return n;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
}

std::string_view StateName(v1::DeliveryState state) {
  switch (state) {
    case v1::DELIVERY_STATE_PENDING:
      return "pending";
    case v1::DELIVERY_STATE_SUCCEEDED:
      return "succeeded";
    case v1::DELIVERY_STATE_FAILED:
      return "failed";
    case v1::DELIVERY_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

}  // namespace

absl::StatusOr<v1::ListDeliveriesRequest> ParseListDeliveriesQuery(std::string_view target) {
  absl::StatusOr<std::map<std::string, std::string>> query =
      ParseQuery(target, {"status", "event", "limit", "cursor"});
  if (!query.ok()) return query.status();
  v1::ListDeliveriesRequest request;
  if (auto it = query->find("status"); it != query->end()) {
    static const std::map<std::string, v1::DeliveryState> kStates = {
        {"pending", v1::DELIVERY_STATE_PENDING},
        {"succeeded", v1::DELIVERY_STATE_SUCCEEDED},
        {"failed", v1::DELIVERY_STATE_FAILED},
        {"cancelled", v1::DELIVERY_STATE_CANCELLED}};
    auto state = kStates.find(it->second);
    if (state == kStates.end()) {
      return absl::InvalidArgumentError(
          "status: must be pending, succeeded, failed or cancelled");
    }
    request.set_state(state->second);
  }
  // The event's value is checked by the service (it knows the events).
  if (auto it = query->find("event"); it != query->end()) {
    // Event names are lower-case letters and "_": anything else (bytes that
    // are not UTF-8 included, which a proto string field cannot carry) is
    // refused here.
    if (it->second.empty() || it->second.size() > 64 ||
        it->second.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) {
      return absl::InvalidArgumentError("event: must be an event name");
    }
    request.set_event(it->second);
  }
  if (auto it = query->find("limit"); it != query->end()) {
    int limit = 0;
    if (!absl::SimpleAtoi(it->second, &limit) || limit < 1 || limit > kMaxDeliveryListLimit ||
        it->second.size() > 3 || it->second.find_first_not_of("0123456789") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit: must be an integer between 1 and ", kMaxDeliveryListLimit));
    }
    request.set_page_size(limit);
  }
  if (auto it = query->find("cursor"); it != query->end()) {
    // Cursors are unpadded or padded base64url.
    if (it->second.empty() || it->second.size() > 200 ||
        it->second.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=") !=
            std::string::npos) {
      return absl::InvalidArgumentError("cursor: not a cursor from a previous page");
    }
    request.set_page_token(it->second);
  }
  return request;
}

absl::Status CheckNoQuery(std::string_view target) {
  absl::StatusOr<std::map<std::string, std::string>> query = ParseQuery(target, {});
  return query.status();
}

absl::Status CheckEmptyBody(std::string_view body, bool json_content_type) {
  if (body.empty()) return absl::OkStatus();
  if (!json_content_type) {
    return absl::FailedPreconditionError("Content-Type must be application/json");
  }
  absl::StatusOr<json::object> object = ParseObject(body);
  if (!object.ok()) return object.status();
  if (!object->empty()) return UnknownMember(std::string_view(object->begin()->key()));
  return absl::OkStatus();
}

absl::StatusOr<v1::ReplayDeliveriesRequest> ParseReplayBody(std::string_view body) {
  absl::StatusOr<json::object> object = ParseObject(body);
  if (!object.ok()) return object.status();
  v1::ReplayDeliveriesRequest request;
  bool has_since = false;
  for (const auto& [key, value] : *object) {
    if (key == "since") {
      if (!value.is_string()) return absl::InvalidArgumentError("since: must be an RFC 3339 string");
      absl::Time since;
      std::string error;
      const json::string& text = value.get_string();
      if (text.size() > 64 ||
          !absl::ParseTime(absl::RFC3339_full, absl::string_view(text.data(), text.size()), &since,
                           &error)) {
        return absl::InvalidArgumentError(
            "since: must be an RFC 3339 date-time, e.g. 2026-11-25T10:00:00Z");
      }
      if (since < absl::FromUnixSeconds(0) || since > absl::FromUnixSeconds(253402300799)) {
        return absl::InvalidArgumentError("since: must be between 1970 and 9999");
      }
      SetTimestamp(since, request.mutable_since());
      has_since = true;
    } else if (key == "limit") {
      absl::StatusOr<int64_t> limit = IntegerMember(value, "limit", 1, kMaxReplayLimit);
      if (!limit.ok()) return limit.status();
      request.set_max_count(static_cast<int32_t>(*limit));
    } else {
      return UnknownMember(std::string_view(key));
    }
  }
  if (!has_since) return absl::InvalidArgumentError("since: required");
  return request;
}

absl::StatusOr<v1::RotateWebhookSecretRequest> ParseRotateBody(std::string_view body) {
  v1::RotateWebhookSecretRequest request;
  if (body.empty()) return request;
  absl::StatusOr<json::object> object = ParseObject(body);
  if (!object.ok()) return object.status();
  for (const auto& [key, value] : *object) {
    if (key != "gracePeriodSeconds") return UnknownMember(std::string_view(key));
    absl::StatusOr<int64_t> grace =
        IntegerMember(value, "gracePeriodSeconds", 0, kMaxGracePeriodSeconds);
    if (!grace.ok()) return grace.status();
    request.set_grace_period_seconds(static_cast<int32_t>(*grace));
  }
  return request;
}

json::object DeliveryToJson(const v1::Delivery& d, bool with_attempts) {
  json::object out;
  out["id"] = d.id();
  out["webhookId"] = d.webhook_id();
  out["eventId"] = d.event_id();
  out["event"] = d.event();
  out["status"] = StateName(d.state());
  out["attemptCount"] = d.attempt_count();
  if (d.has_create_time()) out["createdAt"] = FormatRfc3339(d.create_time());
  if (d.has_next_attempt_time()) out["nextAttemptAt"] = FormatRfc3339(d.next_attempt_time());
  if (d.has_complete_time()) out["completedAt"] = FormatRfc3339(d.complete_time());
  if (d.last_http_status() != 0) {
    out["lastHttpStatus"] = d.last_http_status();
  } else {
    out["lastHttpStatus"] = nullptr;
  }
  if (!d.last_error_class().empty()) {
    out["lastErrorClass"] = d.last_error_class();
  } else {
    out["lastErrorClass"] = nullptr;
  }
  out["webhookMessageId"] = d.webhook_message_id();
  if (with_attempts) {
    json::array attempts;
    for (const v1::DeliveryAttempt& a : d.attempts()) {
      json::object o;
      o["attemptNumber"] = a.attempt_number();
      o["startedAt"] = FormatRfc3339(a.start_time());
      o["durationMs"] = a.duration_ms();
      if (a.http_status() != 0) {
        o["httpStatus"] = a.http_status();
      } else {
        o["httpStatus"] = nullptr;
      }
      if (!a.error_class().empty()) {
        o["errorClass"] = a.error_class();
      } else {
        o["errorClass"] = nullptr;
      }
      o["responseSnippet"] = a.response_snippet();
      attempts.push_back(std::move(o));
    }
    out["attempts"] = std::move(attempts);
  }
  return out;
}

}  // namespace octo::gateway
