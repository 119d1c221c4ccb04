#pragma once
// docs/openapi.yaml, embedded at build time (gateway/CMakeLists.txt), served
// by the gateway at GET /openapi.yaml without authentication.
#include <string_view>

namespace octo::gateway {

std::string_view OpenApiDocument();

}  // namespace octo::gateway
