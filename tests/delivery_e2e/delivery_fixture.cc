#include "tests/delivery_e2e/delivery_fixture.h"

#include <exception>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace octo::delivery_e2e {

DeliveryStack* DeliveryTest::stack_ = nullptr;
absl::Status* DeliveryTest::start_status_ = nullptr;

void DeliveryTest::StartStack(DeliveryFlags flags) {
  delete start_status_;
  start_status_ = new absl::Status(absl::UnknownError("not started"));
  try {
    stack_ = new DeliveryStack(std::move(flags));
    *start_status_ = stack_->Start();
    if (!start_status_->ok()) {
      *start_status_ = absl::Status(start_status_->code(),
                                    absl::StrCat(start_status_->message(), "\n", stack_->LogTails()));
    }
  } catch (const std::exception& e) {
    *start_status_ = absl::FailedPreconditionError(e.what());
  }
}

void DeliveryTest::StopStack() {
  if (stack_ != nullptr && start_status_ != nullptr && start_status_->ok()) stack_->StopAllExpectClean();
  delete stack_;
  stack_ = nullptr;
  delete start_status_;
  start_status_ = nullptr;
}

void DeliveryTest::SetUp() {
  ASSERT_NE(start_status_, nullptr) << "the suite did not call StartStack";
  ASSERT_TRUE(start_status_->ok()) << "the system under test did not start: " << *start_status_;
  ASSERT_TRUE(stack_->delivery()->IsRunning()) << "octo-delivery died\n" << stack_->LogTails();
  ASSERT_TRUE(stack_->base().subscription()->IsRunning()) << "octo-subscription died\n" << stack_->LogTails();
  absl::StatusOr<e2e::Tenant> tenant = stack_->NewTenant();
  ASSERT_TRUE(tenant.ok()) << tenant.status() << "\n" << stack_->LogTails();
  tenant_ = *tenant;
  auto receiver = testing::HttpReceiver::Start();
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  receiver_ = *std::move(receiver);
}

void DeliveryTest::TearDown() {
  if (HasFailure() && stack_ != nullptr) std::cerr << stack_->LogTails() << "\n";
  if (receiver_) receiver_->Stop();
}

CreatedWebhook DeliveryTest::Hook(const std::string& event, const std::string& url, const std::string& more_json,
                                  std::optional<std::string> capabilities) {
  return HookFor(tenant_, event, url, more_json, std::move(capabilities));
}

CreatedWebhook DeliveryTest::HookFor(const e2e::Tenant& tenant, const std::string& event, const std::string& url,
                                     const std::string& more_json, std::optional<std::string> capabilities) {
  const std::string body = absl::StrCat("{\"event\":", Q(event), ",\"url\":", Q(url),
                                        more_json.empty() ? "" : ",", more_json, "}");
  absl::StatusOr<CreatedWebhook> hook = stack_->CreateWebhook(tenant, body, std::move(capabilities));
  if (!hook.ok()) {
    ADD_FAILURE() << hook.status();
    return {};
  }
  return *hook;
}

std::string DeliveryTest::Body(const std::string& webhook_object, std::string_view kind, const std::string& resource,
                               const std::string& diff, const std::string& supplier,
                               std::optional<std::pair<std::string, std::string>> product_option) {
  std::string out = absl::StrCat("{\"webhook\":", webhook_object, ",", Q(kind), ":", resource);
  if (product_option) {
    // Availability (Ventrata's AvailabilityUpdate): ids, no diff.
    absl::StrAppend(&out, ",\"productId\":", Q(product_option->first), ",\"optionId\":", Q(product_option->second));
  } else {
    absl::StrAppend(&out, ",\"diff\":", diff);
  }
  absl::StrAppend(&out, ",\"supplier\":", supplier, "}");
  return out;
}

webhooks::v1::PublishEventResponse DeliveryTest::MustPublish(const webhooks::v1::PublishEventRequest& request) {
  auto published = stack_->Publish(request);
  if (!published.ok()) {
    ADD_FAILURE() << "PublishEvent " << request.idempotency_key() << ": " << published.status();
    return {};
  }
  return *published;
}

ReceivedRequest DeliveryTest::OnlyRequest(const std::string& path, std::chrono::milliseconds timeout) {
  if (!receiver_->WaitFor(path, 1, timeout)) {
    ADD_FAILURE() << "no request on " << path << " within " << timeout.count() << " ms\n" << stack_->LogTails();
    return {};
  }
  std::vector<ReceivedRequest> got = receiver_->Requests(path);
  EXPECT_EQ(got.size(), 1u) << "more than one request on " << path;
  return got.front();
}

}  // namespace octo::delivery_e2e
