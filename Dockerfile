# syntax=docker/dockerfile:1
#
# One image for every role: `eventide ingest | processor | query-api |
# create-topics | migrate`; with no arguments, the all-in-one local default.
#
#   docker build -t eventide:dev .
#   docker run --rm -p 8080:8080 -p 8081:8081 eventide:dev
#
# The runtime stage runs as UID/GID 65532 and needs to write only to
# /var/lib/eventide (EVENTIDE_DATA_DIR) and /tmp, so it works with a read-only
# root filesystem when both are volumes (the Helm chart mounts emptyDirs).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build ----------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build

# rdkafka-sys bundles librdkafka and builds it with ./configure and make: it
# needs a C/C++ toolchain, perl, pkg-config and the zlib, OpenSSL and libcurl
# headers (TLS and SASL_SSL to production Kafka; libcurl for OAUTHBEARER's
# OIDC token method). The rust image
# ships most of them; installing them explicitly keeps the build working if it
# stops doing so. Versions come from the pinned base image's Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make perl pkg-config zlib1g-dev libssl-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The cache mounts keep the registry and incremental artefacts between builds;
# the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p eventide \
 && install -D -m 0755 target/release/eventide /out/eventide

# --- runtime --------------------------------------------------------------------
# debian-slim rather than distroless: the binary links the system zlib,
# OpenSSL and libcurl (librdkafka), which distroless/cc does not carry.
FROM ${RUNTIME_IMAGE} AS runtime

# The shared libraries the binary links; versions from the pinned base image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 zlib1g libcurl4 \
 && rm -rf /var/lib/apt/lists/*

LABEL org.opencontainers.image.title="eventide" \
      org.opencontainers.image.description="Kafka-backed event pipeline: ingest, processor, query API" \
      org.opencontainers.image.licenses="Apache-2.0"

# TLS roots for Kafka, the schema registry and webhooks, from the build stage
# (debian-slim has none).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/eventide /usr/local/bin/eventide

# `--version` fails the build, not the rollout, when a shared library is
# missing; the data dir must be writable by the non-root user even without a
# volume.
RUN /usr/local/bin/eventide --version \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/eventide

ENV EVENTIDE_DATA_DIR=/var/lib/eventide \
    EVENTIDE_INGEST_LISTEN=0.0.0.0:8080 \
    EVENTIDE_QUERY_LISTEN=0.0.0.0:8081 \
    EVENTIDE_PROCESSOR_LISTEN=0.0.0.0:8082 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

WORKDIR /var/lib/eventide
USER 65532:65532
EXPOSE 8080 8081 8082
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/eventide"]
