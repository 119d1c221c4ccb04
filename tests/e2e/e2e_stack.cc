#include "tests/e2e/e2e_stack.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/common/status.h"

#ifndef OCTO_SUBSCRIPTION_BIN
#error "OCTO_SUBSCRIPTION_BIN must name the octo-subscription binary"
#endif
#ifndef OCTO_GATEWAY_BIN
#error "OCTO_GATEWAY_BIN must name the octo-gateway binary"
#endif

namespace octo::e2e {
namespace {

namespace v1 = ::octo::webhooks::v1;
using namespace std::chrono_literals;

constexpr auto kStartTimeout = 20s;  // generous: two cores shared with builds
constexpr auto kStopTimeout = 10s;

std::string MakeTempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "octo-e2e-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + 10s);
  return ctx;
}

absl::Status RpcStatus(std::string_view rpc, const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  absl::Status status = FromGrpcStatus(s);
  return absl::Status(status.code(), absl::StrCat(std::string(rpc), ": ", std::string(status.message())));
}

}  // namespace

E2eStack::E2eStack(StackOptions options) : options_(std::move(options)), dir_(MakeTempDir()) {}

E2eStack::~E2eStack() {
  for (Replica& gateway : gateways_) {
    if (gateway.child) gateway.child->Kill9();
  }
  for (Replica& subscription : subscriptions_) {
    if (subscription.child) subscription.child->Kill9();
  }
  const bool failed = ::testing::Test::HasFailure() ||
                      ::testing::UnitTest::GetInstance()->failed_test_count() > 0;
  const char* keep = std::getenv("OCTO_E2E_KEEP_LOGS");
  if (failed || (keep != nullptr && *keep != '\0' && std::string_view(keep) != "0")) {
    std::cerr << "e2e: service logs kept in " << dir_ << "\n";
  } else {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

const E2eStack::Replica& E2eStack::At(const std::vector<Replica>& replicas, int i) {
  static const Replica kNeverStarted;
  if (i < 0 || i >= static_cast<int>(replicas.size())) return kNeverStarted;
  return replicas[static_cast<std::size_t>(i)];
}

E2eStack::Replica& E2eStack::Slot(std::vector<Replica>& replicas, int i) {
  if (i < 0) throw std::logic_error("E2eStack: negative replica number");
  if (i >= static_cast<int>(replicas.size())) replicas.resize(static_cast<std::size_t>(i) + 1);
  return replicas[static_cast<std::size_t>(i)];
}

absl::Status E2eStack::StartSubscription(int port, int replica) {
  const int n = ++starts_;
  const std::string port_file = absl::StrCat(dir_, "/subscription-", n, ".port");
  std::vector<std::string> args = {absl::StrCat("--grpc_listen=127.0.0.1:", port),
                                   "--database_url=" + db_.conninfo(), "--port_file=" + port_file,
                                   "--allow_destination_cidrs=" + options_.allow_destination_cidrs};
  // Several replicas on one machine: each its own metrics port.
  if (options_.subscription_replicas > 1) args.push_back("--metrics_listen=127.0.0.1:0");
  for (std::string& flag : callers_.SubscriptionFlags()) args.push_back(std::move(flag));
  args.insert(args.end(), options_.subscription_args.begin(), options_.subscription_args.end());
  auto child = testing::ChildProcess::Start({
      .binary = OCTO_SUBSCRIPTION_BIN,
      .args = std::move(args),
      .env = {},
      .log_path = absl::StrCat(dir_, "/subscription-", n, ".log"),
  });
  if (!child.ok()) return child.status();
  Replica& slot = Slot(subscriptions_, replica);
  slot.child = *std::move(child);
  slot.killed = false;
  auto bound = slot.child->WaitForPortFile(port_file, kStartTimeout);
  if (!bound.ok()) return bound.status();
  slot.port = *bound;
  if (replica == 0) {
    admin_.reset();  // connects on first use
    channel_.reset();
  }
  return absl::OkStatus();
}

std::string E2eStack::SubscriptionTarget() const {
  if (subscriptions_.size() <= 1) return absl::StrCat("127.0.0.1:", subscription_port());
  std::string target = "ipv4:";
  for (std::size_t i = 0; i < subscriptions_.size(); ++i) {
    absl::StrAppend(&target, i == 0 ? "" : ",", "127.0.0.1:", subscriptions_[i].port);
  }
  return target;
}

absl::Status E2eStack::StartGateway(int replica) {
  if (subscription_port() == 0) return absl::FailedPreconditionError("start the subscription service first");
  Replica& slot = Slot(gateways_, replica);
  const int n = ++starts_;
  const std::string port_file = absl::StrCat(dir_, "/gateway-", n, ".port");
  const std::string metrics_port_file = absl::StrCat(dir_, "/gateway-", n, "-metrics.port");
  std::vector<std::string> args = {
      absl::StrCat("--listen=127.0.0.1:", slot.port), "--subscription_target=" + SubscriptionTarget(),
      "--port_file=" + port_file, "--base_path=" + options_.base_path,
      absl::StrCat("--max_body_bytes=", options_.max_body_bytes), "--metrics_listen=127.0.0.1:0",
      "--metrics_port_file=" + metrics_port_file,
      "--subscription_token_file=" + callers_.TokenFile("gateway")};
  args.insert(args.end(), options_.gateway_args.begin(), options_.gateway_args.end());
  auto child = testing::ChildProcess::Start({
      .binary = OCTO_GATEWAY_BIN,
      .args = std::move(args),
      .env = {},
      .log_path = absl::StrCat(dir_, "/gateway-", n, ".log"),
  });
  if (!child.ok()) return child.status();
  slot.child = *std::move(child);
  auto bound = slot.child->WaitForPortFile(port_file, kStartTimeout);
  if (!bound.ok()) return bound.status();
  slot.port = *bound;
  auto metrics_bound = slot.child->WaitForPortFile(metrics_port_file, kStartTimeout);
  if (!metrics_bound.ok()) return metrics_bound.status();
  slot.metrics_port = *metrics_bound;
  return absl::OkStatus();
}

absl::Status E2eStack::StartAll() {
  for (int i = 0; i < std::max(1, options_.subscription_replicas); ++i) {
    if (absl::Status s = StartSubscription(0, i); !s.ok()) return s;
  }
  for (int i = 0; i < std::max(1, options_.gateway_replicas); ++i) {
    if (absl::Status s = StartGateway(i); !s.ok()) return s;
  }
  return absl::OkStatus();
}

testing::ExitInfo E2eStack::StopGateway(int replica) {
  testing::ChildProcess* child = gateway(replica);
  if (child == nullptr) return {};
  return child->Terminate(kStopTimeout);
}

testing::ExitInfo E2eStack::KillGateway(int replica) {
  testing::ChildProcess* child = gateway(replica);
  if (child == nullptr) return {};
  return child->Kill9();
}

testing::ExitInfo E2eStack::KillSubscription(int replica) {
  if (replica == 0) throw std::logic_error("E2eStack: subscription replica 0 serves the admin calls");
  testing::ChildProcess* child = subscription(replica);
  if (child == nullptr) return {};
  Slot(subscriptions_, replica).killed = true;
  return child->Kill9();
}

testing::ExitInfo E2eStack::StopSubscription(int replica) {
  testing::ChildProcess* child = subscription(replica);
  if (child == nullptr) return {};
  // Close the admin connection first: the service's graceful shutdown waits
  // for connected clients to go away (up to a few seconds).
  admin_.reset();
  channel_.reset();
  return child->Terminate(kStopTimeout);
}

v1::AdminService::Stub& E2eStack::Admin() {
  if (!admin_) {
    if (subscription_port() == 0) throw std::logic_error("E2eStack: the subscription service was never started");
    channel_ = callers_.Channel(absl::StrCat("127.0.0.1:", subscription_port()), "admin");
    admin_ = v1::AdminService::NewStub(channel_);
  }
  return *admin_;
}

absl::StatusOr<Tenant> E2eStack::CreateTenant(int max_webhooks) {
  static int counter = 0;
  ++counter;
  Tenant tenant;

  v1::CreateSupplierRequest supplier_req;
  supplier_req.set_name(absl::StrCat("E2E Tours ", counter));
  supplier_req.set_endpoint("https://api.e2e-tours.example/octo");
  supplier_req.mutable_contact()->set_email("ops@e2e-tours.example");
  v1::Supplier supplier;
  if (auto s = RpcStatus("CreateSupplier", Admin().CreateSupplier(Context().get(), supplier_req, &supplier));
      !s.ok()) {
    return s;
  }
  tenant.supplier_id = supplier.id();

  v1::CreateConnectionRequest connection_req;
  connection_req.set_supplier_id(supplier.id());
  connection_req.set_name(absl::StrCat("partner-", counter));
  connection_req.set_max_webhooks(max_webhooks);
  v1::Connection connection;
  if (auto s = RpcStatus("CreateConnection",
                         Admin().CreateConnection(Context().get(), connection_req, &connection));
      !s.ok()) {
    return s;
  }
  tenant.connection_id = connection.id();
  if (max_webhooks > 0 && connection.max_webhooks() != max_webhooks) {
    return absl::InternalError(absl::StrCat("CreateConnection: max_webhooks ", connection.max_webhooks(),
                                            ", asked for ", max_webhooks));
  }
  return AddKey(tenant);
}

absl::StatusOr<Tenant> E2eStack::AddKey(const Tenant& tenant) {
  v1::CreateApiKeyRequest req;
  req.set_connection_id(tenant.connection_id);
  req.set_name("e2e key");
  v1::CreateApiKeyResponse resp;
  if (auto s = RpcStatus("CreateApiKey", Admin().CreateApiKey(Context().get(), req, &resp)); !s.ok()) {
    return s;
  }
  Tenant out = tenant;
  out.api_key_id = resp.api_key().id();
  out.api_key = resp.key();
  if (out.api_key.empty()) return absl::InternalError("CreateApiKey answered no key");
  return out;
}

absl::Status E2eStack::RevokeKey(const std::string& api_key_id) {
  v1::RevokeApiKeyRequest req;
  req.set_api_key_id(api_key_id);
  v1::ApiKey key;
  if (auto s = RpcStatus("RevokeApiKey", Admin().RevokeApiKey(Context().get(), req, &key)); !s.ok()) return s;
  if (!key.has_revoke_time()) return absl::InternalError("RevokeApiKey answered a key without revoke_time");
  return absl::OkStatus();
}

std::string E2eStack::LogTails() const {
  std::string out;
  for (std::size_t i = 0; i < subscriptions_.size(); ++i) {
    if (!subscriptions_[i].child) continue;
    absl::StrAppend(&out, "--- subscription", i == 0 ? "" : absl::StrCat(" ", i), " log tail:\n",
                    subscriptions_[i].child->LogTail(2048));
  }
  for (std::size_t i = 0; i < gateways_.size(); ++i) {
    if (!gateways_[i].child) continue;
    absl::StrAppend(&out, "--- gateway", i == 0 ? "" : absl::StrCat(" ", i), " log tail:\n",
                    gateways_[i].child->LogTail(2048));
  }
  return out;
}

// ------------------------------------------------------------------ RestApi --

RestApi::RestApi(int port, std::string api_key, std::string base_path)
    : http_(port), api_key_(std::move(api_key)), base_(std::move(base_path)) {}

testing::HttpResponse RestApi::Send(testing::HttpRequest request, bool authorize) {
  if (authorize) request.headers.emplace_back("Authorization", "Bearer " + api_key_);
  auto response = http_.Send(request);
  if (!response.ok()) {
    ADD_FAILURE() << request.method << " " << request.target << ": " << response.status();
    return {};
  }
  return *std::move(response);
}

namespace {
testing::HttpRequest JsonRequest(std::string method, std::string target, std::optional<std::string> body,
                                 const testing::HttpHeaders& extra) {
  testing::HttpRequest req{.method = std::move(method), .target = std::move(target), .headers = {}, .body = {}};
  if (body.has_value()) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = std::move(body);
  }
  req.headers.insert(req.headers.end(), extra.begin(), extra.end());
  return req;
}
}  // namespace

testing::HttpResponse RestApi::Create(const std::string& body, const testing::HttpHeaders& extra) {
  return Send(JsonRequest("POST", WebhooksPath(), body, extra));
}

testing::HttpResponse RestApi::List(const testing::HttpHeaders& extra) {
  return Send(JsonRequest("GET", WebhooksPath(), std::nullopt, extra));
}

testing::HttpResponse RestApi::Get(const std::string& id, const testing::HttpHeaders& extra) {
  return Send(JsonRequest("GET", WebhookPath(id), std::nullopt, extra));
}

testing::HttpResponse RestApi::Patch(const std::string& id, const std::string& body,
                                     const testing::HttpHeaders& extra) {
  return Send(JsonRequest("PATCH", WebhookPath(id), body, extra));
}

testing::HttpResponse RestApi::Delete(const std::string& id, const testing::HttpHeaders& extra) {
  return Send(JsonRequest("DELETE", WebhookPath(id), std::nullopt, extra));
}

}  // namespace octo::e2e
