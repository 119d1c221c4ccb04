#include "gateway/readiness_probe.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gateway/json_body.h"
#include "gateway/octo_error.h"
#include "gateway/responses.h"

namespace octo::gateway {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace health = grpc::health::v1;

namespace {

// The /readyz checks, run in parallel; the last one to finish answers.
class ReadinessProbe : public std::enable_shared_from_this<ReadinessProbe> {
 public:
  struct Check {
    const char* name;     // in the response body
    const char* service;  // grpc.health.v1 service name
    std::string result;   // "SERVING", "NOT_SERVING", "UNAVAILABLE", ...
  };

  ReadinessProbe(unsigned http_version, bool keep_alive, std::string echo, std::string route,
                 HttpHandler::Done done)
      : http_version_(http_version),
        keep_alive_(keep_alive),
        echo_(std::move(echo)),
        route_(std::move(route)),
        done_(std::move(done)),
        checks_{{"subscription", kOverallHealthService, ""},
                {"postgres", kPostgresHealthService, ""}},
        pending_(static_cast<int>(checks_.size())) {}

  void Start(SubscriptionBackend* backend, SubscriptionBackend::Deadline deadline) {
    for (std::size_t i = 0; i < checks_.size(); ++i) {
      health::HealthCheckRequest request;
      request.set_service(checks_[i].service);
      backend->CheckHealth(
          request, deadline,
          [self = shared_from_this(), i](absl::StatusOr<health::HealthCheckResponse> r) {
            self->OnResult(i, r);
          });
    }
  }

 private:
  void OnResult(std::size_t i, const absl::StatusOr<health::HealthCheckResponse>& r) {
    {
      std::lock_guard lock(mu_);
      checks_[i].result = r.ok() ? health::HealthCheckResponse::ServingStatus_Name(r->status())
                                 : absl::StatusCodeToString(r.status().code());
    }
    if (--pending_ == 0) Answer();
  }

  void Answer() {
    std::lock_guard lock(mu_);
    json::object checks;
    std::vector<std::string> failed;
    for (const Check& check : checks_) {
      checks[check.name] = check.result;
      if (check.result != "SERVING")
        failed.push_back(absl::StrCat(check.name, " (", check.result, ")"));
    }
    json::object body;
    HttpResponse response;
    if (failed.empty()) {
      body["status"] = "ready";
      body["checks"] = std::move(checks);
      response = JsonResponse(http::status::ok, http_version_, JsonText(body));
    } else {
      body["status"] = "unready";
      body["error"] = kInternalServerError;
      body["errorMessage"] = absl::StrCat("Not ready: ", absl::StrJoin(failed, ", "));
      body["checks"] = std::move(checks);
      response =
          JsonResponse(http::status::service_unavailable, http_version_, JsonText(body));
    }
    response.set("Octo-Capabilities", echo_);
    response.keep_alive(keep_alive_);
    HttpHandler::Done done = std::move(done_);
    done(HandlerResult{std::move(response), route_});
  }

  const unsigned http_version_;
  const bool keep_alive_;
  const std::string echo_;
  const std::string route_;
  HttpHandler::Done done_;
  std::mutex mu_;
  std::vector<Check> checks_;  // results guarded by mu_
  std::atomic<int> pending_;
};

}  // namespace

void ProbeReadiness(SubscriptionBackend* backend, SubscriptionBackend::Deadline deadline,
                    const HttpRequest& request, std::string capabilities_echo, std::string route,
                    HttpHandler::Done done) {
  auto probe = std::make_shared<ReadinessProbe>(request.version(), request.keep_alive(),
                                                std::move(capabilities_echo), std::move(route),
                                                std::move(done));
  probe->Start(backend, deadline);
}

}  // namespace octo::gateway
