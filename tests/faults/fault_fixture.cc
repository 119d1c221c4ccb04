#include "tests/faults/fault_fixture.h"

#include <exception>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace octo::faults {

namespace v1 = ::octo::webhooks::v1;

void FaultTest::TearDown() {
  if (stack_ != nullptr) {
    if (HasFailure()) std::cerr << stack_->LogTails() << "\n";
    if (stop_clean_ && stack_->delivery() != nullptr && stack_->delivery()->IsRunning()) {
      stack_->StopAllExpectClean();
    }
  }
  if (receiver_) receiver_->Stop();
  stack_.reset();
}

bool FaultTest::StartStack(DeliveryFlags flags, int subscription_replicas, int gateway_replicas) {
  try {
    stack_ = std::make_unique<DeliveryStack>(std::move(flags));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot create the test database: " << e.what();
    return false;
  }
  stack_->base().mutable_options().subscription_replicas = subscription_replicas;
  stack_->base().mutable_options().gateway_replicas = gateway_replicas;
  if (absl::Status s = stack_->Start(); !s.ok()) {
    ADD_FAILURE() << "the system under test did not start: " << s << "\n" << stack_->LogTails();
    return false;
  }
  testing::ReceiverOptions options;
  options.threads = 2;
  auto receiver = testing::HttpReceiver::Start(options);
  if (!receiver.ok()) {
    ADD_FAILURE() << receiver.status();
    return false;
  }
  receiver_ = *std::move(receiver);
  return true;
}

e2e::Tenant FaultTest::NewTenant() {
  absl::StatusOr<e2e::Tenant> tenant = stack_->NewTenant();
  if (!tenant.ok()) {
    ADD_FAILURE() << tenant.status();
    return {};
  }
  return *tenant;
}

CreatedWebhook FaultTest::Hook(const e2e::Tenant& tenant, const std::string& event, const std::string& url) {
  absl::StatusOr<CreatedWebhook> hook = stack_->CreateWebhook(
      tenant, absl::StrCat("{\"event\":", delivery_e2e::Q(event), ",\"url\":", delivery_e2e::Q(url), "}"));
  if (!hook.ok()) {
    ADD_FAILURE() << hook.status();
    return {};
  }
  return *hook;
}

int FaultTest::Publish(const e2e::Tenant& tenant, int count, const std::string& key_prefix, const std::string& event,
                       bool must) {
  const std::string kind = event.substr(0, event.find('_'));
  int accepted = 0;
  for (int start = 0; start < count; start += 200) {
    v1::PublishEventsRequest batch;
    for (int i = start; i < std::min(count, start + 200); ++i) {
      const std::string resource = absl::StrCat(R"({"id":")", key_prefix, "-", i, R"(","uuid":")",
                                                delivery_e2e::NewUuid(), R"(","status":"CONFIRMED"})");
      *batch.add_events() = delivery_e2e::Event(tenant, event, resource, delivery_e2e::NewKey(key_prefix));
    }
    auto published = stack_->PublishBatch(batch);
    if (!published.ok()) {
      if (must) ADD_FAILURE() << "PublishEvents: " << published.status();
      return accepted;
    }
    accepted += published->results_size();
  }
  return accepted;
}

std::vector<std::string> FaultTest::MessageIds(const CreatedWebhook& hook) const {
  std::vector<std::string> ids;
  for (const auto& row : db().Rows(absl::StrCat("SELECT 'msg_' || replace(id::text, '-', '') FROM deliveries "
                                                "WHERE webhook_id = ",
                                                SqlQuote(hook.id)))) {
    ids.push_back(row[0]);
  }
  return ids;
}

int FaultTest::CountInState(const CreatedWebhook& hook, const std::string& state) const {
  return std::stoi(db().Scalar(absl::StrCat("SELECT count(*) FROM deliveries WHERE webhook_id = ", SqlQuote(hook.id),
                                            " AND state = ", SqlQuote(state))));
}

std::map<std::string, int> FaultTest::AttemptsById(const CreatedWebhook& hook) const {
  std::map<std::string, int> out;
  for (const auto& row : db().Rows(absl::StrCat(
           "SELECT 'msg_' || replace(d.id::text, '-', ''), count(a.attempt_number) FROM deliveries d"
           " LEFT JOIN delivery_attempts a ON a.delivery_id = d.id WHERE d.webhook_id = ",
           SqlQuote(hook.id), " GROUP BY d.id"))) {
    out[row[0]] = std::stoi(row[1]);
  }
  return out;
}

std::map<std::string, std::vector<ReceivedRequest>> FaultTest::ReceivedById(const std::string& path) const {
  std::map<std::string, std::vector<ReceivedRequest>> by_id;
  for (ReceivedRequest& r : receiver_->Requests(path)) by_id[WebhookId(r)].push_back(std::move(r));
  return by_id;
}

}  // namespace octo::faults
