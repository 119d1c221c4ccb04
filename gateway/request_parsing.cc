#include "gateway/request_parsing.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gateway/json_body.h"
#include "gateway/octo_error.h"
#include "gateway/string_views.h"
#include "services/common/validation.h"

namespace octo::gateway {

namespace json = boost::json;
namespace v1 = octo::webhooks::v1;

namespace {

constexpr std::size_t kMaxApiKeyBytes = 512;
constexpr std::size_t kMaxEchoedNameBytes = 100;

// The fields of a create or update body after type checks.
struct WebhookFields {
  const json::string* url = nullptr;
  const json::string* event = nullptr;
  const json::value* retry_on_error = nullptr;
  const json::value* use_contact_language = nullptr;
  const json::object* headers = nullptr;
  const json::value* rate_limit_per_second = nullptr;  // a number
  const json::value* max_concurrency = nullptr;        // an integer
  const json::value* ordered = nullptr;                // a boolean
};

absl::Status TypeError(std::string_view field, std::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(AbslView(field), ": must be ", AbslView(expected)));
}

// Parses `body` into `doc` and checks every member's type. `doc` owns the
// storage the returned pointers refer to.
absl::StatusOr<WebhookFields> ParseFields(std::string_view body, json::value& doc) {
  absl::StatusOr<json::value> parsed = ParseJsonBody(body);
  if (!parsed.ok()) return parsed.status();
  doc = *std::move(parsed);
  const json::object* object = doc.if_object();
  if (object == nullptr)
    return absl::InvalidArgumentError("The request body must be a JSON object");

  WebhookFields fields;
  for (const auto& member : *object) {
    const std::string_view key = member.key();
    const json::value& value = member.value();
    if (key == "url" || key == "event") {
      const json::string* s = value.if_string();
      if (s == nullptr) return TypeError(key, "a string");
      (key == "url" ? fields.url : fields.event) = s;
    } else if (key == "retryOnError" || key == "useContactLanguage") {
      if (!value.is_bool()) return TypeError(key, "a boolean");
      (key == "retryOnError" ? fields.retry_on_error : fields.use_contact_language) = &value;
    } else if (key == "headers") {
      const json::object* headers = value.if_object();
      if (headers == nullptr) return TypeError(key, "an object of strings");
      for (const auto& header : *headers) {
        if (!header.value().is_string()) {
          return TypeError(absl::StrCat("headers.", TruncateUtf8(std::string_view(header.key()),
                                                                 kMaxEchoedNameBytes)),
                           "a string");
        }
      }
      fields.headers = headers;
    } else if (key == "ordered") {
      if (!value.is_bool()) return TypeError(key, "a boolean");
      fields.ordered = &value;
    } else if (key == "rateLimitPerSecond") {
      if (!value.is_number()) return TypeError(key, "a number");
      fields.rate_limit_per_second = &value;
    } else if (key == "maxConcurrency") {
      // Out of int32 range: refused here, the service checks the real bounds.
      if (!(value.is_int64() && value.get_int64() >= 0 && value.get_int64() <= 1000000) &&
          !(value.is_uint64() && value.get_uint64() <= 1000000)) {
        return TypeError(key, "an integer between 0 and 10000");
      }
      fields.max_concurrency = &value;
    } else if (key == "capabilities") {
      const json::array* capabilities = value.if_array();
      if (capabilities == nullptr) return TypeError(key, "an array of strings");
      for (const json::value& capability : *capabilities) {
        if (!capability.is_string()) return TypeError(key, "an array of strings");
      }
      // Ignored: capabilities come from the Octo-Capabilities header.
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "Unknown field '", TruncateUtf8(std::string_view(key), kMaxEchoedNameBytes),
          "'; allowed: url, event, retryOnError, useContactLanguage, headers, capabilities, "
          "rateLimitPerSecond, maxConcurrency, ordered"));
    }
  }
  return fields;
}

template <typename Map>
void CopyHeaders(const json::object& headers, Map& out) {
  for (const auto& header : headers) {
    out[std::string(header.key())] = std::string(header.value().get_string());
  }
}

template <typename Request>
void SetLimits(const WebhookFields& fields, Request& request) {
  if (fields.rate_limit_per_second != nullptr) {
    request.set_rate_limit_per_second(fields.rate_limit_per_second->to_number<double>());
  }
  if (fields.max_concurrency != nullptr) {
    request.set_max_concurrency(static_cast<int32_t>(fields.max_concurrency->to_number<int64_t>()));
  }
  if (fields.ordered != nullptr) request.set_ordered(fields.ordered->get_bool());
}

}  // namespace

bool IsJsonContentType(std::string_view content_type) {
  // A null view (a missing header, as Beast's fields[] answers it) splits
  // into no parts at all.
  std::vector<absl::string_view> parts = absl::StrSplit(AbslView(content_type), ';');
  if (parts.empty()) return false;
  if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(parts[0]), "application/json"))
    return false;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const absl::string_view param = absl::StripAsciiWhitespace(parts[i]);
    if (param.empty()) continue;
    const std::size_t eq = param.find('=');
    if (eq == absl::string_view::npos) return false;
    const absl::string_view name = absl::StripAsciiWhitespace(param.substr(0, eq));
    absl::string_view value = absl::StripAsciiWhitespace(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (absl::EqualsIgnoreCase(name, "charset") && !absl::EqualsIgnoreCase(value, "utf-8"))
      return false;
  }
  return true;
}

absl::StatusOr<std::string> ParseBearerKey(std::string_view authorization_arg) {
  const auto malformed = [] {
    return absl::InvalidArgumentError("The Authorization header must be 'Bearer <API key>'");
  };
  const absl::string_view authorization = absl::StripAsciiWhitespace(AbslView(authorization_arg));
  const std::size_t space = authorization.find(' ');
  if (space == absl::string_view::npos) return malformed();
  if (!absl::EqualsIgnoreCase(authorization.substr(0, space), "Bearer")) return malformed();
  const absl::string_view key = absl::StripLeadingAsciiWhitespace(authorization.substr(space));
  if (key.empty() || key.size() > kMaxApiKeyBytes) return malformed();
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return malformed();
  }
  return std::string(key);
}

std::string JoinCapabilities(const std::vector<std::string>& capabilities) {
  return absl::StrJoin(capabilities, ", ");
}

absl::StatusOr<std::vector<std::string>> RequestCapabilities(
    const boost::beast::http::fields& fields) {
  std::string joined;
  for (auto [it, end] = fields.equal_range("Octo-Capabilities"); it != end; ++it) {
    if (!joined.empty()) joined.push_back(',');
    joined.append(it->value().data(), it->value().size());
  }
  return ParseCapabilitiesHeader(joined);
}

std::string CapabilitiesEcho(const boost::beast::http::fields& fields) {
  absl::StatusOr<std::vector<std::string>> capabilities = RequestCapabilities(fields);
  return capabilities.ok() ? JoinCapabilities(*capabilities) : "";
}

absl::StatusOr<v1::CreateWebhookRequest> ParseCreateWebhookBody(std::string_view body) {
  json::value doc;
  absl::StatusOr<WebhookFields> fields = ParseFields(body, doc);
  if (!fields.ok()) return fields.status();
  if (fields->url == nullptr) return absl::InvalidArgumentError("url: is required");
  if (fields->event == nullptr) return absl::InvalidArgumentError("event: is required");

  v1::CreateWebhookRequest request;
  request.set_url(std::string(*fields->url));
  request.set_event(std::string(*fields->event));
  if (fields->retry_on_error != nullptr)
    request.set_retry_on_error(fields->retry_on_error->get_bool());
  if (fields->use_contact_language != nullptr) {
    request.set_use_contact_language(fields->use_contact_language->get_bool());
  }
  if (fields->headers != nullptr) CopyHeaders(*fields->headers, *request.mutable_headers());
  SetLimits(*fields, request);
  return request;
}

absl::StatusOr<v1::UpdateWebhookRequest> ParseUpdateWebhookBody(std::string_view body) {
  json::value doc;
  absl::StatusOr<WebhookFields> fields = ParseFields(body, doc);
  if (!fields.ok()) return fields.status();

  v1::UpdateWebhookRequest request;
  if (fields->url != nullptr) request.set_url(std::string(*fields->url));
  if (fields->event != nullptr) request.set_event(std::string(*fields->event));
  if (fields->retry_on_error != nullptr)
    request.set_retry_on_error(fields->retry_on_error->get_bool());
  if (fields->use_contact_language != nullptr) {
    request.set_use_contact_language(fields->use_contact_language->get_bool());
  }
  if (fields->headers != nullptr) {
    // Present (even empty) = replace all headers.
    CopyHeaders(*fields->headers, *request.mutable_headers()->mutable_values());
  }
  SetLimits(*fields, request);
  return request;
}

}  // namespace octo::gateway
