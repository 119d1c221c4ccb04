# The smoke test's webhook receiver (scripts/containers.sh): receiver.py on
# Debian's python3, as an unprivileged user. Not a product image.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
COPY tests/containers/receiver.py /usr/local/bin/receiver.py
USER 65534:65534
EXPOSE 8000
ENTRYPOINT ["python3", "-u", "/usr/local/bin/receiver.py"]
