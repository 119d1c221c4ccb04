#include "tests/delivery_e2e/notifications_test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_stack.h"

namespace octo::delivery_e2e {

absl::StatusOr<CreatedWebhook> Subscribe(DeliveryStack& stack, const e2e::Tenant& tenant,
                                         const std::string& types_json, const std::string& url,
                                         const std::string& more) {
  e2e::RestApi api(stack.gateway_port(), tenant.api_key);
  testing::HttpRequest request;
  request.method = "POST";
  request.target = "/octo/notifications/subscriptions";
  request.headers = {{"Content-Type", "application/json"}, {"Octo-Capabilities", "notifications"}};
  request.body = absl::StrCat(R"({"url":)", Q(url), R"(,"notificationTypes":)", types_json, more, "}");
  testing::HttpResponse r = api.Send(request);
  if (r.status != 201) {
    return absl::InternalError(absl::StrCat("POST subscriptions ", *request.body, ": HTTP ", r.status, " ", r.body));
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("id") || !v.as_object().contains("secret")) {
    return absl::InternalError(absl::StrCat("POST subscriptions: unexpected answer ", r.body));
  }
  CreatedWebhook out;
  out.id = std::string(v.as_object().at("id").as_string());
  out.secret = std::string(v.as_object().at("secret").as_string());
  out.url = url;
  return out;
}

std::string ThinBody(const ReceivedRequest& request, const std::string& type, const std::string& timestamp,
                     const std::string& data_json, bool any_time) {
  std::string time = timestamp;
  if (any_time) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(request.body, ec);
    const boost::json::value* t = ec || !v.is_object() ? nullptr : v.as_object().if_contains("timestamp");
    if (t == nullptr || !t->is_string() || t->as_string().empty() || t->as_string().back() != 'Z') {
      ADD_FAILURE() << "no UTC timestamp in " << request.body;
    } else {
      time = std::string(t->as_string());
    }
  }
  return absl::StrCat(R"({"id":)", Q(WebhookId(request)), R"(,"type":)", Q(type), R"(,"timestamp":)", Q(time),
                      R"(,"data":)", data_json, "}");
}

NodeResult RunVerifier(const std::string& command, const ReceivedRequest& request, const std::string& secret,
                       const std::string& body) {
  boost::json::object headers;
  for (const char* name : {"webhook-id", "webhook-timestamp", "webhook-signature"}) {
    headers[name] = request.Header(name).value_or("");
  }
  boost::json::object input;
  input["secret"] = secret;
  input["headers"] = std::move(headers);
  input["body"] = body;
  static std::atomic<int> counter{0};
  const std::string path =
      (std::filesystem::temp_directory_path() / absl::StrCat("octo-guide-verify-", ::getpid(), "-", counter++, ".json"))
          .string();
  {
    std::ofstream out(path, std::ios::binary);
    out << boost::json::serialize(input);
  }
  NodeResult result;
  FILE* pipe = ::popen(absl::StrCat("(", command, ") < '", path, "' 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    std::filesystem::remove(path);
    result.output = "popen failed";
    return result;
  }
  char buf[1024];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  std::filesystem::remove(path);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace octo::delivery_e2e
