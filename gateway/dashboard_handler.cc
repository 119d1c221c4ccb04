#include "gateway/dashboard_handler.h"

#include <exception>
#include <optional>
#include <string>
#include <utility>

#include <boost/beast/http/field.hpp>

#include "gateway/dashboard_assets.h"
#include "gateway/dashboard_http.h"
#include "gateway/octo_error.h"
#include "gateway/responses.h"
#include "services/common/log.h"

namespace octo::gateway {
namespace http = boost::beast::http;
namespace v1 = octo::webhooks::v1;

DashboardHandler::DashboardHandler(Options options, HttpHandler* inner, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      inner_(inner),
      operators_(v1::OperatorService::NewStub(channel)),
      subscriptions_(v1::SubscriptionService::NewStub(channel)),
      api_(options.api, operators_.get(), subscriptions_.get()) {
  for (int i = 0; i < std::max(1, options_.threads); ++i) workers_.emplace_back([this] { Work(); });
}

DashboardHandler::~DashboardHandler() { Stop(); }

void DashboardHandler::Stop() {
  std::deque<Job> queued;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    queued.swap(queue_);
  }
  cv_.notify_all();
  for (Job& job : queued) AnswerUnavailable(job);
  std::lock_guard join_lock(join_mu_);
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

void DashboardHandler::AnswerUnavailable(Job& job) {
  HttpResponse busy = DashboardError(Unavailable(), job.request.version());
  busy.keep_alive(job.request.keep_alive());
  job.done(HandlerResult{std::move(busy), "/dashboard/api"});
}

bool DashboardHandler::IsDashboardTarget(std::string_view target) {
  constexpr std::string_view kPrefix = "/dashboard";
  if (target.substr(0, kPrefix.size()) != kPrefix) return false;
  return target.size() == kPrefix.size() || target[kPrefix.size()] == '/' || target[kPrefix.size()] == '?';
}

void DashboardHandler::Work() {
  for (;;) {
    std::optional<Job> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job.emplace(std::move(queue_.front()));
      queue_.pop_front();
    }
    // Waited past its deadline: every backend call would fail anyway.
    if (std::chrono::system_clock::now() >= job->deadline) {
      AnswerUnavailable(*job);
      continue;
    }
    std::string route = "/dashboard/api";
    HttpResponse response;
    try {
      response = api_.Handle(job->request, route, job->deadline);
    } catch (const std::exception& e) {
      // A worker thread must not end the gateway: this request fails, the
      // others go on.
      log::Error("dashboard request failed", {{"route", route}, {"what", e.what()}});
      response = DashboardError(InternalError(), job->request.version());
    }
    response.keep_alive(job->request.keep_alive());
    job->done(HandlerResult{std::move(response), std::move(route)});
  }
}

HandlerResult DashboardHandler::Page(const HttpRequest& request) const {
  std::string_view path(request.target().data(), request.target().size());
  path = path.substr(0, path.find('?'));
  HttpResponse response;
  std::string route = "/dashboard/assets/:file";
  std::string_view file;
  if (path == "/dashboard") {
    response = HttpResponse(http::status::permanent_redirect, request.version());
    response.set(http::field::location, "/dashboard/");
    response.prepare_payload();
    AddSecurityHeaders(response);
    return {std::move(response), "/dashboard"};
  }
  if (path == "/dashboard/") {
    file = "index.html";
    route = "/dashboard/";
  } else if (path == "/dashboard/login") {
    file = "login.html";
    route = "/dashboard/login";
  } else if (path.substr(0, 18) == "/dashboard/assets/") {
    file = path.substr(18);
  }
  const std::optional<DashboardAsset> asset = file.empty() ? std::nullopt : FindDashboardAsset(file);
  if (!asset.has_value() || (file.find(".html") != std::string_view::npos && route == "/dashboard/assets/:file")) {
    return {DashboardError(BadRequest("No such dashboard page", http::status::not_found), request.version()),
            "unmatched"};
  }
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    HttpResponse r = DashboardError(BadRequest("Allowed: GET", http::status::method_not_allowed), request.version());
    r.set(http::field::allow, "GET, HEAD");
    return {std::move(r), route};
  }
  response = HttpResponse(http::status::ok, request.version());
  response.set(http::field::content_type, asset->content_type);
  response.set(http::field::cache_control, "no-cache");
  if (request.method() == http::verb::get) response.body() = std::string(asset->body);
  response.prepare_payload();
  if (request.method() == http::verb::head) response.content_length(asset->body.size());
  AddSecurityHeaders(response);
  return {std::move(response), route};
}

void DashboardHandler::Handle(HttpRequest request, Done done) {
  const std::string_view target(request.target().data(), request.target().size());
  if (!IsDashboardTarget(target)) return inner_->Handle(std::move(request), std::move(done));
  if (target.substr(0, 15) != "/dashboard/api/") {
    HandlerResult result = Page(request);
    result.response.keep_alive(request.keep_alive());
    return done(std::move(result));
  }
  {
    std::string route;
    if (std::optional<HttpResponse> early = DashboardApi::Precheck(request, route)) {
      early->keep_alive(request.keep_alive());
      return done(HandlerResult{*std::move(early), std::move(route)});
    }
  }
  Job job{std::move(request), std::move(done), std::chrono::system_clock::now() + options_.api.timeout};
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < options_.max_queue) {
      queue_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  AnswerUnavailable(job);
}

}  // namespace octo::gateway
