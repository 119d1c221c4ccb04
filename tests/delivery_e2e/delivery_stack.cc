#include "tests/delivery_e2e/delivery_stack.h"

#include <iostream>
#include <utility>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/common/status.h"

#ifndef OCTO_DELIVERY_BIN
#error "OCTO_DELIVERY_BIN must name the octo-delivery binary"
#endif

namespace octo::delivery_e2e {
namespace {

namespace v1 = ::octo::webhooks::v1;
using namespace std::chrono_literals;

constexpr auto kStartTimeout = 20s;  // two cores shared with builds
constexpr auto kStopTimeout = 15s;   // graceful stop lets transfers finish

std::unique_ptr<grpc::ClientContext> Context(std::chrono::seconds timeout = 15s) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

absl::Status RpcStatus(std::string_view rpc, const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  absl::Status status = FromGrpcStatus(s);
  return absl::Status(status.code(), absl::StrCat(std::string(rpc), ": ", std::string(status.message())));
}

}  // namespace

DeliveryStack::DeliveryStack(DeliveryFlags flags)
    : flags_(std::move(flags)), base_(std::make_unique<e2e::E2eStack>()) {}

DeliveryStack::~DeliveryStack() {
  events_.reset();
  admin_.reset();
  channel_.reset();
  if (delivery_) {
    delivery_->Kill9();
    if (::testing::Test::HasFailure()) {
      std::cerr << "--- octo-delivery log tail:\n" << delivery_->LogTail(8192) << "\n";
    }
  }
}

absl::Status DeliveryStack::Start() {
  if (absl::Status s = StartDelivery(); !s.ok()) return s;
  base_->mutable_options().subscription_args = {absl::StrCat("--delivery_target=127.0.0.1:", delivery_port_)};
  if (absl::Status s = base_->StartAll(); !s.ok()) return s;
  return absl::OkStatus();
}

std::vector<std::string> DeliveryStack::DeliveryArgs(int port, const std::string& port_file) {
  std::vector<std::string> args = {
      absl::StrCat("--grpc_listen=127.0.0.1:", port),
      "--database_url=" + base_->database_url(),
      "--port_file=" + port_file,
      "--retry_schedule=" + flags_.retry_schedule,
      "--request_timeout=" + flags_.request_timeout,
      "--connect_timeout=" + flags_.connect_timeout,
      "--lease_margin=" + flags_.lease_margin,
      "--poll_interval=" + flags_.poll_interval,
      "--min_retry_after=" + flags_.min_retry_after,
      "--max_retry_after=" + flags_.max_retry_after,
      "--allow_destination_cidrs=" + flags_.allow_destination_cidrs,
  };
  for (std::string& flag : base_->callers().DeliveryFlags()) args.push_back(std::move(flag));
  args.insert(args.end(), flags_.extra_args.begin(), flags_.extra_args.end());
  return args;
}

absl::StatusOr<std::unique_ptr<testing::ChildProcess>> DeliveryStack::StartDeliveryReplica() {
  const int n = ++delivery_starts_;
  const std::string port_file = absl::StrCat(base_->dir(), "/delivery-", n, ".port");
  auto child = testing::ChildProcess::Start({
      .binary = OCTO_DELIVERY_BIN,
      .args = DeliveryArgs(0, port_file),
      .env = {},
      .log_path = absl::StrCat(base_->dir(), "/delivery-", n, ".log"),
  });
  if (!child.ok()) return child.status();
  auto bound = (*child)->WaitForPortFile(port_file, kStartTimeout);
  if (!bound.ok()) return bound.status();
  return child;
}

absl::Status DeliveryStack::StartDelivery() {
  const int n = ++delivery_starts_;
  const std::string port_file = absl::StrCat(base_->dir(), "/delivery-", n, ".port");
  auto child = testing::ChildProcess::Start({
      .binary = OCTO_DELIVERY_BIN,
      .args = DeliveryArgs(delivery_port_, port_file),
      .env = {},
      .log_path = absl::StrCat(base_->dir(), "/delivery-", n, ".log"),
  });
  if (!child.ok()) return child.status();
  delivery_ = *std::move(child);
  auto bound = delivery_->WaitForPortFile(port_file, kStartTimeout);
  if (!bound.ok()) return bound.status();
  if (delivery_port_ != 0 && *bound != delivery_port_) {
    return absl::InternalError(absl::StrCat("octo-delivery restarted on port ", *bound, ", not ", delivery_port_));
  }
  delivery_port_ = *bound;
  return absl::OkStatus();
}

testing::ExitInfo DeliveryStack::KillDelivery() {
  if (!delivery_) return {};
  return delivery_->Kill9();
}

testing::ExitInfo DeliveryStack::StopDelivery() {
  if (!delivery_) return {};
  return delivery_->Terminate(kStopTimeout);
}

void DeliveryStack::StopAllExpectClean() {
  events_.reset();
  admin_.reset();
  channel_.reset();
  const testing::ExitInfo gateway = base_->StopGateway();
  const testing::ExitInfo subscription = base_->StopSubscription();
  const testing::ExitInfo delivery = StopDelivery();
  EXPECT_TRUE(gateway.Clean()) << "octo-gateway on SIGTERM: " << gateway.ToString() << "\n" << LogTails();
  EXPECT_TRUE(subscription.Clean()) << "octo-subscription on SIGTERM: " << subscription.ToString() << "\n"
                                    << LogTails();
  EXPECT_TRUE(delivery.Clean()) << "octo-delivery on SIGTERM: " << delivery.ToString() << "\n" << LogTails();
}

std::shared_ptr<grpc::Channel> DeliveryStack::Channel() {
  if (!channel_) {
    // Two callers: octo-admin provisions, a publisher publishes.
    const std::string target = absl::StrCat("127.0.0.1:", base_->subscription_port());
    channel_ = base_->callers().Channel(target, "admin");
    events_ = v1::EventService::NewStub(base_->callers().Channel(target, "publisher"));
    admin_ = v1::AdminService::NewStub(channel_);
  }
  return channel_;
}

absl::StatusOr<e2e::Tenant> DeliveryStack::NewTenant() {
  absl::StatusOr<e2e::Tenant> tenant = base_->CreateTenant();
  if (!tenant.ok()) return tenant.status();
  Channel();
  v1::UpdateSupplierRequest req;
  req.set_supplier_id(tenant->supplier_id);
  req.set_name(profile_.name);
  req.set_endpoint(profile_.endpoint);
  v1::SupplierContact* contact = req.mutable_contact();
  contact->set_website(profile_.website);
  contact->set_email(profile_.email);
  contact->set_telephone(profile_.telephone);
  contact->set_address(profile_.address);
  v1::Supplier supplier;
  if (auto s = RpcStatus("UpdateSupplier", admin_->UpdateSupplier(Context().get(), req, &supplier)); !s.ok()) {
    return s;
  }
  return tenant;
}

absl::StatusOr<e2e::Tenant> DeliveryStack::NewConnection(const e2e::Tenant& tenant) {
  Channel();
  v1::CreateConnectionRequest req;
  req.set_supplier_id(tenant.supplier_id);
  req.set_name(absl::StrCat("second-", delivery_starts_, "-", tenant.connection_id.substr(0, 8)));
  v1::Connection connection;
  if (auto s = RpcStatus("CreateConnection", admin_->CreateConnection(Context().get(), req, &connection));
      !s.ok()) {
    return s;
  }
  e2e::Tenant other = tenant;
  other.connection_id = connection.id();
  return base_->AddKey(other);
}

absl::StatusOr<CreatedWebhook> DeliveryStack::CreateWebhook(const e2e::Tenant& tenant, const std::string& body,
                                                            std::optional<std::string> capabilities) {
  e2e::RestApi api(base_->gateway_port(), tenant.api_key, base_->options().base_path);
  testing::HttpHeaders extra;
  if (capabilities) extra.emplace_back("Octo-Capabilities", *capabilities);
  testing::HttpResponse r = api.Create(body, extra);
  if (r.status != 200) {
    return absl::InternalError(absl::StrCat("POST webhooks ", body, ": HTTP ", r.status, " ", r.body));
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("id") || !v.as_object().contains("secret")) {
    return absl::InternalError(absl::StrCat("POST webhooks: unexpected answer ", r.body));
  }
  CreatedWebhook out;
  out.id = std::string(v.as_object().at("id").as_string());
  out.secret = std::string(v.as_object().at("secret").as_string());
  boost::json::value parsed_request = boost::json::parse(body, ec);
  if (!ec && parsed_request.is_object() && parsed_request.as_object().contains("url")) {
    out.url = std::string(parsed_request.as_object().at("url").as_string());
  }
  return out;
}

absl::StatusOr<std::string> DeliveryStack::GetWebhookJson(const e2e::Tenant& tenant, const std::string& id) {
  e2e::RestApi api(base_->gateway_port(), tenant.api_key, base_->options().base_path);
  testing::HttpResponse r = api.Get(id);
  if (r.status != 200) return absl::InternalError(absl::StrCat("GET webhook ", id, ": HTTP ", r.status, " ", r.body));
  return r.body;
}

absl::StatusOr<v1::PublishEventResponse> DeliveryStack::Publish(const v1::PublishEventRequest& request) {
  v1::PublishEventResponse response;
  if (auto s = RpcStatus("PublishEvent", PublishRaw(request, &response)); !s.ok()) return s;
  return response;
}

grpc::Status DeliveryStack::PublishRaw(const v1::PublishEventRequest& request, v1::PublishEventResponse* response) {
  Channel();
  return events_->PublishEvent(Context().get(), request, response);
}

absl::StatusOr<v1::PublishEventsResponse> DeliveryStack::PublishBatch(const v1::PublishEventsRequest& request) {
  Channel();
  v1::PublishEventsResponse response;
  if (auto s = RpcStatus("PublishEvents", events_->PublishEvents(Context(30s).get(), request, &response));
      !s.ok()) {
    return s;
  }
  return response;
}

std::string DeliveryStack::LogTails() const {
  std::string out = base_->LogTails();
  if (delivery_) absl::StrAppend(&out, "--- delivery log tail:\n", delivery_->LogTail(4096));
  return out;
}

}  // namespace octo::delivery_e2e
