#include "services/common/grpc_channel.h"

#include <grpc/grpc.h>

namespace octo::grpc_channel {

grpc::ChannelArguments ReplicaChannelArguments() {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(kReplicaServiceConfig);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return args;
}

}  // namespace octo::grpc_channel
