# syntax=docker/dockerfile:1
# Image of octo-gateway, the OCTO REST gateway (HTTP 8080 with /healthz and
# /readyz; /metrics on 9103).
# Build from the repository root (the context must be the whole checkout):
#   docker build -f deploy/docker/gateway.Dockerfile -t octo-webhooks/gateway .
# Two stages: Debian bookworm with the -dev packages of scripts/install-deps.sh
# builds the binaries; debian:bookworm-slim with only their runtime libraries
# runs them as an unprivileged user. Configuration: flags or OCTO_* variables
# (docs/configuration.md). In a container set OCTO_GATEWAY_LISTEN=0.0.0.0:8080,
# OCTO_GATEWAY_METRICS_LISTEN=0.0.0.0:9103 and
# OCTO_GATEWAY_ALLOW_NON_LOOPBACK=true (deploy/compose.yaml, deploy/kubernetes).

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
 && cmake --build build -j"$(nproc)" --target octo-gateway \
 && strip build/gateway/octo-gateway

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
