#pragma once
// --output=id of octo-admin's operator commands: the ids a response carries.
#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace octo::admin {

// The response's own string `id`, else the `id` of each message it holds
// (CreateWebhookResponse.webhook, the items of a list), in order.
std::vector<std::string> IdsOf(const google::protobuf::Message& m);

}  // namespace octo::admin
