#include "tests/delivery_e2e/delivery_test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/crypto.h"
#include "services/delivery/payload/signing.h"

#ifndef OCTO_WEBHOOKS_VERSION
#error "OCTO_WEBHOOKS_VERSION must be defined (top-level CMakeLists.txt)"
#endif

namespace octo::delivery_e2e {

namespace v1 = ::octo::webhooks::v1;

std::string Q(std::string_view text) { return boost::json::serialize(boost::json::string(text)); }

std::string WebhookObject(const CreatedWebhook& webhook, std::string_view event, std::string_view masked_url,
                          bool retry_on_error, bool use_contact_language, std::string_view headers_json,
                          const std::vector<std::string>& capabilities) {
  std::vector<std::string> caps;
  caps.reserve(capabilities.size());
  for (const std::string& c : capabilities) caps.push_back(Q(c));
  return absl::StrCat("{\"id\":", Q(webhook.id), ",\"event\":", Q(event), ",\"url\":", Q(masked_url),
                      ",\"retryOnError\":", retry_on_error ? "true" : "false",
                      ",\"useContactLanguage\":", use_contact_language ? "true" : "false",
                      ",\"headers\":", std::string(headers_json), ",\"capabilities\":[", absl::StrJoin(caps, ","), "]}");
}

std::string SupplierObject(const e2e::Tenant& tenant, const SupplierProfile& profile) {
  return absl::StrCat("{\"id\":", Q(tenant.supplier_id), ",\"name\":", Q(profile.name),
                      ",\"endpoint\":", Q(profile.endpoint), ",\"contact\":{\"website\":", Q(profile.website),
                      ",\"email\":", Q(profile.email), ",\"telephone\":", Q(profile.telephone),
                      ",\"address\":", Q(profile.address), "}}");
}

v1::PublishEventRequest Event(const e2e::Tenant& tenant, std::string event, std::string resource_json,
                              std::string idempotency_key, int64_t occurred_at_s) {
  v1::PublishEventRequest req;
  req.set_idempotency_key(std::move(idempotency_key));
  req.set_supplier_id(tenant.supplier_id);
  req.set_event(std::move(event));
  req.set_resource_json(std::move(resource_json));
  req.mutable_occurred_at()->set_seconds(occurred_at_s);
  return req;
}

std::string NewUuid() {
  std::string b = crypto::RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  const std::string hex = crypto::HexEncode(b);
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-", hex.substr(16, 4), "-",
                      hex.substr(20));
}

std::string NewKey(std::string_view prefix) { return absl::StrCat(std::string(prefix), "-", NewUuid()); }

std::string Fill(std::string text, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [key, value] : values) {
    for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  }
  return text;
}

// ------------------------------------------------------------- checking --

std::string WebhookId(const ReceivedRequest& request) { return request.Header("webhook-id").value_or(""); }

std::string Describe(const ReceivedRequest& request) {
  std::ostringstream out;
  out << request.method << " " << request.target << " (connection " << request.connection << ", answered "
      << request.answered_status << ")\n";
  for (const auto& [k, v] : request.headers) out << k << ": " << v << "\n";
  out << "\n" << request.body;
  return out.str();
}

namespace {

::testing::AssertionResult ExactlyOnce(const ReceivedRequest& request, std::string_view name,
                                       std::optional<std::string>* value) {
  const std::vector<std::string> values = request.Headers(name);
  if (values.size() != 1) {
    return ::testing::AssertionFailure() << "header " << name << " occurs " << values.size()
                                         << " times, expected once\n"
                                         << Describe(request);
  }
  *value = values.front();
  return ::testing::AssertionSuccess();
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

}  // namespace

::testing::AssertionResult HasDeliveryHeaders(const ReceivedRequest& request, const CreatedWebhook& webhook,
                                              std::optional<std::string> content_language,
                                              std::optional<std::string> authorization) {
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure() << why << "\n" << Describe(request);
  };
  if (request.method != "POST") return fail("not a POST");
  std::optional<std::string> v;
  if (auto r = ExactlyOnce(request, "Content-Type", &v); !r) return r;
  if (*v != "application/json") return fail(absl::StrCat("Content-Type is \"", *v, "\", not application/json"));
  if (auto r = ExactlyOnce(request, "User-Agent", &v); !r) return r;
  if (*v != absl::StrCat("octo-webhooks/", OCTO_WEBHOOKS_VERSION)) {
    return fail(absl::StrCat("User-Agent is \"", *v, "\", not octo-webhooks/", OCTO_WEBHOOKS_VERSION));
  }
  if (auto r = ExactlyOnce(request, "webhook-id", &v); !r) return r;
  if (v->size() != 4 + 32 || v->rfind("msg_", 0) != 0 || !IsLowerHex(v->substr(4))) {
    return fail(absl::StrCat("webhook-id \"", *v, "\" is not msg_<32 lower-case hex digits>"));
  }
  if (auto r = ExactlyOnce(request, "webhook-timestamp", &v); !r) return r;
  int64_t ts = 0;
  if (!absl::SimpleAtoi(*v, &ts) || v->find_first_not_of("0123456789") != std::string::npos) {
    return fail(absl::StrCat("webhook-timestamp \"", *v, "\" is not decimal seconds"));
  }
  const int64_t received = std::chrono::duration_cast<std::chrono::seconds>(request.received_at.time_since_epoch()).count();
  if (ts < received - 60 || ts > received + 5) {
    return fail(absl::StrCat("webhook-timestamp ", ts, " is not the time of sending (received at ", received, ")"));
  }
  if (auto r = ExactlyOnce(request, "webhook-signature", &v); !r) return r;
  if (auto r = SignatureVerifies(request, webhook.secret); !r) return r;
  const std::vector<std::string> auth = request.Headers("Authorization");
  if (!authorization && !auth.empty()) return fail("unexpected Authorization header");
  if (authorization && (auth.size() != 1 || auth.front() != *authorization)) {
    return fail(absl::StrCat("Authorization is not exactly \"", *authorization, "\""));
  }
  const std::vector<std::string> lang = request.Headers("Content-Language");
  if (!content_language && !lang.empty()) return fail("unexpected Content-Language header");
  if (content_language && (lang.size() != 1 || lang.front() != *content_language)) {
    return fail(absl::StrCat("Content-Language is not exactly \"", *content_language, "\""));
  }
  if (request.Header("Location") || request.HeaderCount("Host") != 1) return fail("odd Host/Location headers");
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SignatureVerifies(const ReceivedRequest& request, const std::string& secret) {
  const std::string id = request.Header("webhook-id").value_or("");
  const std::string header = request.Header("webhook-signature").value_or("");
  int64_t ts = 0;
  if (!absl::SimpleAtoi(request.Header("webhook-timestamp").value_or(""), &ts)) {
    return ::testing::AssertionFailure() << "no usable webhook-timestamp\n" << Describe(request);
  }
  if (header.rfind("v1,", 0) != 0) {
    return ::testing::AssertionFailure() << "webhook-signature does not start with v1,\n" << Describe(request);
  }
  if (!payload::VerifySignatureHeader(header, id, ts, request.body, secret)) {
    return ::testing::AssertionFailure() << "webhook-signature does not verify with the webhook's secret\n"
                                         << Describe(request);
  }
  return ::testing::AssertionSuccess();
}

absl::StatusOr<NodeResult> VerifyWithNode(const ReceivedRequest& request, const std::string& secret,
                                          std::optional<std::string> body_override) {
  const char* verifier = std::getenv("OCTO_NODE_VERIFIER");
  if (verifier == nullptr || *verifier == '\0') {
    ADD_FAILURE() << "OCTO_NODE_VERIFIER is not set: it must name tests/node/verify.mjs after `npm ci` in "
                     "tests/node (scripts/test.sh does both)";
    return absl::FailedPreconditionError("OCTO_NODE_VERIFIER is not set");
  }
  if (!std::filesystem::exists(verifier)) {
    ADD_FAILURE() << "OCTO_NODE_VERIFIER names a missing file: " << verifier;
    return absl::FailedPreconditionError("verifier missing");
  }
  boost::json::object headers;
  for (const char* name : {"webhook-id", "webhook-timestamp", "webhook-signature"}) {
    headers[name] = request.Header(name).value_or("");
  }
  boost::json::object input;
  input["secret"] = secret;
  input["headers"] = std::move(headers);
  input["body"] = body_override.value_or(request.body);

  static std::atomic<int> counter{0};
  const std::string path = (std::filesystem::temp_directory_path() /
                            absl::StrCat("octo-node-verify-", ::getpid(), "-", counter++, ".json"))
                               .string();
  {
    std::ofstream out(path, std::ios::binary);
    out << boost::json::serialize(input);
  }
  const std::string command = absl::StrCat("node '", verifier, "' < '", path, "' 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    std::filesystem::remove(path);
    return absl::InternalError("popen node failed");
  }
  NodeResult result;
  char buf[1024];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  std::filesystem::remove(path);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// ------------------------------------------------------------- database --

std::vector<std::vector<std::string>> Db::Rows(const std::string& sql) const {
  std::vector<std::vector<std::string>> out;
  try {
    pqxx::connection c(conninfo_);
    pqxx::nontransaction tx(c);
    const pqxx::result r = tx.exec(sql);
    for (const auto& row : r) {
      std::vector<std::string> values;
      for (const auto& field : row) values.emplace_back(field.is_null() ? "<null>" : field.c_str());
      out.push_back(std::move(values));
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "SQL failed: " << sql << "\n" << e.what();
  }
  return out;
}

std::string Db::Scalar(const std::string& sql) const {
  const auto rows = Rows(sql);
  if (rows.size() != 1 || rows.front().size() != 1) {
    ADD_FAILURE() << "SQL answered " << rows.size() << " rows, expected one value: " << sql;
    return "";
  }
  return rows.front().front();
}

std::string SqlQuote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

}  // namespace octo::delivery_e2e
