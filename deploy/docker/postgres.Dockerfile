# PostgreSQL 15 from Debian's packages, for deploy/compose.yaml where the
# official postgres image cannot be pulled (scripts/containers.sh builds it
# and sets OCTO_POSTGRES_IMAGE). The same contract as the official image as
# far as compose.yaml uses it: POSTGRES_USER (superuser, default postgres),
# POSTGRES_PASSWORD (required), POSTGRES_DB (created on the first start),
# data in /var/lib/postgresql/data, pg_isready on the PATH. Unlike it, it
# runs as the postgres user from the start (a new named volume takes the
# owner of the image's directory) and on a read-only root filesystem
# (tmpfs on /run/postgresql, owned by 999:999, and /tmp).
#   docker build -f deploy/docker/postgres.Dockerfile -t octo-webhooks/postgres:15 .

ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# The postgres user made first with a fixed uid/gid, 999 as in the official
# image (compose.yaml's tmpfs for the socket directory names it); no cluster
# of the package's own (createcluster.conf), and no service started during
# the build (policy-rc.d).
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/sh postgres \
 && mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown postgres:postgres /var/lib/postgresql/data /run/postgresql \
 && chmod 700 /var/lib/postgresql/data
COPY deploy/docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
# SIGINT: PostgreSQL's fast shutdown.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
