#pragma once
// Conversion between absl::Status (our module boundary type) and grpc::Status
// (the wire). The canonical codes are numerically identical.
#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace octo {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace octo
