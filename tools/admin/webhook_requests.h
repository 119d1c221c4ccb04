#pragma once
// octo-admin's webhook requests built from the parsed flags (webhook create,
// webhook update), and the flag accessors the operator commands share.
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "octo/webhooks/v1/webhooks.pb.h"
#include "tools/admin/operator_commands.h"

namespace octo::admin {

// The value of flag `name` ("" when absent), and whether it was given.
std::string Flag(const OperatorInvocation& inv, absl::string_view name);
bool HasFlag(const OperatorInvocation& inv, absl::string_view name);
// true|yes|1, false|no|0 (any case); INVALID_ARGUMENT (usage) otherwise.
absl::StatusOr<bool> BoolFlag(absl::string_view name, const std::string& value);

// `webhook create`: --connection, --url, --event, --retry-on-error,
// --use-contact-language, --header (repeatable), --capabilities, --ordered.
absl::StatusOr<octo::webhooks::v1::CreateWebhookRequest> CreateWebhookRequestFrom(const OperatorInvocation& inv);
// `webhook update WEBHOOK_ID`: only the fields given are set (the service
// keeps the others); --header replaces all headers. A usage error when
// nothing is given to change.
absl::StatusOr<octo::webhooks::v1::UpdateWebhookRequest> UpdateWebhookRequestFrom(const OperatorInvocation& inv);

}  // namespace octo::admin
