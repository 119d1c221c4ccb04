#pragma once
// The system under test for end-to-end tests: a fresh database on the
// throwaway cluster (OCTO_TEST_PG), the real octo-subscription and
// octo-gateway processes on 127.0.0.1 with kernel-chosen ports, and an
// AdminService client to create tenants over real gRPC.
//
// Example:
//   E2eStack stack;                       // CREATE DATABASE; throws without OCTO_TEST_PG
//   ASSERT_OK(stack.StartAll());
//   auto tenant = stack.CreateTenant();   // supplier + connection + API key
//   RestApi api(stack.gateway_port(), tenant->api_key);
//   ...
//   stack.StopAll();                      // SIGTERM both; exit codes checked by the caller
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "octo/webhooks/v1/webhooks.grpc.pb.h"
#include "tests/support/http_client.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/process.h"
#include "tests/support/test_callers.h"

namespace octo::e2e {

// What a partner holds: one connection of its own supplier and a bearer key.
struct Tenant {
  std::string supplier_id;
  std::string connection_id;
  std::string api_key_id;
  std::string api_key;
};

struct StackOptions {
  std::string base_path = "/octo";
  int max_body_bytes = 65536;
  // Further flags for octo-subscription (e.g. --delivery_target=...).
  std::vector<std::string> subscription_args;
  // octo-subscription's --allow_destination_cidrs (SSRF guard): the test
  // receivers run on loopback. "" = production (public addresses only).
  std::string allow_destination_cidrs = "127.0.0.0/8,::1/128";
  // Further flags for octo-gateway. The default switches its per-key and
  // per-address limits off: every test client shares 127.0.0.1 and some
  // tests send bursts on purpose; the tests of the limits set their own.
  std::vector<std::string> gateway_args = {"--key_rate_limit=0", "--address_rate_limit=0",
                                           "--max_connections_per_address=0"};
  // Replicas StartAll starts (tests/faults/cluster_test.cc runs several).
  // With more than one subscription replica every gateway is pointed at all
  // of them: --subscription_target=ipv4:127.0.0.1:a,127.0.0.1:b (the
  // gateway's channel balances round-robin).
  int subscription_replicas = 1;
  int gateway_replicas = 1;
};

// Not thread-safe. Start from the test's main thread (see process.h).
class E2eStack {
 public:
  // Creates the database; throws (and records a test failure) when
  // OCTO_TEST_PG is missing or the cluster is unreachable.
  explicit E2eStack(StackOptions options = {});
  ~E2eStack();  // kills what still runs, then drops the database

  // Starts octo-subscription (replica `replica`, 0 unless a test runs
  // several); `port` 0 lets the kernel choose. Waits for its port file. The
  // message of a failure carries the service's log tail.
  absl::Status StartSubscription(int port = 0, int replica = 0);
  // Starts octo-gateway `replica` against the running (or last) subscription
  // port(s); a restarted replica listens on its previous port.
  absl::Status StartGateway(int replica = 0);
  // Every subscription replica, then every gateway replica.
  absl::Status StartAll();

  // SIGTERM and wait; the result says whether the exit was clean.
  testing::ExitInfo StopGateway(int replica = 0);
  testing::ExitInfo StopSubscription(int replica = 0);
  // kill -9 (a crash); StartGateway(replica) starts it again on its port.
  testing::ExitInfo KillGateway(int replica);
  // kill -9 of a subscription replica other than 0 (which the admin calls
  // use); remembered until it is started again, so that a clean stop of the
  // stack leaves it alone (subscription_killed).
  testing::ExitInfo KillSubscription(int replica);
  bool subscription_killed(int replica) const { return At(subscriptions_, replica).killed; }

  int gateway_replicas() const { return static_cast<int>(gateways_.size()); }
  int subscription_replicas() const { return static_cast<int>(subscriptions_.size()); }
  int gateway_port(int replica = 0) const { return At(gateways_, replica).port; }
  // The gateway's metrics listener (GET /metrics), on 127.0.0.1.
  int gateway_metrics_port(int replica = 0) const { return At(gateways_, replica).metrics_port; }
  int subscription_port(int replica = 0) const { return At(subscriptions_, replica).port; }
  testing::ChildProcess* gateway(int replica = 0) { return At(gateways_, replica).child.get(); }
  testing::ChildProcess* subscription(int replica = 0) { return At(subscriptions_, replica).child.get(); }
  const std::string& database_url() const { return db_.conninfo(); }
  const StackOptions& options() const { return options_; }
  // The internal callers' tokens the services of this stack accept.
  const testing::TestCallers& callers() const { return callers_; }
  // Read by the next Start*() (e.g. subscription_args once a port is known).
  StackOptions& mutable_options() { return options_; }
  // Where the logs and port files live: removed after a passing run, kept
  // (and printed) after a failure or when OCTO_E2E_KEEP_LOGS=1.
  const std::string& dir() const { return dir_; }

  // Over AdminService: a new supplier, one connection (max_webhooks 0 = the
  // service default) and one API key.
  absl::StatusOr<Tenant> CreateTenant(int max_webhooks = 0);
  // Another API key for an existing connection.
  absl::StatusOr<Tenant> AddKey(const Tenant& tenant);
  absl::Status RevokeKey(const std::string& api_key_id);

  // The log tails of both services, for failure messages.
  std::string LogTails() const;

 private:
  // One running (or stopped) service process and where it listens.
  struct Replica {
    std::unique_ptr<testing::ChildProcess> child;
    int port = 0;
    int metrics_port = 0;
    bool killed = false;  // by KillSubscription, not started since
  };
  static const Replica& At(const std::vector<Replica>& replicas, int i);
  static Replica& Slot(std::vector<Replica>& replicas, int i);
  webhooks::v1::AdminService::Stub& Admin();
  // The gateways' --subscription_target: one address, or all of them.
  std::string SubscriptionTarget() const;

  StackOptions options_;
  testing::TestCallers callers_;
  testing::TestDatabase db_;
  std::string dir_;
  int starts_ = 0;  // numbers the log and port files of successive starts
  std::vector<Replica> subscriptions_;
  std::vector<Replica> gateways_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<webhooks::v1::AdminService::Stub> admin_;
};

// The OCTO REST API of one key, over real HTTP. Every call returns the
// response; a transport failure records a test failure and returns status 0.
class RestApi {
 public:
  RestApi(int port, std::string api_key, std::string base_path = "/octo");

  const std::string& base() const { return base_; }
  std::string WebhooksPath() const { return base_ + "/webhooks"; }
  std::string WebhookPath(const std::string& id) const { return base_ + "/webhooks/" + id; }

  // JSON requests with "Authorization: Bearer <key>" and
  // "Content-Type: application/json"; `extra` headers are added.
  testing::HttpResponse Create(const std::string& body, const testing::HttpHeaders& extra = {});
  testing::HttpResponse List(const testing::HttpHeaders& extra = {});
  testing::HttpResponse Get(const std::string& id, const testing::HttpHeaders& extra = {});
  testing::HttpResponse Patch(const std::string& id, const std::string& body,
                              const testing::HttpHeaders& extra = {});
  testing::HttpResponse Delete(const std::string& id, const testing::HttpHeaders& extra = {});

  // Any request; the bearer header is added when `authorize`.
  testing::HttpResponse Send(testing::HttpRequest request, bool authorize = true);

  testing::HttpClient& http() { return http_; }
  const std::string& api_key() const { return api_key_; }

 private:
  testing::HttpClient http_;
  std::string api_key_;
  std::string base_;
};

}  // namespace octo::e2e
