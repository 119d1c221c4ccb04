# Image of octo-subscription, the subscription service (gRPC 50051, metrics
# 9101), with the octo-admin CLI.
# Build from the repository root, after the build image (build.Dockerfile,
# which compiles every binary once):
#   docker build -f deploy/docker/build.Dockerfile -t octo-webhooks/build:dev .
#   docker build -f deploy/docker/subscription.Dockerfile -t octo-webhooks/subscription:dev .
# debian:bookworm-slim with only the binaries' runtime libraries, run as an
# unprivileged user (uid 10001) on a read-only root filesystem (it writes
# nothing). Configuration: flags or OCTO_* variables (docs/configuration.md).
# In a container set OCTO_SUBSCRIPTION_LISTEN=0.0.0.0:50051,
# OCTO_SUBSCRIPTION_METRICS_LISTEN=0.0.0.0:9101 and OCTO_ALLOW_NON_LOOPBACK=true
# (deploy/compose.yaml, deploy/kubernetes).

ARG BUILD_IMAGE=octo-webhooks/build:dev
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BUILD_IMAGE} AS build

FROM ${BASE_IMAGE}
# The shared libraries the binaries need (ctest deploy_manifests checks this
# list against their DT_NEEDED entries); libc6, libgcc-s1 and libstdc++6 are
# in the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 \
      libboost-json1.81.0 \
      libgrpc++1.51 \
      libgrpc29 \
      libpq5 \
      libpqxx-6.4 \
      libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 \
      libprotobuf32 \
      libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin octo
COPY --from=build /src/build/services/subscription/octo-subscription /usr/local/bin/octo-subscription
COPY --from=build /src/build/tools/octo-admin /usr/local/bin/octo-admin
USER 10001:10001
EXPOSE 50051 9101
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/octo-subscription"]
