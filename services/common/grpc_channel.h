#pragma once
// The channel settings of the internal gRPC clients that may have several
// replicas behind one target: the gateway's channel to octo-subscription and
// octo-subscription's channel to octo-delivery (docs/operations.md, "Running
// several replicas on one machine"; docs/decisions.md).
#include <grpcpp/support/channel_arguments.h>

namespace octo::grpc_channel {

// The service config of such a channel: round_robin over every address the
// target resolves to (one address, as behind a Kubernetes Service, behaves
// as gRPC's default pick_first), and client-side health checking: each
// address is watched over grpc.health.v1.Health/Watch (service "", the
// server's overall status, open without a caller token) and gets calls only
// while it answers SERVING. A replica that is down or NOT_SERVING (e.g. its
// PostgreSQL unreachable, or shutting down) gets none until it is SERVING
// again; a server without the health service counts as serving.
inline constexpr char kReplicaServiceConfig[] =
    R"({"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}})";

// kReplicaServiceConfig, and reconnection after a lost connection within
// 0.2-2 s (gRPC's default backoff reaches 120 s) so that a restarted
// replica gets calls again promptly.
grpc::ChannelArguments ReplicaChannelArguments();

}  // namespace octo::grpc_channel
