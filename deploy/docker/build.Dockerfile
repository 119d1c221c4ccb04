# The one image that compiles octo-webhooks: octo-gateway, octo-subscription,
# octo-delivery and octo-admin, Release, stripped, in /src/build. The runtime
# images (gateway, subscription, delivery .Dockerfile) copy their binaries
# from it, so the C++ is compiled once for all three.
# Build from the repository root (the context is the checkout, filtered by
# .dockerignore), before the runtime images:
#   docker build -f deploy/docker/build.Dockerfile -t octo-webhooks/build:dev .
# JOBS: parallel compile jobs (default 2; each takes up to ~1.5 GB).
# BASE_IMAGE: any Debian bookworm image (scripts/containers.sh passes one it
# makes with mmdebstrap when no registry is reachable).
# The -dev packages are those of scripts/install-deps.sh (ctest
# deploy_manifests checks it). Only what the four programs need is copied in
# (tests/ is not configured: BUILD_TESTING=OFF; of docs/ only the OpenAPI
# document the gateway embeds), so that a change elsewhere keeps the
# compiled layer cached.

ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libpqxx-dev prometheus-cpp-dev \
      libboost1.81-dev libboost-json1.81-dev libcurl4-openssl-dev libssl-dev \
      libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY proto proto
COPY services services
COPY gateway gateway
COPY tools tools
COPY docs/openapi.yaml docs/openapi.yaml
ARG JOBS=2
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build -j"${JOBS}" --target octo-gateway octo-subscription octo-delivery octo-admin \
 && strip build/gateway/octo-gateway build/services/subscription/octo-subscription \
      build/services/delivery/octo-delivery build/tools/octo-admin
