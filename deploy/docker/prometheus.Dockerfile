# Prometheus from Debian's package (2.42), for deploy/compose.yaml where the
# official prom/prometheus image cannot be pulled (scripts/containers.sh
# builds it and sets OCTO_PROMETHEUS_IMAGE). Used like the official image:
# the entrypoint is prometheus, its flags the command; data in /prometheus,
# owned by the prometheus user it runs as.
#   docker build -f deploy/docker/prometheus.Dockerfile -t octo-webhooks/prometheus:bookworm .

ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
USER prometheus
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
