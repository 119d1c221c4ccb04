# Image of octo-gateway, the OCTO REST gateway (HTTP 8080 with /healthz and
# /readyz; /metrics on 9103).
# Build from the repository root, after the build image (build.Dockerfile,
# which compiles every binary once):
#   docker build -f deploy/docker/build.Dockerfile -t octo-webhooks/build:dev .
#   docker build -f deploy/docker/gateway.Dockerfile -t octo-webhooks/gateway:dev .
# debian:bookworm-slim with only the binary's runtime libraries, run as an
# unprivileged user (uid 10001) on a read-only root filesystem (it writes
# nothing). Configuration: flags or OCTO_* variables
# (docs/configuration.md). In a container set OCTO_GATEWAY_LISTEN=0.0.0.0:8080,
# OCTO_GATEWAY_METRICS_LISTEN=0.0.0.0:9103 and
# OCTO_GATEWAY_ALLOW_NON_LOOPBACK=true (deploy/compose.yaml, deploy/kubernetes).

ARG BUILD_IMAGE=octo-webhooks/build:dev
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BUILD_IMAGE} AS build

FROM ${BASE_IMAGE}
# The shared libraries the binary needs (ctest deploy_manifests checks this
# list against its DT_NEEDED entries); libc6, libgcc-s1 and libstdc++6 are
# in the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 \
      libboost-json1.81.0 \
      libgrpc++1.51 \
      libgrpc29 \
      libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 \
      libprotobuf32 \
      libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin octo
COPY --from=build /src/build/gateway/octo-gateway /usr/local/bin/octo-gateway
USER 10001:10001
EXPOSE 8080 9103
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/octo-gateway"]
