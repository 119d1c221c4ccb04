# syntax=docker/dockerfile:1
# Image of octo-subscription, the subscription service (gRPC 50051, metrics
# 9101), with the octo-admin CLI.
# Build from the repository root (the context must be the whole checkout):
#   docker build -f deploy/docker/subscription.Dockerfile -t octo-webhooks/subscription .
# Two stages: Debian bookworm with the -dev packages of scripts/install-deps.sh
# builds the binaries; debian:bookworm-slim with only their runtime libraries
# runs them as an unprivileged user. Configuration: flags or OCTO_* variables
# (docs/configuration.md). In a container set
# OCTO_SUBSCRIPTION_LISTEN=0.0.0.0:50051,
# OCTO_SUBSCRIPTION_METRICS_LISTEN=0.0.0.0:9101 and OCTO_ALLOW_NON_LOOPBACK=true
# (deploy/compose.yaml, deploy/kubernetes).

FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libpqxx-dev prometheus-cpp-dev \
      libboost1.81-dev libboost-json1.81-dev libcurl4-openssl-dev libssl-dev \
      libgtest-dev libgmock-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what CMake reads (the top-level CMakeLists.txt configures tests/ too,
# whose tests/metrics needs python3).
COPY CMakeLists.txt ./
COPY proto proto
COPY services services
COPY gateway gateway
COPY tools tools
COPY tests tests
# gateway/ embeds docs/openapi.yaml.
COPY docs docs
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j"$(nproc)" --target octo-subscription octo-admin \
 && strip build/services/subscription/octo-subscription build/tools/octo-admin

FROM debian:bookworm-slim
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
