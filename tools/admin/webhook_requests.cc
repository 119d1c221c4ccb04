#include "tools/admin/webhook_requests.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/admin/command_flags.h"

namespace octo::admin {

namespace v1 = octo::webhooks::v1;

std::string Flag(const OperatorInvocation& inv, absl::string_view name) {
  for (const auto& [n, v] : inv.flags) {
    if (n == name) return v;
  }
  return "";
}

bool HasFlag(const OperatorInvocation& inv, absl::string_view name) {
  return std::any_of(inv.flags.begin(), inv.flags.end(), [&](const auto& f) { return f.first == name; });
}

absl::StatusOr<bool> BoolFlag(absl::string_view name, const std::string& value) {
  const std::string v = absl::AsciiStrToLower(value);
  if (v == "true" || v == "yes" || v == "1") return true;
  if (v == "false" || v == "no" || v == "0") return false;
  return CommandUsage(absl::StrCat("--", name, " must be true or false"));
}

namespace {

// The --header flags (repeatable) into `headers`.
absl::Status ReadHeaders(const OperatorInvocation& inv, google::protobuf::Map<std::string, std::string>& headers) {
  for (const auto& [n, v] : inv.flags) {
    if (n != "header") continue;
    const auto colon = v.find(':');
    if (colon == std::string::npos) return CommandUsage("--header must look like 'Name: value'");
    headers[std::string(absl::StripAsciiWhitespace(v.substr(0, colon)))] =
        std::string(absl::StripAsciiWhitespace(v.substr(colon + 1)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::CreateWebhookRequest> CreateWebhookRequestFrom(const OperatorInvocation& inv) {
  v1::CreateWebhookRequest req;
  req.set_connection_id(Flag(inv, "connection"));
  req.set_url(Flag(inv, "url"));
  req.set_event(Flag(inv, "event"));
  if (HasFlag(inv, "retry-on-error")) {
    absl::StatusOr<bool> b = BoolFlag("retry-on-error", Flag(inv, "retry-on-error"));
    if (!b.ok()) return b.status();
    req.set_retry_on_error(*b);
  }
  if (HasFlag(inv, "use-contact-language")) {
    absl::StatusOr<bool> b = BoolFlag("use-contact-language", Flag(inv, "use-contact-language"));
    if (!b.ok()) return b.status();
    req.set_use_contact_language(*b);
  }
  if (HasFlag(inv, "ordered")) {
    absl::StatusOr<bool> b = BoolFlag("ordered", Flag(inv, "ordered"));
    if (!b.ok()) return b.status();
    req.set_ordered(*b);
  }
  if (absl::Status s = ReadHeaders(inv, *req.mutable_headers()); !s.ok()) return s;
  for (absl::string_view c : absl::StrSplit(Flag(inv, "capabilities"), ',', absl::SkipWhitespace())) {
    req.add_capabilities(std::string(absl::StripAsciiWhitespace(c)));
  }
  return req;
}

// Only the fields given change (UpdateWebhookRequest leaves unset ones);
// --header replaces all headers. Nothing given is a usage error, not a call.
absl::StatusOr<v1::UpdateWebhookRequest> UpdateWebhookRequestFrom(const OperatorInvocation& inv) {
  v1::UpdateWebhookRequest req;
  req.set_connection_id(Flag(inv, "connection"));
  req.set_webhook_id(inv.id);
  if (HasFlag(inv, "url")) req.set_url(Flag(inv, "url"));
  if (HasFlag(inv, "event")) req.set_event(Flag(inv, "event"));
  for (absl::string_view name : {"retry-on-error", "use-contact-language", "ordered", "active"}) {
    if (!HasFlag(inv, name)) continue;
    absl::StatusOr<bool> b = BoolFlag(name, Flag(inv, name));
    if (!b.ok()) return b.status();
    if (name == "retry-on-error") req.set_retry_on_error(*b);
    if (name == "use-contact-language") req.set_use_contact_language(*b);
    if (name == "ordered") req.set_ordered(*b);
    if (name == "active") req.set_active(*b);
  }
  if (HasFlag(inv, "header")) {
    if (absl::Status s = ReadHeaders(inv, *req.mutable_headers()->mutable_values()); !s.ok()) return s;
  }
  if (inv.flags.size() == 1) {  // --connection alone
    return CommandUsage(
        "say what to change: --url, --event, --retry-on-error, --use-contact-language, --header, --ordered or --active");
  }
  return req;
}

}  // namespace octo::admin
