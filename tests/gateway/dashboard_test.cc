// The dashboard's pure parts: cookies, CSRF and origin checks, field errors,
// the bodies it reads, the embedded pages (no inline script or style), the
// handler's routing of /dashboard paths, and its routes in docs/openapi.yaml.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <iterator>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gateway/dashboard_api.h"
#include "gateway/dashboard_assets.h"
#include "gateway/dashboard_handler.h"
#include "gateway/dashboard_http.h"
#include "gateway/dashboard_json.h"
#include "gateway/openapi_document.h"

namespace octo::gateway {
namespace {

namespace http = boost::beast::http;
using ::testing::HasSubstr;
using ::testing::Not;

HttpRequest Request(http::verb verb, std::string target) {
  HttpRequest r(verb, target, 11);
  r.set(http::field::host, "127.0.0.1:8080");
  return r;
}

TEST(DashboardHttp, SessionCookieIsFoundAmongOthers) {
  HttpRequest r = Request(http::verb::get, "/dashboard/api/session");
  EXPECT_FALSE(SessionCookie(r).has_value());
  r.set(http::field::cookie, "a=1; octo_dashboard_session=ops_abc; b=2");
  EXPECT_EQ(SessionCookie(r).value_or(""), "ops_abc");
}

TEST(DashboardHttp, SecureCookieUsesTheHostPrefix) {
  const std::string secure = SessionSetCookie("ops_x", std::chrono::seconds(60), true);
  EXPECT_THAT(secure, HasSubstr("__Host-octo_dashboard_session=ops_x; Path=/;"));
  EXPECT_THAT(secure, HasSubstr("; Secure"));
  EXPECT_THAT(secure, Not(HasSubstr("Domain")));
  EXPECT_THAT(SessionClearCookie(true), HasSubstr("__Host-octo_dashboard_session=; Path=/; Max-Age=0"));
  HttpRequest r = Request(http::verb::get, "/dashboard/api/session");
  r.set(http::field::cookie, "octo_dashboard_session=plain; __Host-octo_dashboard_session=host");
  EXPECT_EQ(SessionCookie(r, true).value_or(""), "host");
  EXPECT_EQ(SessionCookie(r, false).value_or(""), "plain");
  r.set(http::field::cookie, "octo_dashboard_session=plain");
  EXPECT_FALSE(SessionCookie(r, true).has_value());  // a shadowing plain cookie is not taken
}

TEST(DashboardHttp, CookieAttributes) {
  const std::string plain = SessionSetCookie("ops_x", std::chrono::seconds(3600), false);
  EXPECT_THAT(plain, HasSubstr("octo_dashboard_session=ops_x"));
  EXPECT_THAT(plain, HasSubstr("HttpOnly"));
  EXPECT_THAT(plain, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(plain, HasSubstr("Max-Age=3600"));
  EXPECT_THAT(plain, HasSubstr("Path=/dashboard"));
  EXPECT_THAT(plain, Not(HasSubstr("Secure")));
  EXPECT_THAT(SessionSetCookie("ops_x", std::chrono::seconds(1), true), HasSubstr("; Secure"));
  EXPECT_THAT(SessionClearCookie(false), HasSubstr("Max-Age=0"));
}

// What the documents say of the cookie is what SessionSetCookie sets: both
// names, each with its Path.
TEST(DashboardHttp, DocumentsNameTheCookieOfEachMode) {
  const auto read = [](const std::string& relative) {
    std::ifstream in(std::string(OCTO_SOURCE_DIR) + "/" + relative);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string served(OpenApiDocument());
  for (const std::string& text : {served, read("docs/dashboard.md"), read("docs/decisions.md")}) {
    ASSERT_FALSE(text.empty());
    EXPECT_THAT(text, HasSubstr(std::string(kSecureSessionCookie)));
    EXPECT_THAT(text, HasSubstr("Path=/dashboard"));
  }
  EXPECT_THAT(SessionSetCookie("t", std::chrono::seconds(1), true), HasSubstr("Path=/;"));
}

TEST(DashboardHttp, CsrfNeedsTheSessionsToken) {
  HttpRequest r = Request(http::verb::post, "/dashboard/api/logout");
  EXPECT_EQ(CheckCsrf(r, "tok").code(), absl::StatusCode::kPermissionDenied);
  r.set(kCsrfHeader, "other");
  EXPECT_EQ(CheckCsrf(r, "tok").code(), absl::StatusCode::kPermissionDenied);
  r.set(kCsrfHeader, "tok");
  EXPECT_TRUE(CheckCsrf(r, "tok").ok());
}

TEST(DashboardHttp, OriginMustBeTheHost) {
  HttpRequest r = Request(http::verb::post, "/dashboard/api/login");
  EXPECT_TRUE(CheckSameOrigin(r).ok());
  r.set(http::field::origin, "http://127.0.0.1:8080");
  EXPECT_TRUE(CheckSameOrigin(r).ok());
  r.set(http::field::origin, "http://evil.example");
  EXPECT_EQ(CheckSameOrigin(r).code(), absl::StatusCode::kPermissionDenied);
  r.erase(http::field::origin);
  r.set(http::field::referer, "http://evil.example/x");
  EXPECT_EQ(CheckSameOrigin(r).code(), absl::StatusCode::kPermissionDenied);
}

TEST(DashboardHttp, FieldOfValidationMessages) {
  EXPECT_EQ(FieldOfMessage("url: must be an absolute http or https URL"), "url");
  EXPECT_EQ(FieldOfMessage("headers.X-A: must be a string"), "headers");
  EXPECT_EQ(FieldOfMessage("The request body is not valid JSON: x"), "");
  const HttpResponse r = DashboardError(BadRequest("url: bad"), 11);
  EXPECT_THAT(r.body(), HasSubstr(R"("field":"url")"));
  EXPECT_EQ(r["Content-Security-Policy"], kDashboardCsp);
}

TEST(DashboardStatusError, BackendInternalsAreNeverAnswered) {
  const auto body = [](const absl::Status& s) { return std::string(DashboardStatusError(s, 11).body()); };
  for (const absl::Status& s :
       {absl::PermissionDeniedError("update_webhook (SQLSTATE 42501): permission denied for table webhooks"),
        absl::FailedPreconditionError("update_webhook (SQLSTATE 23514): constraint violated"),
        absl::FailedPreconditionError("update_webhook: a referenced row does not exist (SQLSTATE 23503)"),
        absl::AlreadyExistsError("create_operator: already exists (SQLSTATE 23505)"),
        absl::InvalidArgumentError("update_webhook: rejected by a database constraint (SQLSTATE 23514)")}) {
    EXPECT_THAT(body(s), Not(HasSubstr("SQLSTATE"))) << s;
    EXPECT_THAT(body(s), Not(HasSubstr("update_webhook"))) << s;
  }
  EXPECT_EQ(DashboardStatusError(absl::PermissionDeniedError("x"), 11).result(), http::status::forbidden);
  // Messages written for partners still reach the form.
  EXPECT_THAT(body(absl::AlreadyExistsError("name: an operator with this name already exists")),
              HasSubstr("an operator with this name already exists"));
  EXPECT_THAT(body(absl::FailedPreconditionError("webhookId: the webhook is disabled; enable it first")),
              HasSubstr("enable it first"));
  // The gateway's own checks keep their message.
  EXPECT_THAT(std::string(DashboardForbidden(absl::PermissionDeniedError("Missing or wrong X-CSRF-Token: reload the page"), 11).body()),
              HasSubstr("X-CSRF-Token"));
}

TEST(DashboardStatusError, NotFoundIsOneAnswerForUnknownAndForeign) {
  const HttpResponse r = DashboardStatusError(absl::NotFoundError("no such webhook"), 11, kInvalidWebhookId,
                                              "webhookId", "abc");
  EXPECT_EQ(r.result(), http::status::not_found);
  EXPECT_EQ(r.body(),
            R"({"error":"INVALID_WEBHOOK_ID","errorMessage":"Not found: it does not exist, or is not yours","webhookId":"abc"})");
}

TEST(DashboardJson, CreateBodyTakesConnectionAndCapabilities) {
  auto r = ParseDashboardCreateBody(
      R"({"connectionId":"c1","url":"https://x.test/h","event":"booking_update","capabilities":["octo/pricing"],)"
      R"("headers":{"Content-Type":"application/json"},"retryOnError":false})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->connection_id(), "c1");
  EXPECT_THAT(r->capabilities(), testing::ElementsAre("octo/pricing"));
  EXPECT_FALSE(r->retry_on_error());
  EXPECT_EQ(r->headers().at("Content-Type"), "application/json");
  EXPECT_THAT(std::string(ParseDashboardCreateBody(R"({"url":"https://x.test"})").status().message()),
              HasSubstr("connectionId:"));
  EXPECT_THAT(std::string(ParseDashboardCreateBody(R"({"connectionId":"c","connectionId":"d"})").status().message()),
              HasSubstr("given twice"));
  EXPECT_FALSE(ParseDashboardCreateBody(R"({"connectionId":"c","url":"u","event":"e","bogus":1})").ok());
}

TEST(DashboardJson, LoginAndFilter) {
  EXPECT_TRUE(ParseLoginBody(R"({"name":"a","password":"b"})").ok());
  EXPECT_FALSE(ParseLoginBody(R"({"name":"a"})").ok());
  EXPECT_FALSE(ParseLoginBody(R"({"name":"a","password":"b","x":1})").ok());
  auto f = ParseWebhookFilter("/dashboard/api/webhooks?connectionId=c&event=booking_update&status=disabled");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->connection_id(), "c");
  EXPECT_EQ(f->status(), octo::webhooks::v1::WEBHOOK_STATUS_DISABLED);
  EXPECT_FALSE(ParseWebhookFilter("/x?status=maybe").ok());
  EXPECT_FALSE(ParseWebhookFilter("/x?event=a&event=b").ok());
}

TEST(DashboardJson, CapabilitiesIncludeTheOctoTypesOnes) {
  const std::string text = boost::json::serialize(KnownCapabilitiesJson());
  EXPECT_THAT(text, HasSubstr("\"octo/pricing\""));
  EXPECT_THAT(text, HasSubstr("\"octo/questions\""));
  EXPECT_THAT(text, HasSubstr("\"octo/content\""));
}

TEST(DashboardAssets, PagesHaveNoInlineScriptOrStyle) {
  for (const char* name : {"index.html", "login.html"}) {
    const auto asset = FindDashboardAsset(name);
    ASSERT_TRUE(asset.has_value()) << name;
    const std::string html(asset->body);
    EXPECT_FALSE(std::regex_search(html, std::regex("<script(?![^>]*\\bsrc=)[^>]*>"))) << name;
    EXPECT_FALSE(std::regex_search(html, std::regex("\\sstyle\\s*="))) << name;
    EXPECT_FALSE(std::regex_search(html, std::regex("\\son[a-z]+\\s*="))) << name;
    EXPECT_THAT(html, Not(HasSubstr("http://"))) << name;
    EXPECT_THAT(html, Not(HasSubstr("https://"))) << name;
  }
  EXPECT_TRUE(FindDashboardAsset("app.js").has_value());
  EXPECT_EQ(FindDashboardAsset("style.css")->content_type, "text/css; charset=utf-8");
  EXPECT_FALSE(FindDashboardAsset("../main.cc").has_value());
}

TEST(DashboardHandler, ClaimsOnlyDashboardTargets) {
  EXPECT_TRUE(DashboardHandler::IsDashboardTarget("/dashboard"));
  EXPECT_TRUE(DashboardHandler::IsDashboardTarget("/dashboard/"));
  EXPECT_TRUE(DashboardHandler::IsDashboardTarget("/dashboard/api/session"));
  EXPECT_FALSE(DashboardHandler::IsDashboardTarget("/dashboards"));
  EXPECT_FALSE(DashboardHandler::IsDashboardTarget("/octo/webhooks"));
}

// The handler's queue. The backend is a loopback socket that never answers
// (connections wait in its backlog), so a backend call lasts its deadline.
class SilentBackend {
 public:
  SilentBackend() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentBackend() { ::close(fd_); }
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class NoInner final : public HttpHandler {
 public:
  void Handle(HttpRequest, Done) override { ADD_FAILURE() << "not a dashboard request"; }
};

HttpRequest SessionRequest(std::string target) {
  HttpRequest r = Request(http::verb::get, std::move(target));
  r.set(http::field::cookie, "octo_dashboard_session=made-up");
  return r;
}

std::string ErrorCode(const HandlerResult& result) {
  return std::string(boost::json::parse(result.response.body()).as_object().at("error").as_string());
}

DashboardHandler::Options QueueOptions(std::chrono::milliseconds timeout, int threads) {
  DashboardHandler::Options options;
  options.api.timeout = timeout;
  options.threads = threads;
  return options;
}

TEST(DashboardHandler, AnswersWhatNeedsNoBackendOnTheCallingThread) {
  SilentBackend backend;
  NoInner inner;
  DashboardHandler handler(QueueOptions(std::chrono::seconds(30), 1), &inner, backend.Channel());
  const auto answer = [&](HttpRequest request) {
    std::optional<HandlerResult> out;
    handler.Handle(std::move(request), [&](HandlerResult r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value()) << "answered later, on a worker";
    return out.value_or(HandlerResult{});
  };
  HandlerResult unknown = answer(SessionRequest("/dashboard/api/no/such/route"));
  EXPECT_EQ(unknown.response.result(), http::status::not_found);
  EXPECT_EQ(unknown.route, "unmatched");
  HandlerResult method = answer(Request(http::verb::delete_, "/dashboard/api/session"));
  EXPECT_EQ(method.response.result(), http::status::method_not_allowed);
  HandlerResult no_cookie = answer(Request(http::verb::get, "/dashboard/api/webhooks"));
  EXPECT_EQ(no_cookie.response.result(), http::status::unauthorized);
  HandlerResult caps = answer(Request(http::verb::get, "/dashboard/api/capabilities"));
  EXPECT_EQ(caps.response.result(), http::status::ok);
}

TEST(DashboardHandler, RequestWhoseDeadlinePassedInTheQueueAnswers503) {
  SilentBackend backend;
  NoInner inner;
  DashboardHandler handler(QueueOptions(std::chrono::milliseconds(0), 1), &inner, backend.Channel());
  std::promise<HandlerResult> answered;
  handler.Handle(SessionRequest("/dashboard/api/session"), [&](HandlerResult r) { answered.set_value(std::move(r)); });
  HandlerResult result = answered.get_future().get();
  EXPECT_EQ(result.response.result(), http::status::service_unavailable);
  EXPECT_EQ(result.response[http::field::retry_after], "1");
  EXPECT_EQ(ErrorCode(result), "INTERNAL_SERVER_ERROR");
  EXPECT_THAT(std::string(result.response["Content-Security-Policy"]), HasSubstr("default-src 'none'"));
}

TEST(DashboardHandler, StopAnswersQueuedRequestsAndNoCallbackRunsAfterIt) {
  SilentBackend backend;
  NoInner inner;
  DashboardHandler handler(QueueOptions(std::chrono::seconds(2), 1), &inner, backend.Channel());
  std::atomic<int> answered{0};
  std::atomic<int> unavailable{0};
  for (int i = 0; i < 4; ++i) {
    handler.Handle(SessionRequest("/dashboard/api/session"), [&](HandlerResult r) {
      if (r.response.result() == http::status::service_unavailable) ++unavailable;
      ++answered;
    });
  }
  handler.Stop();
  EXPECT_EQ(answered.load(), 4);
  EXPECT_EQ(unavailable.load(), 4);  // queued, or past their backend deadline
  std::optional<HandlerResult> late;
  handler.Handle(SessionRequest("/dashboard/api/session"), [&](HandlerResult r) { late = std::move(r); });
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->response.result(), http::status::service_unavailable);
  handler.Stop();  // idempotent; the destructor calls it again
}

// Runs tests/openapi/check.mjs with the dashboard's routes.
TEST(DashboardOpenApi, DocumentsEveryDashboardRoute) {
  const char* checker = std::getenv("OCTO_OPENAPI_CHECK");
  ASSERT_TRUE(checker != nullptr && *checker != '\0') << "OCTO_OPENAPI_CHECK is not set (scripts/test.sh sets it)";
  boost::json::array routes;
  for (const auto& [method, path] : DashboardApi::Routes()) routes.push_back(boost::json::object{{"method", method}, {"path", path}});
  const std::string input =
      (std::filesystem::temp_directory_path() / absl::StrCat("octo-dashboard-routes-", ::getpid(), ".json")).string();
  std::ofstream(input, std::ios::binary) << boost::json::serialize(routes);
  const std::string command =
      absl::StrCat("node '", checker, "' '", OCTO_SOURCE_DIR "/docs/openapi.yaml' < '", input, "' 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[1024];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = ::pclose(pipe);
  std::filesystem::remove(input);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_THAT(output, HasSubstr(absl::StrCat(routes.size(), " routes documented")));
}

}  // namespace
}  // namespace octo::gateway
