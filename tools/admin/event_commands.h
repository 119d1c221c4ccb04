#pragma once
// octo-admin's command for an internal publisher's job, by hand:
//
//   event publish --supplier=ID --event=EVENT --idempotency-key=KEY
//                 (--resource=JSON | --resource-file=PATH) [--connection=ID]
//                 [--occurred-at=RFC3339] [--diff=JSON] [--resource-key=KEY]
//                 [--product-id=ID --option-id=ID]
//
// One EventService.PublishEvent call, with the publisher identity's token
// (--token_file=<callers dir>/publisher; the admin token is refused). For
// checking a deployment end to end (scripts/containers.sh) and replaying one
// event by hand; real publishers are services. Output: the response as
// protobuf JSON, or only the event id with --output=id.
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "octo/webhooks/v1/events.grpc.pb.h"

namespace octo::admin {

// True when argv's first command word is `event` (or `events`).
bool IsEventCommand(const std::vector<std::string>& args);

struct EventInvocation {
  std::string target;
  std::string output = "json";  // json or id
  // Read by RunEventCommand into request.resource_json when set.
  std::string resource_file;
  // Everything but resource_json (when from a file) and, when no
  // --occurred-at was given, occurred_at (now, set by RunEventCommand).
  octo::webhooks::v1::PublishEventRequest request;
};

// Pure: INVALID_ARGUMENT with a usage message for an unknown verb or flag, a
// missing required flag, both or neither of --resource and --resource-file,
// or an --occurred-at that is no RFC 3339 time.
absl::StatusOr<EventInvocation> ParseEventArgs(const std::vector<std::string>& args,
                                               const std::string& default_target);

// Reads the resource file, makes the call (10 s deadline) and prints the
// result; exit status as RunAdminCommand (0 ok, 1 RPC failed, 2 usage, which
// includes an unreadable resource file).
int RunEventCommand(EventInvocation inv, octo::webhooks::v1::EventService::StubInterface& events,
                    std::ostream& out, std::ostream& err);

std::string EventUsage();

}  // namespace octo::admin
