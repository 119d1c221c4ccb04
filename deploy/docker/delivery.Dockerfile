# Image of octo-delivery, the delivery service (gRPC 50052, metrics 9102).
# Build from the repository root, after the build image (build.Dockerfile,
# which compiles every binary once):
#   docker build -f deploy/docker/build.Dockerfile -t octo-webhooks/build:dev .
#   docker build -f deploy/docker/delivery.Dockerfile -t octo-webhooks/delivery:dev .
# debian:bookworm-slim with only the binary's runtime libraries, run as an
# unprivileged user (uid 10001) on a read-only root filesystem (it writes
# nothing). Configuration: flags or OCTO_* variables (docs/configuration.md).
# In a container set OCTO_DELIVERY_LISTEN=0.0.0.0:50052,
# OCTO_DELIVERY_METRICS_LISTEN=0.0.0.0:9102 and OCTO_ALLOW_NON_LOOPBACK=true
# (deploy/compose.yaml, deploy/kubernetes).
# ca-certificates: deliveries go to partners over HTTPS.

ARG BUILD_IMAGE=octo-webhooks/build:dev
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BUILD_IMAGE} AS build

FROM ${BASE_IMAGE}
# The shared libraries the binary needs (ctest deploy_manifests checks this
# list against its DT_NEEDED entries); libc6, libgcc-s1 and libstdc++6 are
# in the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libabsl20220623 \
      libboost-json1.81.0 \
      libcurl4 \
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
COPY --from=build /src/build/services/delivery/octo-delivery /usr/local/bin/octo-delivery
USER 10001:10001
EXPOSE 50052 9102
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/octo-delivery"]
